using System.Text;
using System.Text.Json;
using Evolution.Events.Gateway.Events;
using Evolution.Events.Gateway.Http;
using Microsoft.AspNetCore.Http;

namespace Evolution.Events.Gateway.Tests;

/// <summary>
/// What one POSTed event costs before it is fanned out: its body read into one buffer of its declared length, its
/// envelope written in a reused per-thread scratch and copied once. Every allocation here is garbage the GC
/// collects while sockets wait for their events.
/// </summary>
public class IngestAllocationTests
{
    private static JsonElement Item(string text) => JsonDocument.Parse(JsonSerializer.Serialize(new
    {
        @event = "messages.upsert",
        instance = "sales",
        data = new { key = new { id = "3EB0" }, message = new { conversation = text } },
        date_time = "2026-11-29T10:00:00.000Z",
        sender = "5511999999999@s.whatsapp.net",
        apikey = "secret",
    })).RootElement;

    private static string Expected(string text) =>
        "{\"event\":\"messages.upsert\",\"instance\":\"sales\",\"data\":{\"key\":{\"id\":\"3EB0\"},\"message\":{\"conversation\":\""
        + text + "\"}},\"server_url\":\"http://gw\",\"date_time\":\"2026-11-29T10:00:00.000Z\",\"sender\":\"5511999999999@s.whatsapp.net\"}";

    [Fact]
    public void Envelopes_written_one_after_another_on_a_thread_are_each_exactly_their_own()
    {
        var upsert = EventNames.Find("messages.upsert")!;
        var texts = new[] { new string('a', 3_000), "short", new string('b', 100_000), "after the big one" };
        foreach (var text in texts)
        {
            var e = EnvelopeWriter.Build(upsert, "sales", Item(text), "http://gw");
            Assert.Equal(Expected(text), Encoding.UTF8.GetString(e.EnvelopeJson.Span));
        }
    }

    [Fact]
    public void An_envelope_costs_its_bytes_not_a_buffer_grown_to_them()
    {
        var upsert = EventNames.Find("messages.upsert")!;
        var item = Item(new string('x', 4_000));
        EnvelopeWriter.Build(upsert, "sales", item, "http://gw"); // this thread's scratch is made

        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = EnvelopeWriter.Build(upsert, "sales", item, "http://gw");
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        // the envelope's array and the event: 4,312 bytes for 4,209; with a new buffer grown from 256 bytes it was 9,136
        Assert.True(allocated < e.EnvelopeJson.Length + 600, $"{allocated} bytes for a {e.EnvelopeJson.Length}-byte envelope");
    }

    [Fact]
    public async Task A_body_with_a_content_length_is_read_into_one_buffer_of_that_length()
    {
        var bytes = Encoding.UTF8.GetBytes("{\"text\":\"" + new string('y', 4_000) + "\"}");
        var context = new DefaultHttpContext();
        context.Request.Body = new MemoryStream(bytes);
        context.Request.ContentLength = bytes.Length;

        var before = GC.GetAllocatedBytesForCurrentThread();
        var body = await JsonBody.ReadLimitedAsync(context.Request, 64 * 1024, CancellationToken.None);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(bytes, body!.Value.ToArray());
        // the buffer of Content-Length + 1 and its writer: 4,160 bytes for 4,011; growing by 8 KiB on the first read made it 16,392
        Assert.True(allocated < bytes.Length + 600, $"{allocated} bytes to read a {bytes.Length}-byte body");
    }

    [Theory]
    [InlineData(5_000, true, true)]
    [InlineData(5_001, true, false)]
    [InlineData(5_000, false, true)]
    [InlineData(5_001, false, false)]
    [InlineData(40_000, false, false)]
    public async Task A_body_is_read_up_to_the_limit_with_or_without_a_length(int size, bool declared, bool fits)
    {
        var bytes = new byte[size];
        Array.Fill(bytes, (byte)'z');
        var context = new DefaultHttpContext();
        context.Request.Body = new MemoryStream(bytes);
        if (declared)
        {
            context.Request.ContentLength = size;
        }

        var body = await JsonBody.ReadLimitedAsync(context.Request, 5_000, CancellationToken.None);
        Assert.Equal(fits, body is not null);
        if (fits)
        {
            Assert.Equal(size, body!.Value.Length);
        }
    }
}

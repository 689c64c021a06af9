using System.Text;
using System.Text.Json.Nodes;

namespace Evolution.Events.Gateway.Tests;

/// <summary>
/// An event too large for a connection's send queue was answered 202, never delivered, and dropped every
/// subscriber of its namespace (and of <c>/</c>) as slow consumers. It is now refused at ingestion.
/// </summary>
public class BigEventTests
{
    [Fact]
    public async Task AnUndeliverableEventIsRefusedAndSubscribersStayConnected()
    {
        const int queueBytes = 1024 * 1024;
        await using var gw = await TestGateway.StartAsync(new()
        {
            ["WEBSOCKET_GLOBAL_EVENTS"] = "true",
            ["WEBSOCKET_SEND_QUEUE_BYTES"] = queueBytes.ToString(),
        });
        var token = await gw.CreateInstanceAsync("sales");
        await using var websocket = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(token), "websocket");
        await using var polling = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(token), "polling");
        await using var global = await SocketIOEventTests.ConnectAsync(gw, "/", SocketIOEventTests.Auth(TestGateway.Key), "websocket");
        using var plain = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}");
        NodeClient[] socketIO = [websocket, polling, global];

        var big = TestGateway.Event("messages.upsert", "sales", $$"""{"text":"{{new string('x', queueBytes)}}"}""");
        using (var response = await gw.PostAsync("/webhook", $"[{TestGateway.Event("call", "sales")},{big}]"))
        {
            await TestGateway.AssertErrorAsync(response, 413, $"WEBSOCKET_SEND_QUEUE_BYTES={queueBytes}");
            await TestGateway.AssertErrorAsync(response, 413, $"items[1]: the event's envelope is ");
            await TestGateway.AssertErrorAsync(response, 413, $"the largest that can be delivered is {queueBytes - 1024} bytes");
        }

        // just under the limit still reaches everyone, and so does the next small one: nobody was dropped
        var nearLimit = new string('y', queueBytes - 2048);
        await gw.IngestAsync(TestGateway.Event("messages.upsert", "sales", $$"""{"text":"{{nearLimit}}"}"""));
        await gw.IngestAsync(TestGateway.Event("call", "sales", """{"n":2}"""));
        foreach (var client in socketIO)
        {
            var first = await NextEventOrDisconnectAsync(client);
            Assert.Equal(nearLimit, (string?)first["args"]![0]!["data"]!["text"]);
            var second = await NextEventOrDisconnectAsync(client);
            Assert.Equal("call", (string?)second["event"]);
            Assert.Equal(2, (int)second["args"]![0]!["data"]!["n"]!);
        }
        Assert.Equal(nearLimit, (string?)(await TestGateway.ReceiveJsonAsync(plain))["data"]!["text"]);
        Assert.Equal("call", (string?)(await TestGateway.ReceiveJsonAsync(plain))["event"]);
    }

    [Fact]
    public async Task AccentedTextAndEmojiStayUtf8AndArriveExactly()
    {
        await using var gw = await TestGateway.StartAsync();
        var token = await gw.CreateInstanceAsync("sales");
        await using var client = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(token), "websocket");
        using var plain = await gw.ConnectAsync($"/ws/events?apikey={token}");

        var unit = "Olá, ação: café é pão! Ünïcödé ✓ 😀 <b>&'\"\\ ";
        var expected = string.Concat(Enumerable.Repeat(unit, 3_000_000 / Encoding.UTF8.GetByteCount(unit)));
        var data = new JsonObject { ["text"] = expected }.ToJsonString(new System.Text.Json.JsonSerializerOptions
        {
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        });
        var body = TestGateway.Event("messages.upsert", "sales", data);
        await gw.IngestAsync(body);

        // the envelope on the wire is about the size of the text (before: non-ASCII escaped, 2-3x larger)
        var envelope = await TestGateway.ReceiveTextAsync(plain);
        Assert.NotNull(envelope);
        var textBytes = Encoding.UTF8.GetByteCount(expected);
        var envelopeBytes = Encoding.UTF8.GetByteCount(envelope);
        Assert.True(envelopeBytes < textBytes * 1.05 + 512, $"{textBytes} bytes of text became a {envelopeBytes}-byte envelope");
        Assert.Contains("Olá, ação: café é pão! Ünïcödé ✓ 😀 <b>&'", envelope, StringComparison.Ordinal);
        Assert.Equal(expected, (string?)JsonNode.Parse(envelope)!["data"]!["text"]);

        Assert.Equal(expected, (string?)(await client.NextEventAsync(TimeSpan.FromSeconds(20)))["args"]![0]!["data"]!["text"]);
    }

    private static async Task<JsonObject> NextEventOrDisconnectAsync(NodeClient client)
    {
        var line = await client.NextAsync(l => (string?)l["type"] is "event" or "disconnect", TimeSpan.FromSeconds(20));
        Assert.Equal("event", (string?)line["type"]);
        return line;
    }
}

using System.Text;
using System.Text.Json.Nodes;

namespace Evolution.Events.Gateway.Tests;

/// <summary>
/// What a stranger's bad body costs: the answer lists the first <c>ApiError.MaxMessages</c> problems and counts
/// the rest, and the REST bodies are bounded (before: a 10 MB <c>[0,0,…]</c> got a 209 MB answer).
/// </summary>
public class ErrorAmplificationTests
{
    [Fact]
    public async Task TenMegabytesOfBadItemsGetASmallAnswerWithTheFirstTwentyAndTheCount()
    {
        await using var gw = await TestGateway.StartAsync();
        const int items = 5 * 1024 * 1024 - 1; // "[0,0,…,0]": 10 MiB - 1 byte, just under WEBHOOK_MAX_BODY
        var body = new StringBuilder(items * 2 + 1).Append('[');
        for (var i = 0; i < items; i++)
            body.Append(i == 0 ? "0" : ",0");
        body.Append(']');
        // parsing and validating 5 million items takes seconds on a loaded 2-core machine: a patient client
        using var http = new HttpClient { BaseAddress = gw.BaseUri, Timeout = TimeSpan.FromSeconds(120) };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/webhook")
        {
            Content = new StringContent(body.ToString(), Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("apikey", TestGateway.Key);
        using var response = await http.SendAsync(request);

        Assert.Equal(400, (int)response.StatusCode);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(text.Length < 16 * 1024, $"answer of {text.Length} bytes");
        var messages = JsonNode.Parse(text)!["messages"]!.AsArray().Select(m => (string)m!).ToList();
        Assert.Equal(21, messages.Count);
        for (var i = 0; i < 20; i++)
            Assert.Equal($"items[{i}]: must be an event object", messages[i]);
        Assert.Equal($"… and {items - 20} more", messages[20]);
    }

    [Fact]
    public async Task ATokensForeignItemsAreCappedToo()
    {
        await using var gw = await TestGateway.StartAsync();
        var token = await gw.CreateInstanceAsync("sales");
        var body = "[" + string.Join(",", Enumerable.Range(0, 1000).Select(i => TestGateway.Event("call", "other" + i))) + "]";
        using var response = await gw.PostAsync("/webhook", body, token);
        await TestGateway.AssertErrorAsync(response, 403, "items[19].instance");
        var messages = (await TestGateway.ReadJsonAsync(response))!["messages"]!.AsArray();
        Assert.Equal(21, messages.Count);
        Assert.Equal("… and 980 more", (string?)messages[20]);
    }

    [Fact]
    public async Task SettingsBodyIsBoundedAndItsErrorsCapped()
    {
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateInstanceAsync("sales");

        // 12 MB was accepted and answered with one message per item (383 MB); now 413 past 64 KiB
        var huge = """{"websocket":{"enabled":true,"events":[""" + string.Join(",", Enumerable.Repeat("0", 6 * 1024 * 1024)) + "]}}";
        using (var response = await gw.PostAsync("/websocket/set/sales", huge))
            await TestGateway.AssertErrorAsync(response, 413, "body: larger than 65536 bytes");

        // the same without Content-Length (chunked) stops reading at the limit
        var chunked = new HttpRequestMessage(HttpMethod.Post, "/websocket/set/sales")
        {
            Content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(huge))),
        };
        chunked.Headers.TransferEncodingChunked = true;
        chunked.Headers.Add("apikey", TestGateway.Key);
        chunked.Content.Headers.ContentType = new("application/json");
        using (var response = await gw.Http.SendAsync(chunked))
            await TestGateway.AssertErrorAsync(response, 413, "body: larger than 65536 bytes");

        // under the limit, many bad names: the first 20 and the count
        var many = """{"websocket":{"enabled":true,"events":[""" + string.Join(",", Enumerable.Repeat("0", 1000)) + "]}}";
        using (var response = await gw.PostAsync("/websocket/set/sales", many))
        {
            await TestGateway.AssertErrorAsync(response, 400, "websocket.events[19]: must be a string (got a number)");
            var messages = (await TestGateway.ReadJsonAsync(response))!["messages"]!.AsArray();
            Assert.Equal(21, messages.Count);
            Assert.Equal("… and 980 more", (string?)messages[20]);
        }

        // instance creation has the same bound
        var longName = "{\"instanceName\":\"sales2\",\"qrcode\":\"" + new string('x', 70_000) + "\"}";
        using (var response = await gw.PostAsync("/instance/create", longName))
            await TestGateway.AssertErrorAsync(response, 413, "body: larger than 65536 bytes");
    }
}

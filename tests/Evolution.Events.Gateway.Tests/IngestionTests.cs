using System.Text.Json.Nodes;
using Evolution.Events.Gateway.Instances;
using Microsoft.Extensions.DependencyInjection;

namespace Evolution.Events.Gateway.Tests;

public class IngestionTests
{
    [Fact]
    public async Task EnvelopeHasExactlySixKeysAndNeverTheProducersSecrets()
    {
        await using var gw = await TestGateway.StartAsync(new() { ["SERVER_URL"] = "https://gw.example" });
        using var ws = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}");
        await gw.IngestAsync("""
            {"event":"MESSAGES_UPSERT","instance":"sales","data":{"key":{"id":"1"}},"date_time":"2024-01-01T00:00:00Z",
             "sender":"5511@s.whatsapp.net","apikey":"producer-secret","destination":"http://x","extra":1}
            """);
        var envelope = await TestGateway.ReceiveJsonAsync(ws);
        Assert.Equal(["data", "date_time", "event", "instance", "sender", "server_url"], envelope.Select(p => p.Key).Order());
        Assert.Equal("messages.upsert", envelope["event"]!.GetValue<string>());
        Assert.Equal("sales", envelope["instance"]!.GetValue<string>());
        Assert.Equal("1", envelope["data"]!["key"]!["id"]!.GetValue<string>());
        Assert.Equal("https://gw.example", envelope["server_url"]!.GetValue<string>());
        Assert.Equal("2024-01-01T00:00:00Z", envelope["date_time"]!.GetValue<string>());
        Assert.Equal("5511@s.whatsapp.net", envelope["sender"]!.GetValue<string>());

        await gw.IngestAsync("""{"instance":"sales","server_url":"http://producer"}""", "/webhook/connection-update");
        var minimal = await TestGateway.ReceiveJsonAsync(ws);
        Assert.Equal(6, minimal.Count);
        Assert.Equal("connection.update", minimal["event"]!.GetValue<string>());
        Assert.Equal("http://producer", minimal["server_url"]!.GetValue<string>());
        Assert.Null(minimal["data"]);
        Assert.Null(minimal["date_time"]);
        Assert.Null(minimal["sender"]);
    }

    [Fact]
    public async Task BatchKeepsOrderBodyEventWinsAndUnknownInstanceIsRegistered()
    {
        await using var gw = await TestGateway.StartAsync();
        using var ws = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}");
        using var response = await gw.PostAsync("/webhook/messages-upsert", """
            [{"instance":"new-one","data":{"n":1}},{"event":"call","instance":"new-one","data":{"n":2}},
             {"event":"qrcode.updated","instance":"new-one","data":{"n":3}}]
            """);
        Assert.Equal(202, (int)response.StatusCode);
        Assert.True(gw.App.Services.GetRequiredService<InstanceRegistry>().TryGet("new-one", out _));
        var names = new List<string>();
        for (var i = 1; i <= 3; i++)
        {
            var e = await TestGateway.ReceiveJsonAsync(ws);
            Assert.Equal(i, e["data"]!["n"]!.GetValue<int>());
            names.Add(e["event"]!.GetValue<string>());
        }
        Assert.Equal(["messages.upsert", "call", "qrcode.updated"], names);
        using var list = await gw.SendAsync(HttpMethod.Get, "/instance/fetchInstances");
        Assert.Single((await TestGateway.ReadJsonAsync(list))!.AsArray());
    }

    [Fact]
    public async Task BatchWithOneBadItemAcceptsNothing()
    {
        await using var gw = await TestGateway.StartAsync();
        using var ws = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}");
        using var bad = await gw.PostAsync("/webhook", $"[{TestGateway.Event("call", "ghost")},{TestGateway.Event("FOO", "ghost")}]");
        await TestGateway.AssertErrorAsync(bad, 400, "items[1].event: unknown event name 'FOO'");
        Assert.False(gw.App.Services.GetRequiredService<InstanceRegistry>().TryGet("ghost", out _));
        await gw.IngestAsync(TestGateway.Event("presence.update", "marker"));
        var first = await TestGateway.ReceiveJsonAsync(ws);
        Assert.Equal("marker", first["instance"]!.GetValue<string>());
    }

    [Fact]
    public async Task Refusals()
    {
        await using var gw = await TestGateway.StartAsync(new() { ["WEBHOOK_MAX_BODY"] = "1000" });
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/webhook", TestGateway.Event("call", "a"), key: null), 401);
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/webhook", TestGateway.Event("call", "a"), key: "wrong"), 401);
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/webhook", "{not json"), 400, "malformed JSON");
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/webhook", "[]"), 400, "empty array");
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/webhook", "42"), 400, "body");
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/webhook", """{"instance":"a"}"""), 400, "items[0].event: missing");
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/webhook", """{"event":"call"}"""), 400, "items[0].instance");
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/webhook/not-an-event", """{"instance":"a"}"""), 400, "not-an-event");
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/webhook", "[1,2]"), 400, "items[1]: must be an event object");
        var big = TestGateway.Event("call", "a", $$"""{"pad":"{{new string('x', 2000)}}"}""");
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/webhook", big), 413, "WEBHOOK_MAX_BODY");
        using var chunked = new HttpRequestMessage(HttpMethod.Post, "/webhook")
        {
            Content = new StreamContent(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(big))),
        };
        chunked.Headers.Add("apikey", TestGateway.Key);
        chunked.Headers.TransferEncodingChunked = true;
        await TestGateway.AssertErrorAsync(await gw.Http.SendAsync(chunked), 413);
    }

    [Fact]
    public async Task InstanceTokenMayIngestOnlyItsOwnEvents()
    {
        await using var gw = await TestGateway.StartAsync();
        var sales = await gw.CreateInstanceAsync("sales");
        await gw.CreateInstanceAsync("support");
        using var ws = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}");
        using var own = new HttpRequestMessage(HttpMethod.Post, "/webhook")
        {
            Content = new StringContent(TestGateway.Event("call", "sales"), System.Text.Encoding.UTF8, "application/json"),
        };
        own.Headers.Authorization = new("Bearer", sales);
        Assert.Equal(202, (int)(await gw.Http.SendAsync(own)).StatusCode);
        Assert.Equal("sales", (await TestGateway.ReceiveJsonAsync(ws))["instance"]!.GetValue<string>());
        var mixed = $"[{TestGateway.Event("call", "sales")},{TestGateway.Event("call", "support")}]";
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/webhook", mixed, key: sales), 403, "items[1].instance");
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/webhook", TestGateway.Event("call", "unknown"), key: sales), 403);
        Assert.False(gw.App.Services.GetRequiredService<InstanceRegistry>().TryGet("unknown", out _));
        await gw.IngestAsync(TestGateway.Event("presence.update", "marker"));
        Assert.Equal("marker", (await TestGateway.ReceiveJsonAsync(ws))["instance"]!.GetValue<string>());
    }
}

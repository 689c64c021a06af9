using System.Net.WebSockets;
using System.Text;
using Evolution.Events.Gateway.Connections;
using Evolution.Events.Gateway.PlainWebSockets;
using Microsoft.Extensions.DependencyInjection;

namespace Evolution.Events.Gateway.Tests;

public class PlainWebSocketTests
{
    [Fact]
    public async Task PerMessageDeflateIsNegotiatedOnlyWhenOnAndLargeEventsArriveIntact()
    {
        var data = "{\"messages\":[" + string.Join(",", Enumerable.Range(0, 400).Select(i => $"{{\"id\":\"m{i % 20}\",\"text\":\"hello\"}}")) + "]}";
        foreach (var on in new[] { true, false })
        {
            await using var gw = await TestGateway.StartAsync(on ? new() { ["WEBSOCKET_PER_MESSAGE_DEFLATE"] = "true" } : null);
            await gw.CreateInstanceAsync("sales");
            foreach (var path in new[] { $"/ws/events?apikey={TestGateway.Key}", "/socket.io/?EIO=4&transport=websocket" })
            {
                using var ws = new ClientWebSocket();
                ws.Options.DangerousDeflateOptions = new WebSocketDeflateOptions();
                ws.Options.CollectHttpResponseDetails = true;
                await ws.ConnectAsync(gw.WsUri(path), CancellationToken.None);
                var extensions = ws.HttpResponseHeaders?.TryGetValue("Sec-WebSocket-Extensions", out var values) == true ? string.Join(",", values) : "";
                Assert.Equal(on, extensions.StartsWith("permessage-deflate", StringComparison.Ordinal));
                if (!path.StartsWith("/ws/", StringComparison.Ordinal))
                {
                    Assert.StartsWith("0{", await TestGateway.ReceiveTextAsync(ws)); // the Engine.IO open packet
                    continue;
                }

                await gw.IngestAsync(TestGateway.Event("messages.upsert", "sales", data));
                var e = await TestGateway.ReceiveJsonAsync(ws);
                Assert.Equal(400, e["data"]!["messages"]!.AsArray().Count);
            }
        }
    }

    [Fact]
    public async Task GlobalAndScopedSubscribersFollowTheSettings()
    {
        await using var gw = await TestGateway.StartAsync();
        var sales = await gw.CreateInstanceAsync("sales");
        await gw.CreateInstanceAsync("support");
        await gw.SetSettingsAsync("sales", true, "QRCODE_UPDATED");
        await gw.SetSettingsAsync("support", false);
        using var global = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}");
        using var scoped = await gw.ConnectAsync($"/ws/events?token={sales}");
        using var byQuery = await gw.ConnectAsync($"/?apikey={TestGateway.Key}&instance=support");
        await gw.IngestAsync($"[{TestGateway.Event("messages.upsert", "sales")},{TestGateway.Event("call", "support")},"
            + $"{TestGateway.Event("qrcode.updated", "sales")},{TestGateway.Event("qrcode.updated", "support")}]");
        var globalSeen = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            var e = await TestGateway.ReceiveJsonAsync(global);
            globalSeen.Add($"{e["instance"]}/{e["event"]}");
        }
        Assert.Equal(["sales/messages.upsert", "support/call", "sales/qrcode.updated", "support/qrcode.updated"], globalSeen);
        var first = await TestGateway.ReceiveJsonAsync(scoped);
        Assert.Equal("qrcode.updated", first["event"]!.GetValue<string>());
        Assert.Equal("sales", first["instance"]!.GetValue<string>());

        await gw.SetSettingsAsync("support", true);
        await gw.IngestAsync(TestGateway.Event("labels.edit", "support"));
        var afterEnable = await TestGateway.ReceiveJsonAsync(byQuery);
        Assert.Equal("labels.edit", afterEnable["event"]!.GetValue<string>());
    }

    [Fact]
    public async Task Seed003ClientWithEventFilterAndInstanceToken()
    {
        await using var gw = await TestGateway.StartAsync();
        var token = await gw.CreateInstanceAsync("sales");
        using var ws = await gw.ConnectAsync($"/ws/events?event={Uri.EscapeDataString("qrcode.updated")}&token={Uri.EscapeDataString(token)}");
        var test = Encoding.UTF8.GetBytes("""{"message":"test data"}""");
        await ws.SendAsync(test, WebSocketMessageType.Text, true, CancellationToken.None);
        await gw.IngestAsync($"[{TestGateway.Event("connection.update", "sales")},{TestGateway.Event("QRCODE_UPDATED", "other")},"
            + $"{TestGateway.Event("qrcode-updated", "sales", """{"qrcode":{"base64":"data:image/png;base64,AAA"}}""")}]");
        var e = await TestGateway.ReceiveJsonAsync(ws);
        Assert.Equal("qrcode.updated", e["event"]!.GetValue<string>());
        Assert.Equal("data:image/png;base64,AAA", e["data"]!["qrcode"]!["base64"]!.GetValue<string>());

        using var multi = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}&event=MESSAGES_UPSERT,call");
        await gw.IngestAsync($"[{TestGateway.Event("qrcode.updated", "x")},{TestGateway.Event("call", "x")}]");
        Assert.Equal("call", (await TestGateway.ReceiveJsonAsync(multi))["event"]!.GetValue<string>());
    }

    [Fact]
    public async Task RefusalsHappenBeforeTheUpgradeWithJson()
    {
        await using var gw = await TestGateway.StartAsync();
        var sales = await gw.CreateInstanceAsync("sales");
        await TestGateway.AssertErrorAsync(await gw.RawUpgradeAsync("/ws/events?apikey=wrong"), 401, "Invalid API key");
        await TestGateway.AssertErrorAsync(await gw.RawUpgradeAsync("/ws/events"), 401);
        await TestGateway.AssertErrorAsync(await gw.RawUpgradeAsync($"/ws/events?token={sales}&instance=support"), 403, "support");
        await TestGateway.AssertErrorAsync(await gw.RawUpgradeAsync($"/?token={sales}&instance=support"), 403);
        await TestGateway.AssertErrorAsync(await gw.RawUpgradeAsync($"/ws/events?apikey={TestGateway.Key}&event=call,FOO"), 400, "'FOO'");
        await TestGateway.AssertErrorAsync(await gw.RawUpgradeAsync($"/ws/events?apikey={TestGateway.Key}&format=xml"), 400, "format");
        await TestGateway.AssertErrorAsync(await gw.SendAsync(HttpMethod.Get, "/ws/events"), 400, "upgrade");

        using var client = new ClientWebSocket();
        client.Options.CollectHttpResponseDetails = true;
        await Assert.ThrowsAnyAsync<WebSocketException>(() => client.ConnectAsync(gw.WsUri($"/ws/events?token={sales}&instance=other"), CancellationToken.None));
        Assert.Equal(403, (int)client.HttpStatusCode);
    }

    [Fact]
    public async Task DisabledWebSocketsAnswer404Json()
    {
        await using var gw = await TestGateway.StartAsync(new() { ["WEBSOCKET_ENABLED"] = "false" });
        await TestGateway.AssertErrorAsync(await gw.RawUpgradeAsync($"/ws/events?apikey={TestGateway.Key}"), 404, "WEBSOCKET_ENABLED=false");
        await TestGateway.AssertErrorAsync(await gw.RawUpgradeAsync($"/?apikey={TestGateway.Key}"), 404, "WEBSOCKET_ENABLED=false");
        await TestGateway.AssertErrorAsync(await gw.SendAsync(HttpMethod.Get, "/ws/events"), 404, "disabled");
    }

    [Fact]
    public async Task MaxConnectionsIsEnforcedAndReleased()
    {
        await using var gw = await TestGateway.StartAsync(new() { ["WEBSOCKET_MAX_CONNECTIONS"] = "2" });
        var one = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}");
        using var two = await gw.ConnectAsync($"/?apikey={TestGateway.Key}");
        const string limit = "Server is at its connection limit (WEBSOCKET_MAX_CONNECTIONS=2)";
        await TestGateway.AssertExactErrorAsync(await gw.RawUpgradeAsync($"/ws/events?apikey={TestGateway.Key}"), 503, "Service Unavailable", limit);
        await TestGateway.AssertExactErrorAsync(await gw.RawUpgradeAsync($"/?apikey={TestGateway.Key}&format=simple"), 503, "Service Unavailable", limit);
        await one.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
        one.Dispose();
        var gate = gw.App.Services.GetRequiredService<ConnectionGate>();
        await WaitUntilAsync(() => gate.OpenConnections == 1);
        using var three = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}");
        Assert.Equal(WebSocketState.Open, three.State);
    }

    [Fact]
    public async Task ConnectRateIsPerAddressAndForwardedForOnlyFromTrustedProxies()
    {
        await using (var gw = await TestGateway.StartAsync(new() { ["WEBSOCKET_CONNECT_RATE"] = "2" }))
        {
            using var a = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}");
            Assert.Equal(401, (int)(await gw.RawUpgradeAsync("/ws/events?apikey=bad", "10.0.0.9")).StatusCode);
            await TestGateway.AssertErrorAsync(await gw.RawUpgradeAsync($"/ws/events?apikey={TestGateway.Key}", "10.0.0.8"), 429, "WEBSOCKET_CONNECT_RATE");
        }
        await using var trusted = await TestGateway.StartAsync(new()
        {
            ["WEBSOCKET_CONNECT_RATE"] = "1",
            ["TRUSTED_PROXIES"] = "127.0.0.1",
        });
        Assert.Equal(401, (int)(await trusted.RawUpgradeAsync("/ws/events?apikey=bad", "10.0.0.1")).StatusCode);
        Assert.Equal(401, (int)(await trusted.RawUpgradeAsync("/ws/events?apikey=bad", "10.0.0.2")).StatusCode);
        await TestGateway.AssertErrorAsync(await trusted.RawUpgradeAsync("/ws/events?apikey=bad", "10.0.0.1"), 429);
    }

    [Fact]
    public async Task DeletingAnInstanceDisconnectsItsSubscribers()
    {
        await using var gw = await TestGateway.StartAsync();
        var token = await gw.CreateInstanceAsync("sales");
        using var scoped = await gw.ConnectAsync($"/ws/events?token={token}");
        using var global = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}");
        Assert.Equal(200, (int)(await gw.SendAsync(HttpMethod.Delete, "/instance/delete/sales")).StatusCode);
        Assert.Null(await TestGateway.ReceiveTextAsync(scoped));
        Assert.Contains("deleted", scoped.CloseStatusDescription, StringComparison.Ordinal);
        await gw.IngestAsync(TestGateway.Event("call", "x"));
        Assert.Equal("call", (await TestGateway.ReceiveJsonAsync(global))["event"]!.GetValue<string>());
        await TestGateway.AssertErrorAsync(await gw.RawUpgradeAsync($"/ws/events?token={token}"), 401);
    }

    [Fact]
    public async Task OversizedClientMessageClosesWith1009()
    {
        await using var gw = await TestGateway.StartAsync(new() { ["WEBSOCKET_MAX_PAYLOAD"] = "100" });
        using var ws = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}");
        await ws.SendAsync(new byte[50], WebSocketMessageType.Text, true, CancellationToken.None);
        await ws.SendAsync(new byte[500], WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.Null(await TestGateway.ReceiveTextAsync(ws));
        Assert.Equal(WebSocketCloseStatus.MessageTooBig, ws.CloseStatus);
    }

    [Fact]
    public async Task SlowClientIsDroppedWithoutBlockingOthers()
    {
        await using var gw = await TestGateway.StartAsync(new()
        {
            ["WEBSOCKET_SEND_QUEUE"] = "2",
            ["WEBHOOK_MAX_BODY"] = "100000000",
        });
        using var slow = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}");
        var hub = gw.App.Services.GetRequiredService<PlainWebSocketHub>();
        var pad = new string('x', 256 * 1024);
        var batch = "[" + string.Join(',', Enumerable.Range(0, 20).Select(_ => TestGateway.Event("call", "a", $$"""{"p":"{{pad}}"}"""))) + "]";
        for (var i = 0; i < 10 && hub.Count > 0; i++)
            await gw.IngestAsync(batch);
        await WaitUntilAsync(() => hub.Count == 0);
        using var fresh = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}");
        await gw.IngestAsync(TestGateway.Event("presence.update", "marker"));
        Assert.Equal("marker", (await TestGateway.ReceiveJsonAsync(fresh))["instance"]!.GetValue<string>());
    }

    [Fact]
    public async Task ShutdownClosesSocketsPromptly()
    {
        await using var gw = await TestGateway.StartAsync();
        using var ws = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}");
        var started = DateTime.UtcNow;
        await gw.StopAsync();
        // the failure this catches waits for Kestrel's 30 s shutdown timeout; 15 s leaves room for a loaded machine
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(15), $"stop took {DateTime.UtcNow - started}");
        Assert.Null(await TestGateway.ReceiveTextAsync(ws));
        Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, ws.CloseStatus);
    }

    /// <summary>Polls <paramref name="condition"/> for up to 30 s (a loaded 2-core machine); fails with <paramref name="state"/>.</summary>
    internal static async Task WaitUntilAsync(Func<bool> condition, Func<string>? state = null)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition() && DateTime.UtcNow < deadline)
            await Task.Delay(20);
        Assert.True(condition(), $"condition not met within 30 s{(state is null ? "" : ": " + state())}");
    }
}

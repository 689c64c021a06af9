using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using System.Text.Json.Nodes;
using Evolution.Events.Testing;

namespace Evolution.Events.Gateway.Tests;

/// <summary>
/// <c>POST /instance/{name}/token/rotate</c>: a new token; sockets that logged in with the old one are told
/// (<c>token.rotated</c>) and disconnected, on Socket.IO and plain WebSocket, on every node of a Redis registry;
/// the old token is refused, the new one accepted; global-key sockets stay.
/// </summary>
public class TokenRotationTests
{
    private static string TokenAuth(string token) => SocketIOEventTests.Auth(token).ToJsonString();

    private static async Task<string> RotateAsync(TestGateway gw, string name, string? key = TestGateway.Key)
    {
        using var response = await gw.SendAsync(HttpMethod.Post, $"/instance/{name}/token/rotate", key: key);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = (await TestGateway.ReadJsonAsync(response))!.AsObject();
        Assert.Equal(name, body["instanceName"]!.GetValue<string>());
        return body["token"]!.GetValue<string>();
    }

    private static async Task AssertToldAndClosedAsync(ClientWebSocket ws, string instance)
    {
        var told = await TestGateway.ReceiveJsonAsync(ws);
        Assert.Equal("token.rotated", told["event"]!.GetValue<string>());
        Assert.Equal(instance, told["instance"]!.GetValue<string>());
        Assert.Null(await TestGateway.ReceiveTextAsync(ws)); // the close frame
        Assert.Equal(4001, (int)ws.CloseStatus!.Value);
        Assert.Equal("instance token rotated: reconnect with the new token", ws.CloseStatusDescription);
    }

    private static async Task AssertToldAndDisconnectedAsync(NodeClient client, string instance)
    {
        var told = await client.NextEventAsync();
        Assert.Equal("token.rotated", (string?)told["event"]);
        Assert.Equal(instance, (string?)told["args"]![0]!["instance"]);
        Assert.Equal("io server disconnect", (string?)(await client.NextOfTypeAsync("disconnect"))["reason"]);
    }

    [Fact]
    public async Task RotateTellsAndDisconnectsTheOldTokensSockets_OldRefused_NewAccepted()
    {
        await using var gw = await TestGateway.StartAsync();
        var old = await gw.CreateInstanceAsync("sales");
        await using var byToken = NodeClient.Start("client.mjs", gw.BaseUri + "sales", TokenAuth(old));
        await using var byGlobalKey = NodeClient.Start("client.mjs", gw.BaseUri + "sales", TokenAuth(TestGateway.Key));
        await byToken.NextOfTypeAsync("connect");
        await byGlobalKey.NextOfTypeAsync("connect");
        using var plainByToken = await gw.ConnectAsync($"/ws/events?token={old}");
        using var plainByGlobalKey = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}&instance=sales");

        var fresh = await RotateAsync(gw, "sales");
        Assert.NotEqual(old, fresh);

        await AssertToldAndDisconnectedAsync(byToken, "sales");
        await AssertToldAndClosedAsync(plainByToken, "sales");

        // old token: refused everywhere; new token: accepted
        await TestGateway.AssertErrorAsync(await gw.RawUpgradeAsync($"/ws/events?token={old}"), 401);
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/webhook", TestGateway.Event("messages.upsert", "sales"), key: old), 401);
        await using var again = NodeClient.Start("client.mjs", gw.BaseUri + "sales", TokenAuth(old));
        Assert.Equal("Invalid API key", (string?)(await again.NextOfTypeAsync("connect_error"))["message"]);
        await using var renewed = NodeClient.Start("client.mjs", gw.BaseUri + "sales", TokenAuth(fresh));
        await renewed.NextOfTypeAsync("connect");
        using var plainRenewed = await gw.ConnectAsync($"/ws/events?token={fresh}");

        // the global key's sockets were not touched, and the instance (settings, name) is the same one
        using (var listed = await gw.SendAsync(HttpMethod.Get, "/instance/fetchInstances?instanceName=sales"))
            Assert.Equal(fresh, (await TestGateway.ReadJsonAsync(listed))!.AsArray().Single()!["token"]!.GetValue<string>());
        await gw.IngestAsync(TestGateway.Event("messages.upsert", "sales"));
        Assert.Equal("messages.upsert", (string?)(await byGlobalKey.NextEventAsync())["event"]);
        Assert.Equal("messages.upsert", (string?)(await renewed.NextEventAsync())["event"]);
        Assert.Equal("messages.upsert", (await TestGateway.ReceiveJsonAsync(plainByGlobalKey))["event"]!.GetValue<string>());
        Assert.Equal("messages.upsert", (await TestGateway.ReceiveJsonAsync(plainRenewed))["event"]!.GetValue<string>());
    }

    [Fact]
    public async Task TheInstanceTokenMayRotateItself_NotAnotherInstance()
    {
        await using var gw = await TestGateway.StartAsync();
        var sales = await gw.CreateInstanceAsync("sales");
        await gw.CreateInstanceAsync("support");
        await TestGateway.AssertErrorAsync(await gw.SendAsync(HttpMethod.Post, "/instance/support/token/rotate", key: sales), 403);
        await TestGateway.AssertErrorAsync(await gw.SendAsync(HttpMethod.Post, "/instance/sales/token/rotate", key: null), 401);
        await TestGateway.AssertErrorAsync(await gw.SendAsync(HttpMethod.Post, "/instance/nobody/token/rotate"), 404);
        var fresh = await RotateAsync(gw, "sales", key: sales);
        await TestGateway.AssertErrorAsync(await gw.SendAsync(HttpMethod.Post, "/instance/sales/token/rotate", key: sales), 401);
        Assert.NotEqual(sales, await RotateAsync(gw, "sales", key: fresh));
    }

    [Fact]
    public async Task RotatedOnOneNode_SocketsOnTheOtherAreToldAndDisconnected_Redis()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var a = await TestGateway.StartAsync(new() { ["REDIS_URI"] = redis.Uri() });
        await using var b = await TestGateway.StartAsync(new() { ["REDIS_URI"] = redis.Uri() });
        var old = await a.CreateInstanceAsync("sales");
        var clock = Stopwatch.StartNew();
        while (true)
        {
            using var probe = await b.RawUpgradeAsync($"/ws/events?token={old}&instance=nobody-valid!");
            if (probe.StatusCode != HttpStatusCode.Unauthorized)
                break; // B knows the token (the bad ?instance= answers 400 after authentication)
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), "the instance did not reach node B");
            await Task.Delay(50);
        }
        await using var onB = NodeClient.Start("client.mjs", b.BaseUri + "sales", TokenAuth(old));
        await onB.NextOfTypeAsync("connect");
        using var plainOnB = await b.ConnectAsync($"/ws/events?token={old}");

        var fresh = await RotateAsync(a, "sales");

        await AssertToldAndDisconnectedAsync(onB, "sales");
        await AssertToldAndClosedAsync(plainOnB, "sales");
        await TestGateway.AssertErrorAsync(await b.RawUpgradeAsync($"/ws/events?token={old}"), 401);
        using var renewed = await b.ConnectAsync($"/ws/events?token={fresh}");
        Assert.Equal(WebSocketState.Open, renewed.State);
    }
}

using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using Evolution.Events.EngineIO;
using Evolution.Events.Gateway.Connections;
using Evolution.Events.Gateway.PlainWebSockets;
using Evolution.Events.SocketIO;
using Microsoft.Extensions.DependencyInjection;

namespace Evolution.Events.Gateway.Tests;

/// <summary>Socket.IO connections coming and going: instance delete, WEBSOCKET_ENABLED, WEBSOCKET_MAX_CONNECTIONS, hostile input.</summary>
public class SocketIOLifecycleTests
{
    private const string PollingHandshake = "/socket.io/?EIO=4&transport=polling";
    private const string WebSocketHandshake = "/socket.io/?EIO=4&transport=websocket";

    [Fact]
    public async Task DeletingAnInstanceDisconnectsItsSockets()
    {
        await using var gw = await TestGateway.StartAsync();
        var sales = await gw.CreateInstanceAsync("sales");
        await gw.CreateInstanceAsync("support");
        await using var byToken = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(sales), "websocket");
        await using var byKey = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(TestGateway.Key));
        await using var other = await SocketIOEventTests.ConnectAsync(gw, "/support", SocketIOEventTests.Auth(TestGateway.Key), "websocket");

        Assert.Equal(200, (int)(await gw.SendAsync(HttpMethod.Delete, "/instance/delete/sales")).StatusCode);
        Assert.Equal("io server disconnect", (string?)(await byToken.NextOfTypeAsync("disconnect"))["reason"]);
        Assert.Equal("io server disconnect", (string?)(await byKey.NextOfTypeAsync("disconnect"))["reason"]);
        await gw.IngestAsync(TestGateway.Event("call", "support"));
        Assert.Equal("call", (string?)(await other.NextEventAsync())["event"]);
    }

    [Fact]
    public async Task DisabledWebSocketsMakeSocketIOAnswer404Json()
    {
        await using var gw = await TestGateway.StartAsync(new() { ["WEBSOCKET_ENABLED"] = "false" });
        await TestGateway.AssertErrorAsync(await gw.SendAsync(HttpMethod.Get, PollingHandshake), 404, "WEBSOCKET_ENABLED=false");
        await TestGateway.AssertErrorAsync(await gw.RawUpgradeAsync(WebSocketHandshake), 404, "WEBSOCKET_ENABLED=false");
        await TestGateway.AssertErrorAsync(await gw.SendAsync(HttpMethod.Post, PollingHandshake + "&sid=x", "40"), 404, "WEBSOCKET_ENABLED=false");
        var refused = await SocketIOAuthTests.ConnectAllAsync(gw, ("node", "/sales", SocketIOEventTests.Auth(TestGateway.Key)));
        Assert.False((bool)refused["node"]["ok"]!);
        // REST still works
        Assert.Equal(200, (int)(await gw.SendAsync(HttpMethod.Get, "/instance/fetchInstances")).StatusCode);
    }

    /// <summary>The refusal past WEBSOCKET_MAX_CONNECTIONS=2, as docs/configuration.md documents it.</summary>
    private const string LimitMessage = "Server is at its connection limit (WEBSOCKET_MAX_CONNECTIONS=2)";

    [Fact]
    public async Task MaxConnectionsRefusesTheJoinWithConnectErrorAndIsReleasedOnClose()
    {
        await using var gw = await TestGateway.StartAsync(new() { ["WEBSOCKET_MAX_CONNECTIONS"] = "2" });
        var gate = gw.App.Services.GetRequiredService<ConnectionGate>();
        await using var one = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(TestGateway.Key), "websocket");
        await using var two = await SocketIOEventTests.ConnectAsync(gw, "/", SocketIOEventTests.Auth(TestGateway.Key), "polling");
        Assert.Equal(2, gate.OpenConnections);

        // a handshake takes no slot; joining a namespace does, and is refused past the limit
        using (var handshake = await gw.SendAsync(HttpMethod.Get, PollingHandshake))
        {
            Assert.Equal(200, (int)handshake.StatusCode);
        }

        // the plain WebSocket shares the same count
        await TestGateway.AssertExactErrorAsync(await gw.RawUpgradeAsync($"/ws/events?apikey={TestGateway.Key}"),
            503, "Service Unavailable", LimitMessage);
        // refused with the documented CONNECT_ERROR message, over either transport, whatever the namespace
        var third = await SocketIOAuthTests.ConnectAllAsync(gw,
            ("ws", "/sales", SocketIOEventTests.Auth(TestGateway.Key)),
            ("main", "/", SocketIOEventTests.Auth(TestGateway.Key)));
        foreach (var (label, result) in third)
        {
            Assert.False((bool)result["ok"]!, $"{label} should be refused: {result.ToJsonString()}");
            Assert.Equal(LimitMessage, (string?)result["message"]);
        }
        Assert.Equal(2, gate.OpenConnections);

        await one.SendAsync(new JsonObject { ["cmd"] = "exit" });
        await one.WaitForExitAsync();
        await PlainWebSocketTests.WaitUntilAsync(() => gate.OpenConnections == 1);
        await using var again = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(TestGateway.Key), "websocket");
        Assert.Equal(2, gate.OpenConnections);
        await two.SendAsync(new JsonObject { ["cmd"] = "exit" });
        await two.WaitForExitAsync();
        await PlainWebSocketTests.WaitUntilAsync(() => gate.OpenConnections == 1);
    }

    [Fact]
    public async Task KeylessHandshakesBeyondTheLimitNeitherTakeSlotsNorStay()
    {
        const int cap = 5;
        await using var gw = await TestGateway.StartAsync(new()
        {
            ["WEBSOCKET_MAX_CONNECTIONS"] = cap.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["WEBSOCKET_CONNECT_TIMEOUT_MS"] = "1500",
        });
        var gate = gw.App.Services.GetRequiredService<ConnectionGate>();
        var io = gw.App.Services.GetRequiredService<SocketIOServer>();

        // 4x the limit of keyless handshakes, each with a 30 KB header; a third also try to join without a key
        var sids = new List<string>();
        for (var i = 0; i < 4 * cap; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, PollingHandshake);
            request.Headers.Add("X-Padding", new string('p', 30_000));
            using var handshake = await gw.Http.SendAsync(request);
            Assert.Equal(200, (int)handshake.StatusCode);
            var body = await handshake.Content.ReadAsStringAsync();
            var sid = JsonNode.Parse(body[1..])!["sid"]!.GetValue<string>();
            sids.Add(sid);
            Assert.True(io.Engine.TryGetSession(sid, out var session));
            Assert.DoesNotContain("X-Padding", session.Request.Headers.Keys);
            if (i % 3 == 0)
            {
                using var connect = await gw.SendAsync(HttpMethod.Post, PollingHandshake + "&sid=" + sid, "40/sales,", key: null);
                Assert.Equal(200, (int)connect.StatusCode);
            }
        }

        Assert.Equal(0, gate.OpenConnections);
        Assert.Equal(4 * cap, io.PendingConnectionCount);

        // a client with a key connects at once
        var joined = DateTime.UtcNow;
        await using var keyed = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(TestGateway.Key), "websocket");
        Assert.Equal(1, gate.OpenConnections);

        // and the keyless ones are closed by WEBSOCKET_CONNECT_TIMEOUT_MS (1.5 s), not by the ping timeout (45 s):
        // 20 s tells the two apart with room for a loaded machine
        await PlainWebSocketTests.WaitUntilAsync(() => io.PendingConnectionCount == 0);
        Assert.True(DateTime.UtcNow - joined < TimeSpan.FromSeconds(20), $"pending connections closed after {DateTime.UtcNow - joined}");
        foreach (var sid in sids)
        {
            Assert.True(!io.Engine.TryGetSession(sid, out var session) || session.ReadyState != EngineReadyState.Open);
        }

        Assert.Equal(1, gate.OpenConnections);
        await gw.IngestAsync(TestGateway.Event("qrcode.updated", "sales"));
        Assert.Equal("qrcode.updated", (string?)(await keyed.NextEventAsync())["event"]);
    }

    [Fact]
    public async Task PendingConnectionsAreBoundedTheOldestGoingFirst()
    {
        await using var gw = await TestGateway.StartAsync(new() { ["WEBSOCKET_MAX_PENDING"] = "3" });
        var io = gw.App.Services.GetRequiredService<SocketIOServer>();
        var sids = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            using var handshake = await gw.SendAsync(HttpMethod.Get, PollingHandshake);
            sids.Add(JsonNode.Parse((await handshake.Content.ReadAsStringAsync())[1..])!["sid"]!.GetValue<string>());
        }

        Assert.Equal(3, io.PendingConnectionCount);
        using var poll = await gw.SendAsync(HttpMethod.Get, PollingHandshake + "&sid=" + sids[0]);
        Assert.Equal("1", await poll.Content.ReadAsStringAsync()); // the oldest was closed
        await using var keyed = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(TestGateway.Key), "polling");
    }

    [Fact]
    public async Task ShutdownClosesSocketIOConnectionsPromptly()
    {
        await using var gw = await TestGateway.StartAsync();
        await using var ws = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(TestGateway.Key), "websocket");
        await using var polling = await SocketIOEventTests.ConnectAsync(gw, "/", SocketIOEventTests.Auth(TestGateway.Key), "polling");
        var started = DateTime.UtcNow;
        await gw.StopAsync();
        // was 30 s (Kestrel's shutdown timeout): sessions were closed only after Kestrel had drained connections;
        // 15 s tells the two apart with room for a loaded machine
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(15), $"stop took {DateTime.UtcNow - started}");
        await ws.NextOfTypeAsync("disconnect");
        await polling.NextOfTypeAsync("disconnect");
    }

    /// <summary>Engine.IO / Socket.IO packets no client library would send.</summary>
    private static readonly string[] Garbage =
    [
        "", "x", "9", "4", "40/", "4x", "41", "6", "5", "3probe", "1", "0", "2", "7{}", "8",
        "40{", "40[1,2]", "40\"text\"", "40{\"apikey\":123}", "40{\"apikey\":{\"a\":[1]}}", "40{\"token\":null}",
        "40/sales", "40/sales,", "40/sales,{\"apikey\":\"" + TestGateway.Key + "\"", "40/" + new string('n', 5000) + ",{}",
        "40/%00,{}", "40/../x,{}", "40/sales\u0000,{}", "44/sales,{\"message\":\"x\"}",
        "42[\"ev\"", "42[]", "42[1]", "42[null]", "42{}", "42\"ev\"", "42[\"connect\"]", "42[\"disconnect\"]",
        "42/sales,[\"ev\",1]", "42/sales,[]", "42/sales,[{}]", "42/sales,5[\"__proto__\",{\"constructor\":{}}]",
        "4299999999999999999999999[\"ev\"]", "42-1[\"ev\"]", "43[]", "431[]", "43/sales,7[\"x\"]", "41/sales,", "41/nope,",
        "451-[\"ev\",{\"_placeholder\":true,\"num\":0}]", "45999-[\"ev\"]", "461-/sales,1[{\"_placeholder\":true,\"num\":5}]",
        "452-/sales,[\"ev\",{\"_placeholder\":true,\"num\":7}]", "49", "4-1",
        "40" + new string('[', 10000) + new string(']', 10000),
        "42/sales,[\"ev\"," + new string('[', 10000) + new string(']', 10000) + "]",
        "b", "b4AAAA", "bnot base64",
    ];

    [Fact]
    public async Task GarbageOverRawWebSocketsDoesNotHurtTheServer()
    {
        await using var gw = await TestGateway.StartAsync();
        await Task.WhenAll(Garbage.Select(packet => SendGarbageAsync(gw, packet)));
        // every garbage connection is gone (each client dropped its WebSocket): nothing leaks a session or a slot
        await AssertNoConnectionsLeftAsync(gw);
        await AssertStillServesAsync(gw);
        await AssertNoConnectionsLeftAsync(gw);
    }

    /// <summary>
    /// Waits until the engine has no session, the Socket.IO server no pending connection, the gate no slot taken,
    /// the plain WebSocket hub no connection and no namespace a socket; then the scraped gauges say 0 too.
    /// </summary>
    internal static async Task AssertNoConnectionsLeftAsync(TestGateway gw)
    {
        var io = gw.App.Services.GetRequiredService<SocketIOServer>();
        var gate = gw.App.Services.GetRequiredService<ConnectionGate>();
        var hub = gw.App.Services.GetRequiredService<PlainWebSocketHub>();
        await PlainWebSocketTests.WaitUntilAsync(
            () => io.Engine.SessionCount == 0 && io.Engine.WebSocketSessionCount == 0 && io.PendingConnectionCount == 0
                && gate.OpenConnections == 0 && hub.Count == 0 && io.Namespaces.All(n => n.SocketCount == 0),
            () => $"sessions {io.Engine.SessionCount} (websocket {io.Engine.WebSocketSessionCount}), pending {io.PendingConnectionCount}, "
                + $"slots {gate.OpenConnections}, plain {hub.Count}, "
                + string.Join(", ", io.Namespaces.Where(n => n.SocketCount > 0).Select(n => $"{n.Name}: {n.SocketCount} sockets")));
        var metrics = await gw.MetricsAsync();
        Assert.Equal(0, ObservabilityTests.Sample(metrics, "evolution_socketio_connections", "transport=\"websocket\""));
        Assert.Equal(0, ObservabilityTests.Sample(metrics, "evolution_socketio_connections", "transport=\"polling\""));
        Assert.Equal(0, ObservabilityTests.Sample(metrics, "evolution_plain_websocket_connections", null));
        var sockets = System.Text.RegularExpressions.Regex.Matches(metrics, @"^evolution_socketio_sockets\{namespace=""([^""]*)""\} (\S+)$",
            System.Text.RegularExpressions.RegexOptions.Multiline);
        Assert.NotEmpty(sockets);
        Assert.All(sockets, m => Assert.True(m.Groups[2].Value == "0", $"evolution_socketio_sockets{{namespace=\"{m.Groups[1].Value}\"}} {m.Groups[2].Value}"));
    }

    private static async Task SendGarbageAsync(TestGateway gw, string packet)
    {
        using var ws = await gw.ConnectAsync(WebSocketHandshake);
        Assert.StartsWith("0{", await TestGateway.ReceiveTextAsync(ws), StringComparison.Ordinal);
        // a legitimate namespace first, so that packets for it reach a socket
        await SendAsync(ws, "40/sales,{\"apikey\":\"" + TestGateway.Key + "\"}");
        Assert.StartsWith("40/sales,", await TestGateway.ReceiveTextAsync(ws), StringComparison.Ordinal);
        await SendAsync(ws, packet);
        await SendAsync(ws, [0xff, 0x00, 0x13, 0x37], WebSocketMessageType.Binary);
        await SendAsync(ws, [0x34, 0x32, 0xc3, 0x28], WebSocketMessageType.Text); // "42" + invalid UTF-8
        await SendAsync(ws, packet);
        await DrainAsync(ws, TimeSpan.FromMilliseconds(200));
    }

    [Fact]
    public async Task GarbageOverPollingDoesNotHurtTheServer()
    {
        await using var gw = await TestGateway.StartAsync();
        var sids = new List<string>();
        foreach (var body in new[] { "", "4", "42[", "1:4", "40\u001e42[\"ev\"\u001e", "\u001e\u001e", "b////", new string('4', 100_000), "6" })
        {
            using var handshake = await gw.SendAsync(HttpMethod.Get, PollingHandshake);
            var open = JsonNode.Parse((await handshake.Content.ReadAsStringAsync())[1..])!;
            var sid = (string)open["sid"]!;
            sids.Add(sid);
            using var post = await gw.SendAsync(HttpMethod.Post, PollingHandshake + "&sid=" + sid, body);
            Assert.True((int)post.StatusCode is 200 or 400, $"{(int)post.StatusCode} for {body[..Math.Min(body.Length, 20)]}");
        }
        using var noSid = await gw.SendAsync(HttpMethod.Post, PollingHandshake + "&sid=nope", "40");
        Assert.Equal(400, (int)noSid.StatusCode);
        using var badEio = await gw.SendAsync(HttpMethod.Get, "/socket.io/?EIO=3&transport=polling");
        Assert.Equal(400, (int)badEio.StatusCode);

        // a polling client that leaves says so (close packet "1"); the server already closed the sessions it
        // refused (400). Then nothing is left: no session, no pending connection, no slot.
        foreach (var sid in sids)
        {
            using var close = await gw.SendAsync(HttpMethod.Post, PollingHandshake + "&sid=" + sid, "1", key: null);
            Assert.True((int)close.StatusCode is 200 or 400, $"{(int)close.StatusCode} closing {sid}");
        }
        await AssertNoConnectionsLeftAsync(gw);
        await AssertStillServesAsync(gw);
        await AssertNoConnectionsLeftAsync(gw);
    }

    /// <summary>A normal Node client connects to /sales and receives an event.</summary>
    internal static async Task AssertStillServesAsync(TestGateway gw)
    {
        await using var client = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(TestGateway.Key), "websocket");
        var marker = Guid.NewGuid().ToString("N");
        await gw.IngestAsync(TestGateway.Event("messages.upsert", "sales", $$"""{"marker":"{{marker}}"}"""));
        var e = await client.NextAsync(l => (string?)l["type"] == "event" && (string?)l["args"]![0]!["data"]!["marker"] == marker);
        Assert.Equal("messages.upsert", (string?)e["event"]);
    }

    private static Task SendAsync(ClientWebSocket ws, string text) =>
        SendAsync(ws, Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text);

    /// <summary>Sends unless the server already closed the connection (which is a fine answer to garbage).</summary>
    private static async Task SendAsync(ClientWebSocket ws, byte[] bytes, WebSocketMessageType type)
    {
        try
        {
            if (ws.State == WebSocketState.Open)
                await ws.SendAsync(bytes, type, true, CancellationToken.None);
        }
        catch (WebSocketException)
        {
        }
    }

    private static async Task DrainAsync(ClientWebSocket ws, TimeSpan quiet)
    {
        var buffer = new byte[16 * 1024];
        using var cts = new CancellationTokenSource(quiet);
        try
        {
            while (ws.State == WebSocketState.Open)
            {
                var r = await ws.ReceiveAsync(buffer, cts.Token);
                if (r.MessageType == WebSocketMessageType.Close)
                    return;
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or WebSocketException)
        {
        }
    }
}

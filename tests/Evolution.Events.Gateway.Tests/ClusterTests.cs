using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Evolution.Events.Gateway.Events;
using Evolution.Events.Testing;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;

namespace Evolution.Events.Gateway.Tests;

/// <summary>
/// Two gateways in this process on one real redis-server (REDIS_ADAPTER streams and pubsub): a Socket.IO client that
/// drops from node A and reconnects to node B recovers what it missed there, with or without an offset; the last
/// state is replayed by a node that did not ingest it; the stream reader catches up after its connection dropped;
/// /dashboard/stats lists both nodes.
/// </summary>
public sealed class ClusterTests
{
    private static Task<TestGateway> NodeAsync(RedisServer redis, string mode) =>
        TestGateway.StartAsync(new() { ["REDIS_URI"] = redis.Uri(), ["REDIS_ADAPTER"] = mode, ["NODE_HEARTBEAT_MS"] = "200",
            ["NODE_ID"] = "node-" + Guid.NewGuid().ToString("N")[..6] });

    private static async Task EventuallyAsync(Func<Task<bool>> condition, string what, int seconds = 15)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(seconds), $"not within {seconds} s: {what}");
            await Task.Delay(50);
        }
    }

    private static async Task<string> SharedInstanceAsync(TestGateway a, TestGateway b, string name)
    {
        var token = await a.CreateInstanceAsync(name);
        await EventuallyAsync(async () =>
        {
            using var response = await b.SendAsync(HttpMethod.Get, $"/instance/fetchInstances?instanceName={name}");
            return (await TestGateway.ReadJsonAsync(response))!.AsArray().Count == 1;
        }, $"{name} known on B");
        return token;
    }

    private static NodeClient RecoveryClient(TestGateway gw, string nsp, string token)
    {
        var options = new JsonObject { ["auth"] = new JsonObject { ["token"] = token }, ["transports"] = new JsonArray("websocket") };
        return NodeClient.Start("recovery-client.mjs", gw.BaseUri.ToString().TrimEnd('/') + nsp, options.ToJsonString());
    }

    private static string Msg(string instance, int seq) => TestGateway.Event("messages.upsert", instance, $$"""{"seq":{{seq}}}""");

    private static int Seq(JsonObject e) => (int)e["args"]![0]!["data"]!["seq"]!;

    /// <summary>Cuts the client's proxy and waits until node A kept its session in Redis.</summary>
    private static async Task CutAsync(RedisServer redis, NodeClient client)
    {
        await using var mux = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{redis.Port}");
        var server = mux.GetServer(mux.GetEndPoints()[0]);
        await client.SendAsync(new JsonObject { ["cmd"] = "cut" });
        await client.NextOfTypeAsync("disconnect");
        await EventuallyAsync(async () =>
        {
            await foreach (var _ in server.KeysAsync(pattern: "evolution-events:session:*"))
                return true;
            return false;
        }, "A kept the session in Redis", 60);
    }

    [Theory]
    [InlineData("streams")]
    [InlineData("pubsub")]
    public async Task AClientThatDropsFromARecoversOnB_EveryMissedEventOnce(string mode)
    {
        await using var redis = await RedisServer.StartAsync();
        await using var a = await NodeAsync(redis, mode);
        await using var b = await NodeAsync(redis, mode);
        var token = await SharedInstanceAsync(a, b, "sales");

        await using var client = RecoveryClient(a, "/sales", token);
        var connect = await client.NextOfTypeAsync("connect");
        await a.IngestAsync(Msg("sales", 1));
        Assert.Equal(1, Seq(await client.NextEventAsync()));

        await CutAsync(redis, client);
        // missed events ingested on both nodes; B has no socket on /sales yet
        await a.IngestAsync($"[{Msg("sales", 2)},{Msg("sales", 3)}]");
        await b.IngestAsync(Msg("sales", 4));
        await a.IngestAsync(Msg("other", -1));
        await client.SendAsync(new JsonObject { ["cmd"] = "heal", ["target"] = b.BaseUri.ToString() });

        var again = await client.NextOfTypeAsync("connect", TimeSpan.FromSeconds(20));
        Assert.True((bool)again["recovered"]!, again.ToJsonString());
        Assert.Equal((string?)connect["id"], (string?)again["id"]);
        foreach (var expected in new[] { 2, 3, 4 })
            Assert.Equal(expected, Seq(await client.NextEventAsync()));
        await a.IngestAsync(Msg("sales", 5));
        Assert.Equal(5, Seq(await client.NextEventAsync()));
        await client.AssertNoEventAsync(TimeSpan.FromMilliseconds(300));

        var io = b.App.Services.GetRequiredService<SocketIO.SocketIOServer>();
        Assert.Equal(1, io.Recovery.Recovered);
    }

    [Theory]
    [InlineData("streams")]
    [InlineData("pubsub")]
    public async Task AClientThatReceivedNothingRecoversOnBFromItsJoinPoint(string mode)
    {
        await using var redis = await RedisServer.StartAsync();
        await using var a = await NodeAsync(redis, mode);
        await using var b = await NodeAsync(redis, mode);
        var token = await SharedInstanceAsync(a, b, "sales");
        await b.IngestAsync(Msg("sales", 0)); // before the client joined: never delivered to it

        await using var client = RecoveryClient(a, "/sales", token);
        var connect = await client.NextOfTypeAsync("connect");
        await CutAsync(redis, client); // no event received: socket.io-client reconnects with {pid} alone
        await b.IngestAsync(Msg("sales", 1));
        await a.IngestAsync(Msg("sales", 2));
        await client.SendAsync(new JsonObject { ["cmd"] = "heal", ["target"] = b.BaseUri.ToString() });

        var again = await client.NextOfTypeAsync("connect", TimeSpan.FromSeconds(20));
        Assert.True((bool)again["recovered"]!, again.ToJsonString());
        Assert.Equal((string?)connect["id"], (string?)again["id"]);
        Assert.Equal(1, Seq(await client.NextEventAsync()));
        Assert.Equal(2, Seq(await client.NextEventAsync()));
        await client.AssertNoEventAsync(TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public async Task TheLastStateIsReplayedByANodeThatDidNotIngestIt()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var a = await NodeAsync(redis, "streams");
        await using var b = await NodeAsync(redis, "streams");
        var token = await SharedInstanceAsync(a, b, "sales");
        await a.IngestAsync(TestGateway.Event("connection.update", "sales", """{"state":"connecting","seq":1}"""));
        await a.IngestAsync(TestGateway.Event("qrcode.updated", "sales", """{"qrcode":{"code":"abc"},"seq":2}"""));
        // the fan-out of B has passed both (a plain client on B sees them) before the Socket.IO client joins there
        using (var probe = await b.ConnectAsync($"/ws/events?token={token}"))
        {
            await a.IngestAsync(Msg("sales", 3));
            // a plain client is given the last state too (B's own replay): connection.update, qrcode.updated, then live
            Assert.Equal("connection.update", (string?)(await TestGateway.ReceiveJsonAsync(probe))["event"]);
            Assert.Equal("qrcode.updated", (string?)(await TestGateway.ReceiveJsonAsync(probe))["event"]);
            Assert.Equal("messages.upsert", (string?)(await TestGateway.ReceiveJsonAsync(probe))["event"]);
        }

        await using var client = await SocketIOEventTests.ConnectAsync(b, "/sales", new JsonObject { ["auth"] = new JsonObject { ["token"] = token } });
        var state = await client.NextEventAsync();
        Assert.Equal("connection.update", (string?)state["event"]);
        var qr = await client.NextEventAsync();
        Assert.Equal("qrcode.updated", (string?)qr["event"]);
        Assert.Equal(2, Seq(qr));
        await a.IngestAsync(Msg("sales", 4));
        Assert.Equal(4, Seq(await client.NextEventAsync()));
    }

    [Fact]
    public async Task AStreamReaderWhoseConnectionDroppedCatchesUp_NothingLostNothingTwice()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var a = await NodeAsync(redis, "streams");
        await using var b = await NodeAsync(redis, "streams");
        var token = await SharedInstanceAsync(a, b, "sales");
        using var wsB = await b.ConnectAsync($"/ws/events?token={token}");
        var busB = b.App.Services.GetRequiredService<RedisEventBus>();
        await using var mux = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{redis.Port},allowAdmin=true");

        const int events = 40;
        for (var i = 0; i < events; i++)
        {
            if (i % 10 == 0)
            {
                // drop B's reader connection: what A publishes meanwhile waits in the stream
                var list = (string)(await mux.GetDatabase().ExecuteAsync("CLIENT", "LIST"))!;
                foreach (var line in list.Split('\n').Where(l => l.Contains("name=" + busB.ReaderClientName + " ")))
                    await mux.GetDatabase().ExecuteAsync("CLIENT", "KILL", "ID", line.Split(' ')[0]["id=".Length..]);
            }
            await a.IngestAsync(Msg("sales", i));
        }
        for (var i = 0; i < events; i++)
            Assert.Equal(i, (int)(await TestGateway.ReceiveJsonAsync(wsB))["data"]!["seq"]!);
        await a.IngestAsync(Msg("sales", -2));
        Assert.Equal(-2, (int)(await TestGateway.ReceiveJsonAsync(wsB))["data"]!["seq"]!);
        Assert.True(busB.ReaderReconnects >= 1, "B's reader never lost its connection");
    }

    [Fact]
    public async Task DashboardStatsListsEveryNode_AndANodeThatStoppedDisappears()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var a = await NodeAsync(redis, "streams");
        var b = await NodeAsync(redis, "streams");
        var token = await SharedInstanceAsync(a, b, "sales");
        using var wsB = await b.ConnectAsync($"/ws/events?token={token}");

        JsonObject stats = new();
        await EventuallyAsync(async () =>
        {
            using var response = await a.SendAsync(HttpMethod.Get, "/dashboard/stats");
            stats = (await TestGateway.ReadJsonAsync(response))!.AsObject();
            return stats["cluster"]!["nodes"]!.GetValue<int>() == 2 && stats["cluster"]!["plainWebSockets"]!.GetValue<int>() == 1;
        }, "A lists both nodes and B's plain WebSocket");
        var nodes = stats["nodes"]!.AsArray();
        Assert.True(nodes[0]!["self"]!.GetValue<bool>());
        Assert.Equal(stats["node"]!.GetValue<string>(), nodes[0]!["id"]!.GetValue<string>());
        Assert.Equal(1, nodes[1]!["plainWebSockets"]!.GetValue<int>());
        Assert.NotEqual(nodes[0]!["id"]!.GetValue<string>(), nodes[1]!["id"]!.GetValue<string>());

        await b.DisposeAsync();
        await EventuallyAsync(async () =>
        {
            using var response = await a.SendAsync(HttpMethod.Get, "/dashboard/stats");
            return (await TestGateway.ReadJsonAsync(response))!["cluster"]!["nodes"]!.GetValue<int>() == 1;
        }, "B is gone from A's view");
    }
}

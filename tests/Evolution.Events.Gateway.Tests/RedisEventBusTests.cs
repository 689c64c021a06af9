using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Evolution.Events.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace Evolution.Events.Gateway.Tests;

/// <summary>
/// The event bus through Redis (REDIS_URI): two real gateways in this process on one real redis-server; an
/// event ingested at either node reaches the subscribers of both, once, in order.
/// </summary>
public sealed class RedisEventBusTests(ITestOutputHelper output)
{
    private const string Channel = "evolution-events:events";
    private const string Stream = "evolution-events:stream";
    private static readonly TimeSpan Recovery = TimeSpan.FromSeconds(30);

    private static Task<TestGateway> NodeAsync(RedisServer redis, string mode) =>
        TestGateway.StartAsync(new() { ["REDIS_URI"] = redis.Uri(), ["WEBSOCKET_GLOBAL_EVENTS"] = "true", ["REDIS_ADAPTER"] = mode });

    private static async Task EventuallyAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(clock.Elapsed < timeout, $"not within {timeout.TotalSeconds} s: {what}");
            await Task.Delay(50);
        }
    }

    private static async Task WaitForInstanceAsync(TestGateway gw, string name) =>
        await EventuallyAsync(async () =>
        {
            using var response = await gw.SendAsync(HttpMethod.Get, $"/instance/fetchInstances?instanceName={name}");
            return (await TestGateway.ReadJsonAsync(response))!.AsArray().Count == 1;
        }, TimeSpan.FromSeconds(5), $"{name} known");

    private static double? Sample(string metrics, string name) =>
        Regex.Match(metrics, $@"^{name} (\S+)$", RegexOptions.Multiline) is { Success: true } m
            ? double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)
            : null;

    private static JsonObject TokenAuth(string token) => new() { ["auth"] = new JsonObject { ["token"] = token } };

    private static string Batch(string instance, string tag, int from, int count) =>
        "[" + string.Join(",", Enumerable.Range(from, count).Select(i =>
            TestGateway.Event("messages.upsert", instance, $$"""{"tag":"{{tag}}","seq":{{i}}}"""))) + "]";

    private static string Tag(JsonNode envelope) => $"{envelope["data"]!["tag"]}:{envelope["data"]!["seq"]}";

    private static async Task<string> NextWsAsync(ClientWebSocket ws) => Tag(await TestGateway.ReceiveJsonAsync(ws));

    private static async Task<string> NextSocketIOAsync(NodeClient client) => Tag((await client.NextEventAsync())["args"]![0]!);

    private static async Task<long> SubscribersAsync(ConnectionMultiplexer mux) =>
        (long)((RedisResult[])(await mux.GetDatabase().ExecuteAsync("PUBSUB", "NUMSUB", Channel))!)[1];

    [Theory]
    [InlineData("pubsub")]
    [InlineData("streams")]
    public async Task EventsPostedToEitherNode_ReachEverySubscriberOfBothNodes_OnceAndInOrder(string mode)
    {
        await using var redis = await RedisServer.StartAsync();
        await using var a = await NodeAsync(redis, mode);
        await using var b = await NodeAsync(redis, mode);
        var token = await a.CreateInstanceAsync("orders");
        await WaitForInstanceAsync(b, "orders");

        await using var socketB = await SocketIOEventTests.ConnectAsync(b, "/orders", TokenAuth(token));
        await using var globalB = await SocketIOEventTests.ConnectAsync(b, "/", SocketIOEventTests.Auth(TestGateway.Key));
        await using var socketA = await SocketIOEventTests.ConnectAsync(a, "/orders", TokenAuth(token));
        using var wsB = await b.ConnectAsync($"/ws/events?token={token}");
        using var wsA = await a.ConnectAsync($"/ws/events?token={token}");

        // Garbage on the channel (stream) is ignored (logged), it costs nothing else.
        await using var mux = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{redis.Port}");
        if (mode == "pubsub")
        {
            Assert.Equal(2, await SubscribersAsync(mux));
            await mux.GetSubscriber().PublishAsync(RedisChannel.Literal(Channel), new byte[] { 1, 2, 3 });
            await mux.GetSubscriber().PublishAsync(RedisChannel.Literal(Channel), "EVB1 not a frame"u8.ToArray());
            await mux.GetSubscriber().PublishAsync(RedisChannel.Literal(Channel), "12 EVB1 not a frame"u8.ToArray());
        }
        else
        {
            Assert.Equal(0, await SubscribersAsync(mux));
            await mux.GetDatabase().StreamAddAsync(Stream, "x", new byte[] { 1, 2, 3 });
            await mux.GetDatabase().StreamAddAsync(Stream, [new("o", 12), new("b", "EVB1 not a frame")]);
        }

        // Interleaved batches: 4 events to A, 4 to B, … 48 events in all.
        const int batches = 12, size = 4;
        var expected = new List<string>();
        for (var i = 0; i < batches; i++)
        {
            var node = i % 2 == 0 ? a : b;
            var tag = i % 2 == 0 ? "A" : "B";
            await node.IngestAsync(Batch("orders", tag, i * size, size));
            expected.AddRange(Enumerable.Range(i * size, size).Select(s => $"{tag}:{s}"));
        }
        // A last marker: had anything come twice, it would show up before the marker.
        await a.IngestAsync(Batch("orders", "end", 0, 1));
        expected.Add("end:0");

        foreach (var e in expected)
        {
            Assert.Equal(e, await NextSocketIOAsync(socketB));
            Assert.Equal(e, await NextSocketIOAsync(globalB));
            Assert.Equal(e, await NextSocketIOAsync(socketA));
            Assert.Equal(e, await NextWsAsync(wsB));
            Assert.Equal(e, await NextWsAsync(wsA));
        }

        // Latency A → B's WebSocket client, one event at a time.
        var times = new List<double>();
        for (var i = 0; i < 20; i++)
        {
            var clock = Stopwatch.StartNew();
            await a.IngestAsync(Batch("orders", "lat", i, 1));
            Assert.Equal($"lat:{i}", await NextWsAsync(wsB));
            times.Add(clock.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        output.WriteLine($"POST to A → WebSocket client on B: median {times[10]:0.0} ms, max {times[^1]:0.0} ms (20 events)");
        var metrics = await a.MetricsAsync();
        Assert.Equal(0, Sample(metrics, "evolution_events_local_only_total"));
    }

    [Theory]
    [InlineData("pubsub")]
    [InlineData("streams")]
    public async Task RedisDown_AnEventPostedToA_ReachesAOnly_IsCounted_ThenClusterDeliveryResumes(string mode)
    {
        await using var redis = await RedisServer.StartAsync(new RedisServerOptions { AppendOnly = true });
        await using var a = await NodeAsync(redis, mode);
        await using var b = await NodeAsync(redis, mode);
        var token = await a.CreateInstanceAsync("delta");
        await WaitForInstanceAsync(b, "delta");
        using var wsA = await a.ConnectAsync($"/ws/events?token={token}");
        using var wsB = await b.ConnectAsync($"/ws/events?token={token}");
        await using var socketB = await SocketIOEventTests.ConnectAsync(b, "/delta", TokenAuth(token));

        await a.IngestAsync(Batch("delta", "before", 0, 1));
        Assert.Equal("before:0", await NextWsAsync(wsA));
        Assert.Equal("before:0", await NextWsAsync(wsB));
        Assert.Equal("before:0", await NextSocketIOAsync(socketB));
        Assert.Equal(0, Sample(await a.MetricsAsync(), "evolution_events_local_only_total"));

        await redis.StopAsync(graceful: false);
        await EventuallyAsync(async () =>
        {
            using var ready = await a.SendAsync(HttpMethod.Get, "/health/ready", key: null);
            return ready.StatusCode == HttpStatusCode.ServiceUnavailable;
        }, Recovery, "A sees Redis down");

        // A keeps serving its own clients; the gap is counted.
        await a.IngestAsync(Batch("delta", "gap", 0, 2));
        Assert.Equal("gap:0", await NextWsAsync(wsA));
        Assert.Equal("gap:1", await NextWsAsync(wsA));
        Assert.Equal(2, Sample(await a.MetricsAsync(), "evolution_events_local_only_total"));

        await redis.StartAsync();
        await using var mux = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{redis.Port}");
        if (mode == "pubsub")
            await EventuallyAsync(async () => await SubscribersAsync(mux) == 2, Recovery, "both nodes subscribed again");
        foreach (var node in new[] { a, b })
        {
            await EventuallyAsync(async () =>
            {
                using var ready = await node.SendAsync(HttpMethod.Get, "/health/ready", key: null);
                return ready.StatusCode == HttpStatusCode.OK;
            }, Recovery, "the node sees Redis up");
        }

        // Without restarting anything: B gets what A ingests again; the gap never reached B, nothing came twice on A.
        await a.IngestAsync(Batch("delta", "after", 0, 1));
        await b.IngestAsync(Batch("delta", "after", 1, 1));
        foreach (var e in new[] { "after:0", "after:1" })
        {
            Assert.Equal(e, await NextWsAsync(wsA));
            Assert.Equal(e, await NextWsAsync(wsB));
            Assert.Equal(e, await NextSocketIOAsync(socketB));
        }
        Assert.Equal(2, Sample(await a.MetricsAsync(), "evolution_events_local_only_total"));
        Assert.Equal(WebSocketState.Open, wsB.State);
    }
}

using System.Text.Json.Nodes;
using Evolution.Events.SocketIO.Redis;
using Evolution.Events.Testing;
using StackExchange.Redis;

namespace Evolution.Events.SocketIO.Tests.Adapters;

/// <summary>
/// Two of our servers (A, B) with the <see cref="RedisStreamsAdapter"/> and a Node socket.io server with
/// <c>@socket.io/redis-streams-adapter</c> 0.3 (tests/interop) on one real redis-server, connection state recovery on.
/// </summary>
public sealed class RedisStreamsInteropTests : IAsyncLifetime
{
    private static readonly string[] MissedMessages = ["a", "b", "n", "all-b"];

    private RedisServer _redis = null!;
    private ConnectionMultiplexer _connA = null!;
    private ConnectionMultiplexer _connB = null!;
    private TestServer _a = null!;
    private TestServer _b = null!;

    public async Task InitializeAsync()
    {
        _redis = await RedisServer.StartAsync();
        _connA = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{_redis.Port},abortConnect=false");
        _connB = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{_redis.Port},abortConnect=false");
        _a = await TestServer.StartAsync(o => o.ConnectionStateRecovery = new ConnectionStateRecoveryOptions(), adapterFactory: new RedisStreamsAdapterFactory(_connA));
        _b = await TestServer.StartAsync(o => o.ConnectionStateRecovery = new ConnectionStateRecoveryOptions(), adapterFactory: new RedisStreamsAdapterFactory(_connB));
        foreach (var server in new[] { _a, _b })
        {
            server.Io.Sockets.OnConnection(socket => socket.On("rooms-except", e =>
            {
                socket.Namespace.To(["red", "blue"]).Except("red").Emit("room-message", e.Args[0], socket.Handshake.AuthString("tag"));
                e.Ack(true);
            }));
        }
    }

    public async Task DisposeAsync()
    {
        await _a.DisposeAsync();
        await _b.DisposeAsync();
        await _connA.DisposeAsync();
        await _connB.DisposeAsync();
        await _redis.DisposeAsync();
    }

    [Fact]
    public async Task Node_streams_adapter_peer_and_two_of_ours_deliver_each_others_broadcasts_once_fetch_and_emit_both_ways()
    {
        var hello = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        _a.Io.Sockets.OnServerSideEmit("peer-hello", (args, _) => hello.TrySetResult(string.Join(",", args.Select(a => a!.ToJsonString()))));
        _a.Io.Sockets.OnServerSideEmit("peer-ask", (args, ack) => ack!(["from-a:" + args[0]!.GetValue<string>()]));
        _b.Io.Sockets.OnServerSideEmit("peer-ask", (args, ack) => ack!(["from-b:" + args[0]!.GetValue<string>()]));
        _b.Io.Sockets.OnServerSideEmit("ours-ask", (args, ack) => ack!(["from-b:" + args[0]!.GetValue<string>()]));
        _a.Io.Sockets.OnConnection(socket =>
        {
            socket.On("fetch-all", e => _ = Task.Run(async () =>
            {
                var all = await socket.Namespace.FetchSocketsAsync();
                e.Ack(new JsonArray([.. all.Select(s => (JsonNode?)new JsonObject
                {
                    ["tag"] = s.Handshake.AuthString("tag"),
                    ["rooms"] = new JsonArray([.. s.Rooms.Where(r => r != s.Id).Select(r => (JsonNode?)r)]),
                })]));
            }));
            socket.On("ask-cluster", e => _ = Task.Run(async () =>
            {
                socket.Namespace.ServerSideEmit("ours-hello", "y", 2);
                var answers = await socket.Namespace.ServerSideEmitWithAckAsync("ours-ask", ["q"], TimeSpan.FromSeconds(10));
                e.Ack(new JsonArray([.. answers.Select(a => a[0]?.DeepClone()).Order(Comparer<JsonNode?>.Create((x, y) => string.CompareOrdinal(x?.ToJsonString(), y?.ToJsonString())))]));
            }));
        });

        var result = await NodeRunner.RunAsync(TimeSpan.FromSeconds(60), "redis-streams-peer.mjs", _a.Url, _b.Url, $"redis://127.0.0.1:{_redis.Port}");
        Assert.True(result.Lines.Any(l => l["done"] is not null), result.Output);
        Assert.Equal(3, (int)result.Single("servers")["count"]!);

        var got = result.Single("received");
        string[] Of(string name) => [.. got[name]!.AsArray().Select(n => n!.GetValue<string>()).Order(StringComparer.Ordinal)];
        string[] Expect(params string[] items) => [.. items.Order(StringComparer.Ordinal)];
        const string bin = "bin:1,2,3:after";
        string[] reds = ["n1<nodeBlue", "a1<aBlue", "b1<bBlue"];
        string[] blues = ["n3<nodeRed", "a3<aRed"];
        Assert.Equal(Expect([.. reds, "all:a2<aRed", "all:b2<bBlue", bin]), Of("nodeRed"));
        Assert.Equal(Expect([.. reds, "all:n2<nodeRed", "all:b2<bBlue", bin]), Of("aRed"));
        Assert.Equal(Expect([.. reds, "all:n2<nodeRed", "all:a2<aRed", "all:b2<bBlue", bin]), Of("bRed"));
        Assert.Equal(Expect([.. blues, "all:n2<nodeRed", "all:a2<aRed", "all:b2<bBlue", bin]), Of("nodeBlue"));
        Assert.Equal(Expect([.. blues, "all:n2<nodeRed", "all:a2<aRed", "all:b2<bBlue", bin]), Of("aBlue"));
        Assert.Equal(Expect([.. blues, "all:n2<nodeRed", "all:a2<aRed", bin]), Of("bBlue"));

        // fetchSockets both ways: every socket of the three nodes, with its rooms
        string[] everyone = ["aBlue:blue", "aRed:red", "bBlue:blue", "bRed:red", "nodeBlue:blue", "nodeRed:red"];
        string[] Fetched(string line) => [.. result.Single(line)["sockets"]!.AsArray()
            .Select(s => (string)s!["tag"]! + ":" + string.Join("+", s["rooms"]!.AsArray().Select(r => (string)r!)))
            .Order(StringComparer.Ordinal)];
        Assert.Equal(everyone, Fetched("node-fetched"));
        Assert.Equal(everyone, Fetched("ours-fetched"));

        // serverSideEmit both ways, with and without ack
        Assert.Equal("\"x\",1", await hello.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("""["from-a:q","from-b:q"]""", result.Single("answers")["answers"]!.ToJsonString());
        Assert.Equal("""["from-b:q","from-node:q"]""", result.Single("ours-answers")["answers"]!.ToJsonString());
        Assert.Equal("""["y",2]""", result.Single("ours-hello")["args"]!.ToJsonString());
    }

    [Fact]
    public async Task The_stock_client_recovers_across_our_nodes_and_the_Node_server_with_every_missed_broadcast_once()
    {
        // tests/interop/redis-streams-recovery.mjs: A -> B -> Node server -> A through a cuttable proxy
        var result = await NodeRunner.RunAsync(TimeSpan.FromSeconds(90), "redis-streams-recovery.mjs", _a.Url, _b.Url, $"redis://127.0.0.1:{_redis.Port}");
        Assert.True(result.Lines.Any(l => l["done"] is not null), result.Output);
        var legs = result.All("leg").ToList();
        Assert.Equal(["B", "node", "A"], legs.Select(l => (string)l["to"]!));
        Assert.All(legs, l => Assert.True((bool)l["recovered"]! && (bool)l["sameId"]!, l.ToJsonString()));

        var received = result.Single("received")["received"]!.AsArray().Select(n => (string)n!).ToList();
        var expected = new List<string> { "live-0" };
        for (var i = 0; i < 3; i++)
        {
            expected.AddRange([$"m{i}-a", $"m{i}-b", $"m{i}-n", $"m{i}-all-b", $"live-{i + 1}"]);
        }

        Assert.Equal(expected.Order(StringComparer.Ordinal), received.Order(StringComparer.Ordinal)); // each once, nothing else
        for (var i = 0; i < 3; i++)
        {
            // what was missed comes before the next live message
            Assert.All(MissedMessages, m => Assert.True(received.IndexOf($"m{i}-{m}") < received.IndexOf($"live-{i + 1}")));
            Assert.True(received.IndexOf($"live-{i}") < received.IndexOf($"m{i}-a"));
        }
    }
}

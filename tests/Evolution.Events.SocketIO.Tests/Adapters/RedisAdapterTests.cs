using System.Text.Json.Nodes;
using Evolution.Events.SocketIO.Adapters;
using Evolution.Events.SocketIO.Protocol;
using Evolution.Events.SocketIO.Redis;
using Evolution.Events.Testing;
using StackExchange.Redis;

namespace Evolution.Events.SocketIO.Tests.Adapters;

/// <summary>Two of our servers with the <see cref="RedisAdapter"/> on one real redis-server, real WebSocket clients on each.</summary>
public sealed class RedisAdapterTests : IAsyncLifetime
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(700);
    private RedisServer _redis = null!;
    private ConnectionMultiplexer _connA = null!;
    private ConnectionMultiplexer _connB = null!;
    private TestServer _a = null!;
    private TestServer _b = null!;

    public async Task InitializeAsync()
    {
        _redis = await RedisServer.StartAsync();
        _connA = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{_redis.Port}");
        _connB = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{_redis.Port}");
        _a = await TestServer.StartAsync(adapterFactory: new RedisAdapterFactory(_connA));
        _b = await TestServer.StartAsync(adapterFactory: new RedisAdapterFactory(_connB));
        await WaitUntilAsync(async () => await _a.Io.Sockets.Adapter.ServerCountAsync() == 2);
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
    public async Task Server_count_is_the_nodes_subscribed()
    {
        Assert.Equal(2, await _b.Io.Sockets.Adapter.ServerCountAsync());
    }

    [Fact]
    public async Task Broadcast_reaches_every_node_once_with_rooms_and_except()
    {
        await using var a1 = await Connect(_a, "red");
        await using var a2 = await Connect(_a, "blue");
        await using var b1 = await Connect(_b, "red");
        await using var b2 = await Connect(_b, "blue");
        var clients = new[] { a1, a2, b1, b2 };

        // to all, from A: every client exactly once
        _a.Io.Sockets.Emit("all", 1, "x");
        foreach (var c in clients)
        {
            Assert.Equal("""["all",1,"x"]""", (await c.NextEventAsync()).ToJsonString());
        }

        // to a room (single-room channel), from B
        _b.Io.Sockets.To("red").Emit("red", new JsonObject { ["k"] = "v" });
        Assert.Equal("""["red",{"k":"v"}]""", (await a1.NextEventAsync()).ToJsonString());
        Assert.Equal("""["red",{"k":"v"}]""", (await b1.NextEventAsync()).ToJsonString());

        // two rooms except one, from A
        _a.Io.Sockets.To(["red", "blue"]).Except("red").Emit("notred");
        Assert.Equal("""["notred"]""", (await a2.NextEventAsync()).ToJsonString());
        Assert.Equal("""["notred"]""", (await b2.NextEventAsync()).ToJsonString());

        // local: not published
        new BroadcastOperator(_a.Io.Sockets).Local.Emit("local");
        Assert.Equal("""["local"]""", (await a1.NextEventAsync()).ToJsonString());
        Assert.Equal("""["local"]""", (await a2.NextEventAsync()).ToJsonString());

        // nothing else arrived anywhere (no duplicates, no leaks past rooms/except/local)
        foreach (var c in clients)
        {
            Assert.True(await c.IsQuietAsync(Quiet));
        }
    }

    [Fact]
    public async Task Join_leave_and_disconnect_of_selected_sockets_reach_the_other_node()
    {
        await using var b1 = await Connect(_b, "red");
        await using var b2 = await Connect(_b, "blue");

        // from A: B's red sockets join "green"; a broadcast to green from B reaches b1 only
        _a.Io.Sockets.To("red").SocketsJoin("green");
        await WaitUntilAsync(() => Task.FromResult(_b.Io.Sockets.Adapter.Sockets(new HashSet<string> { "green" }).Count == 1));
        new BroadcastOperator(_b.Io.Sockets).Local.To("green").Emit("green");
        Assert.Equal("""["green"]""", (await b1.NextEventAsync()).ToJsonString());
        Assert.True(await b2.IsQuietAsync(Quiet));

        // from A: they leave it again
        _a.Io.Sockets.To("red").SocketsLeave("green");
        await WaitUntilAsync(() => Task.FromResult(_b.Io.Sockets.Adapter.Sockets(new HashSet<string> { "green" }).Count == 0));

        // from A: B's blue sockets are disconnected (DISCONNECT packet), the red one stays
        _a.Io.Sockets.To("blue").DisconnectSockets();
        Assert.Equal("1", await b2.NextAsync());
        Assert.True(await b1.IsQuietAsync(Quiet));
        Assert.Single(_b.Io.Sockets.SocketsById);
    }

    [Fact]
    public async Task Server_side_emit_reaches_the_other_node_only()
    {
        var onA = new List<string>();
        var onB = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        _a.Io.Sockets.OnServerSideEmit("hello", (args, _) => { lock (onA) onA.Add(args[0]!.ToJsonString()); });
        _b.Io.Sockets.OnServerSideEmit("hello", (args, _) => onB.TrySetResult(string.Join(",", args.Select(a => a!.ToJsonString()))));
        _a.Io.Sockets.ServerSideEmit("hello", "one", 2);
        Assert.Equal("\"one\",2", await onB.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        await Task.Delay(Quiet);
        lock (onA)
        {
            Assert.Empty(onA);
        }
    }

    [Fact]
    public async Task Binary_arguments_cross_nodes()
    {
        await using var b1 = await Connect(_b, null);
        _a.Io.Sockets.Emit("bin", new byte[] { 1, 2, 3 }, "after");
        var text = await b1.NextAsync();
        Assert.Equal("""51-["bin",{"_placeholder":true,"num":0},"after"]""", text);
        Assert.Equal("<binary 3>", await b1.NextAsync());
    }

    [Fact]
    public async Task Node_redis_adapter_peer_and_ours_deliver_each_others_broadcasts_once()
    {
        // tests/interop/redis-peer.mjs: a Node socket.io 4 server with @socket.io/redis-adapter 8 on the same Redis
        var hello = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        _a.Io.Sockets.OnServerSideEmit("peer-hello", (args, _) => hello.TrySetResult(string.Join(",", args.Select(a => a!.ToJsonString()))));
        _a.Io.Sockets.OnServerSideEmit("peer-ask", (args, ack) => ack!(["from-a:" + args[0]!.GetValue<string>()]));
        _b.Io.Sockets.OnServerSideEmit("peer-ask", (args, ack) => ack!(["from-b:" + args[0]!.GetValue<string>()]));
        var result = await NodeRunner.RunAsync("redis-peer.mjs", _a.Url, $"redis://127.0.0.1:{_redis.Port}");
        Assert.True(result.Lines.Any(l => l["done"] is not null), result.Output);
        var got = result.Single("received");
        string[] Of(string name) => [.. got[name]!.AsArray().Select(n => n!.GetValue<string>()).Order(StringComparer.Ordinal)];
        const string bin = "bin:1,2,3:after";
        Assert.Equal(new[] { "all:o2<oursRed", bin, "n1<nodeBlue", "o1<oursBlue" }.Order(StringComparer.Ordinal), Of("nodeRed"));
        Assert.Equal(new[] { "all:n2<nodeRed", bin, "n1<nodeBlue", "o1<oursBlue" }.Order(StringComparer.Ordinal), Of("oursRed"));
        Assert.Equal(new[] { "all:n2<nodeRed", "all:o2<oursRed", bin, "n3<nodeRed" }.Order(StringComparer.Ordinal), Of("nodeBlue"));
        Assert.Equal(new[] { "all:n2<nodeRed", "all:o2<oursRed", bin, "n3<nodeRed" }.Order(StringComparer.Ordinal), Of("oursBlue"));

        // the peer's requests, applied by our node: socketsJoin, disconnectSockets, serverSideEmit (+ ack)
        Assert.Equal("io server disconnect", (string?)result.Single("disconnected")["oursBlue"]);
        Assert.Equal("\"x\",1", await hello.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("""["from-a:q","from-b:q"]""", result.Single("answers")["answers"]!.ToJsonString());
    }

    [Fact]
    public async Task Requests_with_answers_work_both_ways_with_a_Node_redis_adapter_peer()
    {
        // tests/interop/redis-cluster.mjs: our A and B + a Node socket.io server with @socket.io/redis-adapter 8
        await using var emitterConnection = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{_redis.Port}");
        await RunClusterScenarioAsync(_a, _b, null, new RedisEmitter(emitterConnection));
    }

    [Theory]
    [InlineData(RedisSubscriptionMode.Static, "static")]
    [InlineData(RedisSubscriptionMode.Dynamic, "dynamic")]
    [InlineData(RedisSubscriptionMode.DynamicPrivate, "dynamic-private")]
    public async Task Sharded_adapter_interoperates_with_Node_createShardedAdapter(RedisSubscriptionMode mode, string nodeMode)
    {
        // the same scenario with SPUBLISH/SSUBSCRIBE: our two sharded nodes + Node's createShardedAdapter (that mode)
        var options = new RedisAdapterOptions { Sharded = true, SubscriptionMode = mode };
        await using var a = await TestServer.StartAsync(adapterFactory: new RedisAdapterFactory(_connA, options));
        await using var b = await TestServer.StartAsync(adapterFactory: new RedisAdapterFactory(_connB, options));
        Assert.IsType<ShardedRedisAdapter>(a.Io.Sockets.Adapter);
        await RunClusterScenarioAsync(a, b, nodeMode, null);
    }

    private async Task RunClusterScenarioAsync(TestServer a, TestServer b, string? shardedMode, RedisEmitter? emitter)
    {
        var emitterHello = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        b.Io.Sockets.OnServerSideEmit("emitter-hello", (args, _) => emitterHello.TrySetResult(string.Join(",", args.Select(a => a!.ToJsonString()))));
        foreach (var (server, name) in new[] { (a, "A"), (b, "B") })
        {
            server.Io.Sockets.OnServerSideEmit("ask", (args, ack) => ack?.Invoke([name + ":" + args[0]!.GetValue<string>()]));
            server.Io.Sockets.OnConnection(socket => socket.Data["who"] = "ours:" + socket.Handshake.AuthString("tag"));
        }

        a.Io.Sockets.OnConnection(socket =>
        {
            socket.On("fetch", async e =>
            {
                var found = await socket.Namespace.To(e.Args[0]!.GetValue<string>()).FetchSocketsAsync();
                e.Ack(new JsonArray([.. found.OrderBy(f => f.Handshake.AuthString("tag"), StringComparer.Ordinal).Select(f => (JsonNode?)new JsonObject
                {
                    ["id"] = f.Id,
                    ["tag"] = f.Handshake.AuthString("tag"),
                    ["rooms"] = new JsonArray([.. f.Rooms.Order(StringComparer.Ordinal).Select(r => (JsonNode?)r)]),
                    ["who"] = f.Data.TryGetValue("who", out var who) ? who?.ToString() : null,
                    ["remote"] = f is RemoteSocket,
                })]));
            });
            socket.On("ask-cluster", async e =>
            {
                var answers = await socket.Namespace.ServerSideEmitWithAckAsync("ask", [e.Args[0]], TimeSpan.FromSeconds(5));
                e.Ack(new JsonArray([.. answers.Select(a => a[0]?.DeepClone()).Order(Comparer<JsonNode?>.Create((x, y) => string.CompareOrdinal(x?.ToString(), y?.ToString())))]));
            });
            socket.On("ask-clients", async e =>
            {
                var answers = await new BroadcastOperator(socket.Namespace).Timeout(TimeSpan.FromSeconds(5)).EmitWithAckAsync("question", e.Args[0]);
                e.Ack(new JsonArray([.. answers.Select(a => (JsonNode?)a[0]!.GetValue<string>()).OrderBy(a => a!.GetValue<string>(), StringComparer.Ordinal)]));
            });
            socket.On("use-emitter", async e =>
            {
                await emitter!.EmitAsync("news", "all", new byte[] { 1, 2 });
                await emitter.To("red").Except("blue").EmitAsync("news", "red");
                await emitter.To("blue").EmitAsync("news", "blue");
                await emitter.To("red").SocketsJoinAsync("yellow");
                await emitter.To("yellow").EmitAsync("news", "yellow");
                await emitter.To("yellow").SocketsLeaveAsync("yellow");
                await emitter.To("yellow").EmitAsync("news", "nobody");
                await emitter.ServerSideEmitAsync("emitter-hello", "e", 1);
                await emitter.To(e.Args[0]!.GetValue<string>()).DisconnectSocketsAsync();
                e.Ack(true);
            });
        });

        string[] args = shardedMode is null
            ? [b.Url, $"redis://127.0.0.1:{_redis.Port}"]
            : [b.Url, $"redis://127.0.0.1:{_redis.Port}", shardedMode];
        var result = await NodeRunner.RunAsync(TimeSpan.FromSeconds(40), "redis-cluster.mjs", a.Url, args);
        Assert.True(result.Lines.Any(l => l["done"] is not null), result.Output);
        Assert.Equal(3, (int)result.Single("servers")["count"]!);
        var sid = result.Single("sids");

        // the Node side fetched our sockets (rooms, data, auth), and a fetched one of ours joined a room on its node
        var nodeFetch = result.Single("node-fetch");
        Assert.Equal(
            $$"""[{"id":"{{sid["nodeC"]}}","rooms":{{R(sid["nodeC"], "red")}},"data":{"who":"node:nodeC"},"tag":"nodeC"},{"id":"{{sid["oursA"]}}","rooms":{{R(sid["oursA"], "red")}},"data":{"who":"ours:oursA"},"tag":"oursA"},{"id":"{{sid["oursB"]}}","rooms":{{R(sid["oursB"], "blue")}},"data":{"who":"ours:oursB"},"tag":"oursB"}]""",
            Sorted(nodeFetch["all"]!));
        Assert.Equal([(string)sid["oursB"]!], nodeFetch["blue"]!.AsArray().Select(s => (string)s!["id"]!));
        Assert.Equal([(string)sid["oursB"]!], nodeFetch["notRed"]!.AsArray().Select(s => (string)s!["id"]!));

        // our side fetched the Node server's socket (a RemoteSocket with its data and auth) and its own
        var oursFetch = result.Single("ours-fetch")["sockets"]!.AsArray();
        Assert.Equal(
            $$"""[{"id":"{{sid["nodeC"]}}","tag":"nodeC","rooms":{{R(sid["nodeC"], "red")}},"who":"node:nodeC","remote":true},{"id":"{{sid["oursA"]}}","tag":"oursA","rooms":{{R(sid["oursA"], "red")}},"who":"ours:oursA","remote":false}]""",
            oursFetch.ToJsonString());

        // server-side events with ack, both ways; broadcasts with acks from either side count every node's clients
        var ask = result.Single("ask");
        Assert.Equal("""["A:q1","B:q1"]""", ask["node"]!.ToJsonString());
        Assert.Equal("""["B:q2","N:q2"]""", ask["ours"]!.ToJsonString());
        var acks = result.Single("acks");
        Assert.Equal("""["nodeC:1","oursA:1","oursB:1"]""", acks["node"]!.ToJsonString());
        Assert.Equal("""["oursB:2"]""", acks["nodeBlue"]!.ToJsonString());
        Assert.Equal("""["nodeC:3","oursA:3","oursB:3"]""", acks["ours"]!.ToJsonString());
        var received = result.Single("received");
        if (shardedMode is not null)
        {
            Assert.Equal("""{"event":"received","nodeC":[],"oursA":[],"oursB":["to-green"]}""", received.ToJsonString());
            return;
        }

        Assert.Equal("""["blue","green","red"]""", result.Single("rooms")["all"]!.ToJsonString());

        // the .NET emitter reached the Node server's client and ours, and its requests were applied everywhere
        Assert.Equal("""["all|bin:1,2","red","yellow"]""", received["nodeC"]!.ToJsonString());
        Assert.Equal("""["all|bin:1,2","red","yellow"]""", received["oursA"]!.ToJsonString());
        Assert.Equal("""["to-green","all|bin:1,2","blue"]""", received["oursB"]!.ToJsonString());
        var emitted = result.Single("emitter");
        Assert.Equal("io server disconnect", (string?)emitted["nodeC"]);
        Assert.Equal("""[["e",1]]""", emitted["serverSide"]!.ToJsonString());
        Assert.Equal("\"e\",1", await emitterHello.Task.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    /// <summary>Room names as a JSON array in ordinal order.</summary>
    private static string R(JsonNode? sid, string room) =>
        new JsonArray([.. new[] { (string)sid!, room }.Order(StringComparer.Ordinal).Select(r => (JsonNode?)r)]).ToJsonString();

    private static string Sorted(JsonNode sockets)
    {
        foreach (var socket in sockets.AsArray())
        {
            var rooms = socket!["rooms"]!.AsArray().Select(r => (string)r!).Order(StringComparer.Ordinal).ToArray();
            socket["rooms"] = new JsonArray([.. rooms.Select(r => (JsonNode?)r)]);
        }

        return sockets.ToJsonString();
    }

    [Fact]
    public async Task Node_redis_emitter_reaches_our_sockets_and_applies_its_requests()
    {
        // tests/interop/redis-emitter.mjs: @socket.io/redis-emitter 5 publishing into our A and B
        var hello = new[] { _a, _b }.Select(server =>
        {
            var done = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            server.Io.Sockets.OnServerSideEmit("from-emitter", (args, ack) => done.TrySetResult(string.Join(",", args.Select(a => a!.ToJsonString())) + (ack is null ? "" : "+ack")));
            return done.Task;
        }).ToArray();

        var result = await NodeRunner.RunAsync("redis-emitter.mjs", _a.Url, _b.Url, $"redis://127.0.0.1:{_redis.Port}");
        Assert.True(result.Lines.Any(l => l["done"] is not null), result.Output);
        var received = result.Single("received");
        Assert.Equal("""["all|bin:1,2","red","red-or-blue-not-blue"]""", received["a1"]!.ToJsonString());
        Assert.Equal("""["all|bin:1,2","not-red","green"]""", received["b1"]!.ToJsonString());
        Assert.Equal("""["admin"]""", received["adminB"]!.ToJsonString());
        Assert.Equal("io server disconnect", (string?)result.Single("disconnected")["a1"]);
        foreach (var task in hello)
        {
            Assert.Equal("1,\"x\"", await task.WaitAsync(TimeSpan.FromSeconds(10)));
        }
    }

    [Fact]
    public async Task Our_emitter_reaches_every_node_and_applies_its_requests()
    {
        await using var connection = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{_redis.Port}");
        var emitter = new RedisEmitter(connection);
        await using var a1 = await Connect(_a, "red");
        await using var b1 = await Connect(_b, "blue");
        await using var b2 = await Connect(_b, "red");

        await emitter.EmitAsync("all", 1, new JsonObject { ["k"] = "v" });
        foreach (var c in new[] { a1, b1, b2 })
        {
            Assert.Equal("""["all",1,{"k":"v"}]""", (await c.NextEventAsync()).ToJsonString());
        }

        await emitter.To("red").Except(b2Sid()).EmitAsync("red-but-b2");
        Assert.Equal("""["red-but-b2"]""", (await a1.NextEventAsync()).ToJsonString());
        await emitter.To(["red", "blue"]).Except("red").EmitAsync("blue");
        Assert.Equal("""["blue"]""", (await b1.NextEventAsync()).ToJsonString());
        await emitter.Volatile.To("blue").EmitAsync("volatile");
        Assert.Equal("""["volatile"]""", (await b1.NextEventAsync()).ToJsonString());

        // join/leave/disconnect requests are applied by every node; server-side events reach every node
        await emitter.To("red").SocketsJoinAsync("green", "yellow");
        await emitter.To("green").EmitAsync("green");
        Assert.Equal("""["green"]""", (await a1.NextEventAsync()).ToJsonString());
        Assert.Equal("""["green"]""", (await b2.NextEventAsync()).ToJsonString());
        await emitter.To("green").SocketsLeaveAsync("green");
        await emitter.To("yellow").Except("green").EmitAsync("yellow-not-green");
        Assert.Equal("""["yellow-not-green"]""", (await a1.NextEventAsync()).ToJsonString());
        Assert.Equal("""["yellow-not-green"]""", (await b2.NextEventAsync()).ToJsonString());

        var onA = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        _a.Io.Sockets.OnServerSideEmit("ping", (args, _) => onA.TrySetResult(args[0]!.ToJsonString()));
        await emitter.ServerSideEmitAsync("ping", new { n = 1 });
        Assert.Equal("""{"n":1}""", await onA.Task.WaitAsync(TimeSpan.FromSeconds(10)));

        await emitter.To("blue").DisconnectSocketsAsync();
        Assert.Equal("1", await b1.NextAsync());

        // another namespace; nothing else arrived anywhere
        await emitter.Of("admin").EmitAsync("not-here");
        foreach (var c in new[] { a1, b2 })
        {
            Assert.True(await c.IsQuietAsync(Quiet));
        }

        Assert.Equal("/admin", emitter.Of("admin").Namespace);
        await Assert.ThrowsAsync<ArgumentException>(() => emitter.EmitAsync("disconnect"));

        string b2Sid() => _b.Io.Sockets.SocketsById.Values.Single(s => s.Rooms.Contains("red")).Id;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_silent_node_makes_requests_time_out_pending_requests_are_bounded_and_malformed_messages_are_ignored(bool sharded)
    {
        // own connections and key: a node is a connection to Redis (the fixture's A and B have theirs)
        var options = new RedisAdapterOptions { Key = "iso", Sharded = sharded, SubscriptionMode = RedisSubscriptionMode.Static, RequestsTimeout = TimeSpan.FromSeconds(3), MaxPendingRequests = 2 };
        await using var connA = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{_redis.Port}");
        await using var connB = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{_redis.Port}");
        await using var a = await TestServer.StartAsync(adapterFactory: new RedisAdapterFactory(connA, options));
        await using var b = await TestServer.StartAsync(adapterFactory: new RedisAdapterFactory(connB, options));
        var requests = sharded ? RedisChannel.Sharded("iso#/#") : RedisChannel.Literal("iso-request#/#");
        await WaitUntilAsync(async () => await a.Io.Sockets.Adapter.ServerCountAsync() == 2);
        await using var b1 = await Connect(b, "red");

        // garbage on every channel of the namespace: each message is logged and ignored
        var publisher = connA.GetSubscriber();
        byte[][] junk =
        [
            [0xc1], [0x93, 0xa1], "{not json"u8.ToArray(), "{\"type\":\"x\"}"u8.ToArray(), "{\"type\":5,\"requestId\":7,\"opts\":5}"u8.ToArray(),
            "{\"type\":7,\"requestId\":\"r\",\"packet\":{\"type\":2,\"data\":5},\"opts\":{}}"u8.ToArray(),
            "{\"uid\":\"x\",\"nsp\":\"/\",\"type\":3,\"data\":{\"packet\":{\"type\":9,\"data\":[]},\"opts\":{}}}"u8.ToArray(),
            [0x82, 0xa4, (byte)'t', (byte)'y', (byte)'p', (byte)'e', 0x07, 0xa6, (byte)'p', (byte)'a', (byte)'c', (byte)'k', (byte)'e', (byte)'t', 0xc0],
            new byte[70_000],
        ];
        string[] channels = sharded ? ["iso#/#", "iso#/#red#"] : ["iso-request#/#", "iso-response#/#", "iso#/#", "iso#/#red#"];
        foreach (var channel in channels)
        {
            foreach (var message in junk)
            {
                await publisher.PublishAsync(sharded ? RedisChannel.Sharded(channel) : RedisChannel.Literal(channel), message);
            }
        }

        a.Io.Sockets.To("red").Emit("still", "works");
        Assert.Equal("""["still","works"]""", (await b1.NextEventAsync()).ToJsonString());
        Assert.Equal(1, Assert.Single(await a.Io.Sockets.To("red").FetchSocketsAsync()) is RemoteSocket ? 1 : 0);

        // a node that counts (subscribed) but never answers: every request ends at its timeout, never hangs
        await using var silent = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{_redis.Port}");
        await silent.GetSubscriber().SubscribeAsync(requests, static (_, _) => { });
        await WaitUntilAsync(async () => await a.Io.Sockets.Adapter.ServerCountAsync() == 3);

        var fetch = a.Io.Sockets.FetchSocketsAsync().AsTask();
        var fetch2 = a.Io.Sockets.FetchSocketsAsync().AsTask();
        await WaitUntilAsync(() => Task.FromResult(Pending(a) == 2));
        await Assert.ThrowsAsync<InvalidOperationException>(() => a.Io.Sockets.FetchSocketsAsync().AsTask()); // bounded: 2 pending
        await Assert.ThrowsAsync<TimeoutException>(() => fetch.WaitAsync(TimeSpan.FromSeconds(10)));
        await Assert.ThrowsAsync<TimeoutException>(() => fetch2.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(0, Pending(a)); // cleaned up

        b.Io.Sockets.OnServerSideEmit("q", (_, ack) => ack?.Invoke(["b"]));
        var answers = await Assert.ThrowsAsync<BroadcastAckTimeoutException>(
            () => a.Io.Sockets.ServerSideEmitWithAckAsync("q", [], TimeSpan.FromSeconds(3)).WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal("b", (string?)Assert.Single(answers.Responses)[0]); // the partial answers (freed: requests work again)

        // generous timeouts: the answers that do come must come in time on a loaded machine
        var acks = a.Io.Sockets.To("red").Timeout(TimeSpan.FromSeconds(3)).EmitWithAckAsync("question");
        var request = await b1.NextAsync();
        await b1.SendAsync("3" + request[1..request.IndexOf('[')] + "[\"yes\"]");
        var timedOut = await Assert.ThrowsAsync<BroadcastAckTimeoutException>(() => acks.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal("yes", (string?)Assert.Single(timedOut.Responses)[0]);
        await WaitUntilAsync(() => Task.FromResult(Pending(a) == 0)); // the ack request is forgotten after its timeout

        static int Pending(TestServer server) => server.Io.Sockets.Adapter switch
        {
            RedisAdapter plain => plain.PendingRequests,
            ShardedRedisAdapter shardedAdapter => shardedAdapter.PendingRequests,
            _ => -1,
        };
    }

    [Fact]
    public void Codec_writes_the_packet_object_and_reads_it_back()
    {
        var packet = SocketPacketEncoder.Event("/admin", "e", ["a", 2, new byte[] { 9 }]);
        var options = new BroadcastOptions(new HashSet<string> { "r" }, new HashSet<string> { "x" }, BroadcastFlags.Volatile);
        var bytes = RedisWireCodec.EncodeBroadcast("abcdef", packet, options);

        // [uid, {type: 2 (EVENT, not BINARY_EVENT), data, nsp}, {rooms, except, flags}] as notepack writes it
        Assert.Equal(0x93, bytes[0]);
        var back = RedisWireCodec.DecodeBroadcast(bytes);
        Assert.Equal("abcdef", back.Uid);
        Assert.Equal("/admin", back.Nsp);
        Assert.Equal(packet.Text.Bytes.ToArray(), back.Packet.Text.Bytes.ToArray());
        Assert.Equal([9], back.Packet.Attachments[0].Bytes.ToArray());
        Assert.Equal(["r"], back.Options.Rooms);
        Assert.Equal(["x"], back.Options.Except);
        Assert.Equal(BroadcastFlags.Volatile, back.Options.Flags);
    }

    private static async Task<WsSocketIOClient> Connect(TestServer server, string? room)
    {
        var client = await WsSocketIOClient.OpenAsync(server.BaseUri);
        Assert.True((await client.ConnectAsync("/")).Ok);
        if (room is not null)
        {
            await client.SendAsync($"21[\"join\",\"{room}\"]");
            Assert.StartsWith("31[", await client.NextAsync());
        }

        return client;
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in 20 s");
            await Task.Delay(50);
        }
    }
}

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

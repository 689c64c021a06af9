using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Evolution.Events.SocketIO.Adapters;

namespace Evolution.Events.SocketIO.Tests.Adapters;

/// <summary>Init and close calls of the adapters under test, by namespace, in order.</summary>
public sealed class AdapterLifecycleLog
{
    public ConcurrentQueue<(string Step, string Namespace)> Steps { get; } = new();

    public void Add(string step, string nsp) => Steps.Enqueue((step, nsp));

    public int Count(string step, string nsp) => Steps.Count(s => s.Step == step && s.Namespace == nsp);
}

/// <summary>
/// What every <see cref="IAdapter"/> must do, on real servers with real clients (raw WebSocket clients that show
/// the packets). A subclass supplies the adapter factory (it reports init/close into the given log); a cluster
/// adapter later also starts several nodes. Cross-node cases run only where <see cref="NodeCount"/> &gt; 1.
/// </summary>
public abstract class AdapterSpecification
{
    private const string Nsp = "/spec";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    /// <summary>The adapter factory under test; its adapters record <c>init</c>/<c>close</c> into <paramref name="log"/>.</summary>
    protected abstract IAdapterFactory CreateFactory(AdapterLifecycleLog log);

    /// <summary>How many nodes <see cref="StartAsync"/> makes one cluster of (1 for a single-node adapter).</summary>
    protected virtual int NodeCount => 1;

    /// <summary>Called before the nodes of a new cluster are made (e.g. to give it channels or a stream of its own).</summary>
    protected virtual void OnNewCluster()
    {
    }

    /// <summary>Waits until the nodes of a new cluster know each other (default: nothing to wait for).</summary>
    protected virtual Task ClusterReadyAsync(Node node) => Task.CompletedTask;

    /// <summary>Whether the session of <paramref name="pid"/> is kept (default: the server's own recovery store counts one).</summary>
    protected virtual Task<bool> SessionKeptAsync(Node node, string pid) => Task.FromResult(node.Server.Io.Recovery.Sessions == 1);

    [Fact]
    public async Task Broadcast_goes_to_all_to_rooms_and_never_to_the_excepted_rooms_or_sockets()
    {
        await using var node = await StartAsync();
        var (a, b, c) = (await node.ConnectAsync("a"), await node.ConnectAsync("b"), await node.ConnectAsync("c"));
        node.Socket(a).Join("red");
        node.Socket(b).Join("red");
        node.Socket(c).Join("blue");

        node.Nsp.Emit("ev", "all");
        node.Nsp.To("red").Emit("ev", "red");
        node.Nsp.To("red").Except(a.Sid).Emit("ev", "red-but-a");
        node.Nsp.Except("blue").Emit("ev", "not-blue");
        node.Nsp.To(["red", "blue"]).Emit("ev", "red-or-blue");
        node.Nsp.To(c.Sid).Emit("ev", "own-room-c");
        node.Nsp.To("red").Except(["red"]).Emit("ev", "nobody");
        new BroadcastOperator(node.Nsp).Local.Emit("ev", "local");

        Assert.Equal(["all", "red", "not-blue", "red-or-blue", "local"], await EventsUntilMarkAsync(node, a));
        Assert.Equal(["all", "red", "red-but-a", "not-blue", "red-or-blue", "local"], await EventsUntilMarkAsync(node, b));
        Assert.Equal(["all", "red-or-blue", "own-room-c", "local"], await EventsUntilMarkAsync(node, c));

        // volatile: reaches a socket whose queue is empty (each client drained everything above)
        node.Nsp.To("red").Volatile.Emit("ev", "volatile");
        Assert.Equal(["volatile"], await EventsUntilMarkAsync(node, a));
        Assert.Equal(["volatile"], await EventsUntilMarkAsync(node, b));
        Assert.Equal([], await EventsUntilMarkAsync(node, c));
    }

    [Fact]
    public async Task A_socket_broadcast_skips_its_sender()
    {
        await using var node = await StartAsync();
        var (a, b) = (await node.ConnectAsync("a"), await node.ConnectAsync("b"));
        node.Socket(a).Join("r");
        node.Socket(b).Join("r");

        node.Socket(a).To("r").Emit("ev", "to-r");
        node.Socket(a).Broadcast.Emit("ev", "others");

        Assert.Equal([], await EventsUntilMarkAsync(node, a));
        Assert.Equal(["to-r", "others"], await EventsUntilMarkAsync(node, b));
    }

    [Fact]
    public async Task FetchSockets_returns_the_selected_sockets_with_their_handshake_rooms_and_data()
    {
        await using var node = await StartAsync();
        var (a, b, c) = (await node.ConnectAsync("a"), await node.ConnectAsync("b"), await node.ConnectAsync("c"));
        node.Socket(a).Join("red");
        node.Socket(b).Join(["red", "green"]);
        node.Socket(c).Join("blue");
        node.Socket(b).Data["user"] = "bob";

        Assert.Equal(Ids(a, b, c), Ids(await node.Nsp.FetchSocketsAsync()));
        Assert.Equal(Ids(a, b), Ids(await node.Nsp.To("red").FetchSocketsAsync()));
        Assert.Equal(Ids(a), Ids(await node.Nsp.To("red").Except("green").FetchSocketsAsync()));
        Assert.Equal(Ids(b, c), Ids(await node.Nsp.Except(a.Sid).FetchSocketsAsync()));
        Assert.Equal(Ids(a, c), Ids(await node.Nsp.To(["red", "blue"]).Except(b.Sid).FetchSocketsAsync()));
        Assert.Empty(await node.Nsp.To("nobody").FetchSocketsAsync());

        var fetched = Assert.Single(await node.Nsp.To("green").FetchSocketsAsync());
        Assert.Equal(b.Sid, fetched.Id);
        Assert.Equal(new HashSet<string> { "green", "red", b.Sid }, fetched.Rooms.ToHashSet());
        Assert.Equal("bob", fetched.Data["user"]);
        Assert.Equal("b", fetched.Handshake.AuthString("tag"));

        // a fetched socket acts on the real one: emit, join, leave, disconnect
        fetched.Emit("ev", "fetched");
        fetched.Join("yellow");
        Assert.Contains("yellow", node.Socket(b).Rooms);
        fetched.Leave("red");
        Assert.DoesNotContain("red", node.Socket(b).Rooms);
        Assert.Equal(["fetched"], await EventsUntilMarkAsync(node, b));
        fetched.Disconnect();
        Assert.Equal("1" + Nsp + ",", await b.Client.NextAsync(Wait));

        // the synchronous local variant
        Assert.Equal(Ids(a), node.Nsp.To("red").FetchSockets().Select(s => s.Id).ToHashSet());
    }

    [Fact]
    public async Task SocketsJoin_and_SocketsLeave_change_the_rooms_of_the_selected_sockets()
    {
        await using var node = await StartAsync();
        var (a, b, c) = (await node.ConnectAsync("a"), await node.ConnectAsync("b"), await node.ConnectAsync("c"));
        node.Socket(a).Join("red");
        node.Socket(b).Join("red");

        node.Nsp.To("red").Except(b.Sid).SocketsJoin("green");
        new BroadcastOperator(node.Nsp).To(c.Sid).SocketsJoin(["green", "blue"]);
        Assert.Equal(Ids(a, c), Ids(await node.Nsp.To("green").FetchSocketsAsync()));

        node.Nsp.To("green").Emit("ev", "green");
        new BroadcastOperator(node.Nsp).SocketsLeave("red");
        node.Nsp.To("red").Emit("ev", "red");
        new BroadcastOperator(node.Nsp).To("blue").SocketsLeave(["green", "blue"]);
        node.Nsp.To("green").Emit("ev", "green-again");

        Assert.Equal(["green", "green-again"], await EventsUntilMarkAsync(node, a));
        Assert.Equal([], await EventsUntilMarkAsync(node, b));
        Assert.Equal(["green"], await EventsUntilMarkAsync(node, c));
        Assert.Equal([c.Sid], node.Socket(c).Rooms);
    }

    [Fact]
    public async Task DisconnectSockets_disconnects_the_selected_sockets_and_with_close_their_connections()
    {
        await using var node = await StartAsync();
        var (a, b, c) = (await node.ConnectAsync("a"), await node.ConnectAsync("b"), await node.ConnectAsync("c"));
        node.Socket(a).Join("red");
        node.Socket(b).Join("blue");

        node.Nsp.To("red").DisconnectSockets();
        Assert.Equal("1" + Nsp + ",", await a.Client.NextAsync(Wait));
        Assert.False(node.Nsp.SocketsById.ContainsKey(a.Sid));

        new BroadcastOperator(node.Nsp).Except(c.Sid).DisconnectSockets(close: true);
        Assert.Equal("1" + Nsp + ",", await b.Client.NextAsync(Wait));
        await Assert.ThrowsAsync<InvalidOperationException>(() => b.Client.NextAsync(Wait)); // its connection closed

        // a keeps its connection (it may join again), c is untouched
        Assert.Equal([], await EventsUntilMarkAsync(node, c));
        Assert.Equal([c.Sid], node.Nsp.SocketsById.Keys);
        var (again, _) = await a.Client.ConnectAsync(Nsp);
        Assert.True(again);

        node.Nsp.DisconnectSockets();
        Assert.Equal("1" + Nsp + ",", await c.Client.NextAsync(Wait));
    }

    [Fact]
    public async Task Broadcast_with_acks_returns_every_answer()
    {
        await using var node = await StartAsync();
        var (a, b, c) = (await node.ConnectAsync("a"), await node.ConnectAsync("b"), await node.ConnectAsync("c"));
        node.Socket(a).Join("red");
        node.Socket(b).Join("red");

        var answers = node.Nsp.To("red").Timeout(Wait).EmitWithAckAsync("question", 42);
        foreach (var client in new[] { a, b })
        {
            var (id, args) = await NextAckRequestAsync(client);
            Assert.Equal("[\"question\",42]", args);
            await client.Client.SendAsync($"3{Nsp},{id}[\"{client.Tag}\",1]");
        }

        var all = await answers.WaitAsync(Wait);
        Assert.Equal(["a", "b"], all.Select(r => (string)r[0]!).Order());
        Assert.All(all, r => Assert.Equal(1, (int)r[1]!));
        Assert.Equal([], await EventsUntilMarkAsync(node, c));

        // nobody selected: complete at once with no answers
        Assert.Empty(await node.Nsp.To("nobody").Timeout(Wait).EmitWithAckAsync("question").WaitAsync(Wait));

        // a broadcast with acks needs a timeout
        Assert.Throws<InvalidOperationException>(() => { _ = new BroadcastOperator(node.Nsp).EmitWithAckAsync("question"); });
    }

    [Fact]
    public async Task Broadcast_with_acks_times_out_with_the_answers_received()
    {
        await using var node = await StartAsync();
        var (a, b) = (await node.ConnectAsync("a"), await node.ConnectAsync("b"));

        var started = DateTime.UtcNow;
        var answers = node.Nsp.Timeout(TimeSpan.FromMilliseconds(800)).EmitWithAckAsync("question");
        var (id, _) = await NextAckRequestAsync(a);
        await a.Client.SendAsync($"3{Nsp},{id}[\"yes\"]");
        var (silent, _) = await NextAckRequestAsync(b); // b never answers

        var error = await Assert.ThrowsAsync<BroadcastAckTimeoutException>(() => answers.WaitAsync(Wait));
        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromMilliseconds(750), "not before the timeout");
        Assert.Equal("yes", (string?)Assert.Single(error.Responses)[0]);
        Assert.IsAssignableFrom<TimeoutException>(error);

        // b's late answer is ignored, and b's own acks still work afterwards
        await b.Client.SendAsync($"3{Nsp},{silent}[\"late\"]");
        var direct = node.Socket(b).EmitWithAckAsync("direct", [], Wait);
        var (directId, _) = await NextAckRequestAsync(b);
        Assert.NotEqual(silent, directId);
        await b.Client.SendAsync($"3{Nsp},{directId}[\"ok\"]");
        Assert.Equal("ok", (string?)(await direct)[0]);
    }

    [Fact]
    public async Task ServerSideEmit_reaches_the_other_nodes_only()
    {
        await using var node = await StartAsync();
        var received = new ConcurrentQueue<string>();
        node.Nsp.OnServerSideEmit("hello", (args, ack) =>
        {
            received.Enqueue((string)args[0]!);
            ack?.Invoke(["hi from " + node.Nsp.Name]);
        });
        foreach (var peer in node.Peers)
        {
            peer.Nsp.OnServerSideEmit("hello", (args, ack) => ack?.Invoke(["hi from a peer"]));
        }

        node.Nsp.ServerSideEmit("hello", "one");
        var answers = await node.Nsp.ServerSideEmitWithAckAsync("hello", ["two"], TimeSpan.FromSeconds(2)).WaitAsync(Wait);
        Assert.Equal(NodeCount - 1, answers.Count);
        Assert.Equal(NodeCount, await node.Nsp.Adapter.ServerCountAsync());
        Assert.Empty(received); // never this node's own handlers

        // an event that came from another node reaches the handlers, ack included
        object?[]? answer = null;
        Assert.True(node.Nsp.DispatchServerSideEvent("hello", [JsonValue.Create("remote")], a => answer = a));
        Assert.Equal(["remote"], received);
        Assert.Equal("hi from " + Nsp, Assert.Single(answer!));
        Assert.False(node.Nsp.DispatchServerSideEvent("unknown", [], null));
        Assert.Throws<ArgumentException>(() => node.Nsp.ServerSideEmit("disconnect"));
        Assert.Throws<ArgumentException>(() => { _ = node.Nsp.ServerSideEmitWithAckAsync("connect", [], TimeSpan.FromSeconds(1)); });
    }

    [Fact]
    public async Task The_adapter_is_initialised_once_and_closed_when_its_child_namespace_goes_and_at_server_close()
    {
        var log = new AdapterLifecycleLog();
        var node = await StartAsync(log);
        await using (node)
        {
            Assert.Equal(1, log.Count("init", "/"));
            Assert.Equal(1, log.Count("init", Nsp));
            Assert.Equal(0, log.Count("close", Nsp));

            await using (var client = await WsSocketIOClient.OpenAsync(node.Server.BaseUri))
            {
                Assert.True((await client.ConnectAsync("/dyn-one")).Ok);
                Assert.Equal(1, log.Count("init", "/dyn-one"));
                Assert.Equal(0, log.Count("close", "/dyn-one"));
                await client.SendAsync("1/dyn-one,"); // leave: the emptied child goes
                await WaitUntilAsync(() => log.Count("close", "/dyn-one") == 1);
                Assert.False(node.Server.Io.TryGetNamespace("/dyn-one", out _));

                Assert.True((await client.ConnectAsync("/dyn-one")).Ok); // a new child, a new adapter
                Assert.Equal(2, log.Count("init", "/dyn-one"));
            }

            await WaitUntilAsync(() => log.Count("close", "/dyn-one") == 2);
            Assert.Equal(0, log.Count("close", Nsp));
        }

        Assert.Equal(1, log.Count("close", "/"));
        Assert.Equal(1, log.Count("close", Nsp));
        Assert.Equal(2, log.Count("init", "/dyn-one"));
        Assert.Equal(2, log.Count("close", "/dyn-one"));
    }

    [Fact]
    public async Task Connection_state_recovery_still_restores_a_dropped_socket_with_its_missed_broadcasts()
    {
        await using var node = await StartAsync(recovery: true);
        var a = await node.ConnectAsync("a");
        node.Socket(a).Join("red");
        node.Nsp.To("red").Emit("n", 1);
        var first = await a.Client.NextEventAsync(Nsp, Wait);
        var offset = (string)first[2]!;
        var pid = a.Pid!;

        a.Client.Drop();
        await WaitUntilAsync(() => !node.Nsp.SocketsById.ContainsKey(a.Sid));
        var deadline = DateTime.UtcNow + Wait;
        while (!await SessionKeptAsync(node, pid))
        {
            Assert.True(DateTime.UtcNow < deadline, "session not kept within 10 s");
            await Task.Delay(20);
        }

        node.Nsp.To("red").Emit("n", 2);
        node.Nsp.To("blue").Emit("n", -1);

        await using var again = await WsSocketIOClient.OpenAsync(node.Server.BaseUri);
        var (ok, connect) = await again.ConnectAsync(Nsp, new JsonObject { ["pid"] = pid, ["offset"] = offset });
        Assert.True(ok);
        Assert.Equal(a.Sid, (string?)connect["sid"]);
        Assert.Equal(2, (int)(await again.NextEventAsync(Nsp, Wait))[1]!);
        Assert.True(node.Socket(a).Recovered);
        Assert.Contains("red", node.Socket(a).Rooms);
    }

    /// <summary>Starts one node (a real server on loopback) with the adapter under test and the namespace <c>/spec</c>.</summary>
    /// <remarks>With <see cref="NodeCount"/> &gt; 1, the other nodes of the cluster are in <see cref="Node.Peers"/> (their lifecycle is not logged).</remarks>
    protected async Task<Node> StartAsync(AdapterLifecycleLog? log = null, bool recovery = false)
    {
        OnNewCluster();
        var server = await TestServer.StartAsync(
            o => o.ConnectionStateRecovery = recovery ? new ConnectionStateRecoveryOptions() : null,
            adapterFactory: CreateFactory(log ?? new AdapterLifecycleLog()));
        var node = new Node(server, server.Io.Of(Nsp));
        for (var i = 1; i < NodeCount; i++)
        {
            var peer = await TestServer.StartAsync(
                o => o.ConnectionStateRecovery = recovery ? new ConnectionStateRecoveryOptions() : null,
                adapterFactory: CreateFactory(new AdapterLifecycleLog()));
            node.Peers.Add(new Node(peer, peer.Io.Of(Nsp)));
        }

        await ClusterReadyAsync(node);
        return node;
    }

    private static HashSet<string> Ids(params Peer[] clients) => clients.Select(c => c.Sid).ToHashSet();

    private static HashSet<string> Ids(IEnumerable<IClusterSocket> sockets) => sockets.Select(s => s.Id).ToHashSet();

    /// <summary>Emits "mark" to everyone, then reads this client's events up to it: the string arguments of the "ev" events before it.</summary>
    private static async Task<List<string>> EventsUntilMarkAsync(Node node, Peer client)
    {
        node.Nsp.To(client.Sid).Emit("mark");
        var seen = new List<string>();
        while (true)
        {
            var args = await client.Client.NextEventAsync(Nsp, Wait);
            if ((string?)args[0] == "mark")
            {
                return seen;
            }

            Assert.Equal("ev", (string?)args[0]);
            seen.Add((string)args[1]!);
        }
    }

    /// <summary>The next packet must be an EVENT asking for an ack: its id and arguments.</summary>
    private static async Task<(long Id, string Args)> NextAckRequestAsync(Peer client)
    {
        var packet = await client.Client.NextAsync(Wait);
        var prefix = "2" + Nsp + ",";
        Assert.StartsWith(prefix, packet);
        var rest = packet[prefix.Length..];
        var bracket = rest.IndexOf('[');
        Assert.True(bracket > 0, "an ack id: " + packet);
        return (long.Parse(rest[..bracket]), rest[bracket..]);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met within 10 s");
            await Task.Delay(20);
        }
    }

    /// <summary>A connected raw client of <c>/spec</c>.</summary>
    protected sealed record Peer(WsSocketIOClient Client, string Tag, string Sid, string? Pid);

    /// <summary>One node of the cluster under test.</summary>
    protected sealed class Node(TestServer server, Namespace nsp) : IAsyncDisposable
    {
        private readonly List<WsSocketIOClient> _clients = [];

        public TestServer Server { get; } = server;

        public Namespace Nsp { get; } = nsp;

        /// <summary>The other nodes of the cluster (disposed with this one).</summary>
        public List<Node> Peers { get; } = [];

        public Socket Socket(Peer client) => Nsp.SocketsById[client.Sid];

        public async Task<Peer> ConnectAsync(string tag)
        {
            var client = await WsSocketIOClient.OpenAsync(Server.BaseUri);
            _clients.Add(client);
            var (ok, payload) = await client.ConnectAsync(Nsp.Name, new JsonObject { ["tag"] = tag });
            Assert.True(ok, payload.ToJsonString());
            return new Peer(client, tag, (string)payload["sid"]!, (string?)payload["pid"]);
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var client in _clients)
            {
                await client.DisposeAsync();
            }

            await Server.DisposeAsync();
            foreach (var peer in Peers)
            {
                await peer.DisposeAsync();
            }
        }
    }
}

using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Evolution.Events.EngineIO;

namespace Evolution.Events.SocketIO.Tests;

/// <summary>
/// Issue 13: socket.io 4.8's server-side socket API (disconnecting, timeout().emitWithAck(), volatile, the
/// catch-all listeners, per-packet middlewares, typed emits), seen by a raw client that shows every packet.
/// </summary>
public sealed class SocketApiParityTests : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync(o => o.Engine.MaxQueuedBytes = 64 * 1024);

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<(WsSocketIOClient Client, Socket Socket)> ConnectAsync(string nsp, Action<Socket>? onConnection = null)
    {
        var connected = new TaskCompletionSource<Socket>(TaskCreationOptions.RunContinuationsAsynchronously);
        _server.Io.Of(nsp).OnConnection(s =>
        {
            onConnection?.Invoke(s);
            connected.TrySetResult(s);
        });
        var client = await WsSocketIOClient.OpenAsync(_server.BaseUri);
        Assert.True((await client.ConnectAsync(nsp)).Ok);
        return (client, await connected.Task.WaitAsync(Wait));
    }

    /// <summary>A packet "2/nsp,ID[...]": its ack id and its array.</summary>
    private static (long Id, JsonArray Data) ParseEventWithAck(string packet, string nsp)
    {
        var prefix = "2" + nsp + ",";
        Assert.StartsWith(prefix, packet);
        var rest = packet[prefix.Length..];
        var bracket = rest.IndexOf('[');
        return (long.Parse(rest[..bracket]), JsonNode.Parse(rest[bracket..])!.AsArray());
    }

    [Fact]
    public async Task Disconnecting_sees_the_rooms_and_the_reason_before_disconnected()
    {
        var seen = new ConcurrentQueue<string>();
        var (client, socket) = await ConnectAsync("/p-disc", s =>
        {
            s.Join("r1");
            s.Disconnecting += (me, reason) => seen.Enqueue($"disconnecting:{reason}:{string.Join(',', me.Rooms.Order())}");
            s.Disconnected += (me, reason) => seen.Enqueue($"disconnected:{reason}:{string.Join(',', me.Rooms)}");
        });
        await using (client)
        {
            await client.SendAsync("1/p-disc,");
            await WaitUntilAsync(() => seen.Count == 2);
        }

        Assert.Equal(
            [$"disconnecting:{DisconnectReason.ClientNamespaceDisconnect}:{string.Join(',', new[] { "r1", socket.Id }.Order())}",
             $"disconnected:{DisconnectReason.ClientNamespaceDisconnect}:"],
            seen);
    }

    [Fact]
    public async Task Timeout_EmitWithAckAsync_returns_the_ack_or_fails_when_it_expires()
    {
        var (client, socket) = await ConnectAsync("/p-ack");
        await using var owned = client;

        // answered: the ack's arguments
        var answered = socket.Timeout(Wait).EmitWithAckAsync("question", 42);
        var (id, data) = ParseEventWithAck(await client.NextAsync(), "/p-ack");
        Assert.Equal("[\"question\",42]", data.ToJsonString());
        await client.SendAsync($"3/p-ack,{id}[\"answer\",43]");
        var ack = await answered.WaitAsync(Wait);
        Assert.Equal("answer", (string?)ack[0]);
        Assert.Equal(43, (int?)ack[1]);

        // never answered: fails with socket.io's error once the timeout expires; a late ack is ignored
        var expired = socket.Timeout(TimeSpan.FromMilliseconds(200)).EmitWithAckAsync("silence");
        var (late, _) = ParseEventWithAck(await client.NextAsync(), "/p-ack");
        var error = await Assert.ThrowsAsync<TimeoutException>(() => expired.WaitAsync(Wait));
        Assert.Equal("operation has timed out", error.Message);
        await client.SendAsync($"3/p-ack,{late}[\"too late\"]");

        // without a timeout: refused; the socket is still fine
        await Assert.ThrowsAsync<InvalidOperationException>(() => socket.Volatile.EmitWithAckAsync("x"));
        Assert.True(socket.Emit("still", "here"));
        Assert.Equal("[\"still\",\"here\"]", (await client.NextEventAsync("/p-ack")).ToJsonString());
        Assert.True(socket.Connected);
    }

    [Fact]
    public async Task Incoming_catch_all_listeners_run_in_socket_io_order_before_the_named_handlers()
    {
        var calls = new ConcurrentQueue<string>();
        SocketEventHandler Record(string who) => e =>
        {
            calls.Enqueue($"{who}:{e.Name}");
            return ValueTask.CompletedTask;
        };

        var a = Record("a");
        var b = Record("b");
        var c = Record("c");
        var (client, socket) = await ConnectAsync("/p-any", s =>
        {
            s.On("ev", e => calls.Enqueue("named:" + e.Name));
            s.OnAny(a);
            s.PrependAny(b);
            s.OnAny(c);
            s.OnAny(a);
            s.OffAny(c);
            s.OffAny(a); // the first registration of a goes; the second stays
        });
        await using var owned = client;
        Assert.Equal([b, a], socket.ListenersAny());

        await client.SendAsync("2/p-any,[\"ev\",1]");
        await WaitUntilAsync(() => calls.Count == 3);
        Assert.Equal(["b:ev", "a:ev", "named:ev"], calls);

        socket.OffAny();
        Assert.Empty(socket.ListenersAny());
        await client.SendAsync("2/p-any,[\"ev\",2]");
        await WaitUntilAsync(() => calls.Count == 4);
        Assert.Equal("named:ev", calls.Last());
    }

    [Fact]
    public async Task Namespace_wide_catch_all_listeners_run_for_every_socket_parents_first_then_the_sockets_own()
    {
        var calls = new ConcurrentQueue<string>();
        SocketEventHandler Record(string who) => e =>
        {
            calls.Enqueue($"{who}:{e.Socket.Namespace.Name}:{e.Name}");
            return ValueTask.CompletedTask;
        };

        var parent = _server.Io.Of(name => name.StartsWith("/nsp-any-", StringComparison.Ordinal))
            .OnAny(Record("parent"))
            .OnConnection(s => s.OnAny(Record("socket")));

        await using var client = await WsSocketIOClient.OpenAsync(_server.BaseUri);
        Assert.True((await client.ConnectAsync("/nsp-any-1")).Ok);
        Assert.True((await client.ConnectAsync("/nsp-any-2")).Ok);
        parent.Children.Single(c => c.Name == "/nsp-any-1").OnAny(Record("child"));
        await client.SendAsync("2/nsp-any-1,[\"ev\",1]");
        await WaitUntilAsync(() => calls.Count == 3);
        await client.SendAsync("2/nsp-any-2,[\"ev\",2]");
        await WaitUntilAsync(() => calls.Count == 5);
        Assert.Equal(
            ["parent:/nsp-any-1:ev", "child:/nsp-any-1:ev", "socket:/nsp-any-1:ev", "parent:/nsp-any-2:ev", "socket:/nsp-any-2:ev"],
            calls);
    }

    [Fact]
    public async Task Outgoing_catch_all_listeners_see_emits_and_broadcasts_in_order()
    {
        var calls = new ConcurrentQueue<string>();
        OutgoingEventListener Record(string who) => (name, args) =>
            calls.Enqueue($"{who}:{name}:{string.Join(',', args.Select(x => x is JsonNode n ? n.ToJsonString() : x?.ToString()))}");

        var x = Record("x");
        var y = Record("y");
        var (client, socket) = await ConnectAsync("/p-out");
        await using var owned = client;
        socket.OnAnyOutgoing(x);
        socket.PrependAnyOutgoing(y);
        Assert.Equal([y, x], socket.ListenersAnyOutgoing());

        socket.Emit("direct", 1, "two");
        _server.Io.Of("/p-out").Emit("broadcast", 3);
        Assert.Equal("[\"direct\",1,\"two\"]", (await client.NextEventAsync("/p-out")).ToJsonString());
        Assert.Equal("[\"broadcast\",3]", (await client.NextEventAsync("/p-out")).ToJsonString());
        Assert.Equal(["y:direct:1,two", "x:direct:1,two", "y:broadcast:3", "x:broadcast:3"], calls);

        socket.OffAnyOutgoing(y);
        socket.Emit("after-off");
        await client.NextEventAsync("/p-out");
        Assert.Equal("x:after-off:", calls.Last());
        socket.OffAnyOutgoing();
        socket.Emit("none");
        await client.NextEventAsync("/p-out");
        Assert.Equal(5, calls.Count);
    }

    [Fact]
    public async Task Packet_middlewares_run_in_order_and_a_rejection_raises_Error_on_the_server_only()
    {
        var calls = new ConcurrentQueue<string>();
        var errors = new ConcurrentQueue<string>();
        var (client, socket) = await ConnectAsync("/p-use", s =>
        {
            s.OnAny(e =>
            {
                calls.Enqueue("any:" + e.Name);
                return ValueTask.CompletedTask;
            });
            s.Use((e, next) =>
            {
                calls.Enqueue("mw1:" + e.Name);
                if (e.Name == "rejected")
                {
                    next(new InvalidOperationException("not allowed: " + (string?)e.Args[0]));
                }
                else if (e.Name == "dropped")
                {
                    // never calls next: the event goes no further
                }
                else if (e.Name == "thrown")
                {
                    throw new InvalidOperationException("boom");
                }
                else
                {
                    // next may come later, from another thread
                    _ = Task.Run(async () =>
                    {
                        await Task.Delay(10);
                        next(null);
                        next(new InvalidOperationException("a second next is ignored"));
                    });
                }
            });
            s.Use((e, next) =>
            {
                calls.Enqueue("mw2:" + e.Name);
                next(null);
            });
            s.On("accepted", e =>
            {
                calls.Enqueue("named:accepted");
                e.Ack("ok");
            });
            s.On("rejected", _ => calls.Enqueue("named:rejected"));
            s.On("dropped", _ => calls.Enqueue("named:dropped"));
            s.On("thrown", _ => calls.Enqueue("named:thrown"));
            s.Error += (_, error) => errors.Enqueue(error.Message);
        });
        await using var owned = client;

        await client.SendAsync("2/p-use,[\"rejected\",\"x\"]");
        await WaitUntilAsync(() => errors.Count == 1);
        await client.SendAsync("2/p-use,[\"dropped\"]");
        await client.SendAsync("2/p-use,[\"thrown\"]");
        await WaitUntilAsync(() => errors.Count == 2);
        await client.SendAsync("2/p-use,7[\"accepted\"]");
        Assert.Equal("3/p-use,7[\"ok\"]", await client.NextAsync(Wait));

        Assert.Equal(
            ["any:rejected", "mw1:rejected", "any:dropped", "mw1:dropped", "any:thrown", "mw1:thrown",
             "any:accepted", "mw1:accepted", "mw2:accepted", "named:accepted"],
            calls);
        Assert.Equal(["not allowed: x", "boom"], errors);

        // nothing about the rejections reached the client, and the socket is still connected
        Assert.True(await client.IsQuietAsync(TimeSpan.FromMilliseconds(300)));
        Assert.True(socket.Connected);
    }

    [Fact]
    public async Task A_volatile_emit_is_dropped_instead_of_closing_the_session()
    {
        var (client, socket) = await ConnectAsync("/p-vol");
        await using var owned = client;
        Assert.True(_server.Io.Engine.TryGetSession(socket.Connection.Id, out var session));

        // bigger than the queue's byte limit (64 KiB here): volatile, dropped; the session stays open
        var huge = new string('v', 100 * 1024);
        var dropsBefore = session.DroppedPackets;
        Assert.False(socket.Volatile.Emit("huge", huge));
        Assert.Equal(dropsBefore + 1, session.DroppedPackets);
        Assert.Equal(EngineReadyState.Open, session.ReadyState);

        // a burst of volatile emits: whatever is not written at once is dropped, never the session
        var queued = 0;
        for (var i = 0; i < 2000; i++)
        {
            queued += socket.Volatile.Emit("burst", i, new string('b', 8 * 1024)) ? 1 : 0;
        }

        Assert.InRange(queued, 1, 2000);
        Assert.Equal(EngineReadyState.Open, session.ReadyState);
        Assert.True(socket.Emit("done"));
        while ((string?)(await client.NextEventAsync("/p-vol", Wait))[0] != "done")
        {
        }

        // the same oversized packet, not volatile: the slow-consumer policy closes the session
        Assert.False(socket.Emit("huge", huge));
        await WaitUntilAsync(() => !socket.Connected);
    }

    [Fact]
    public async Task Typed_emits_serialize_with_the_given_type_info_on_a_socket_and_in_a_broadcast()
    {
        var (client, socket) = await ConnectAsync("/p-typed");
        await using var owned = client;
        var outgoing = new ConcurrentQueue<string>();
        socket.OnAnyOutgoing((name, args) => outgoing.Enqueue(name + ":" + args.Count));

        Assert.True(socket.Emit("point", new ParityPoint(1, -2.5, "a b"), ParityJsonContext.Default.ParityPoint));
        Assert.Equal("[\"point\",{\"x\":1,\"y\":-2.5,\"label\":\"a b\"}]", (await client.NextEventAsync("/p-typed")).ToJsonString());

        Assert.True(socket.Emit("number", 7, ParityJsonContext.Default.Int32));
        Assert.Equal("[\"number\",7]", (await client.NextEventAsync("/p-typed")).ToJsonString());

        Assert.True(socket.Emit("reflected", new ParityPoint(3, 4, null)));
        Assert.Equal("[\"reflected\",{\"x\":3,\"y\":4,\"label\":null}]", (await client.NextEventAsync("/p-typed")).ToJsonString());

        // Emit<T>(event, arg) for a value type: the generic path, same JSON as the untyped emit
        Assert.True(socket.Emit("struct", new ParityStruct(8, true)));
        Assert.Equal("[\"struct\",{\"n\":8,\"on\":true}]", (await client.NextEventAsync("/p-typed")).ToJsonString());

        // one-argument emits the untyped path treats specially still mean what they meant: binary, raw JSON
        Assert.True(socket.Emit("bytes", new byte[] { 1, 2, 3 }));
        Assert.Equal("51-/p-typed,[\"bytes\",{\"_placeholder\":true,\"num\":0}]", await client.NextAsync());
        Assert.Equal("<binary 3>", await client.NextAsync());
        Assert.True(socket.Emit("memory", new ReadOnlyMemory<byte>([4, 5])));
        Assert.Equal("51-/p-typed,[\"memory\",{\"_placeholder\":true,\"num\":0}]", await client.NextAsync());
        Assert.Equal("<binary 2>", await client.NextAsync());
        Assert.True(socket.Emit("raw", Protocol.RawJson.FromString("{\"pre\":[1]}")));
        Assert.Equal("2/p-typed,[\"raw\",{\"pre\":[1]}]", await client.NextAsync());

        new BroadcastOperator(_server.Io.Of("/p-typed")).Emit("all", new ParityPoint(5, 6, "z"), ParityJsonContext.Default.ParityPoint);
        Assert.Equal("[\"all\",{\"x\":5,\"y\":6,\"label\":\"z\"}]", (await client.NextEventAsync("/p-typed")).ToJsonString());
        Assert.Equal(["point:1", "number:1", "reflected:1", "struct:1", "bytes:1", "memory:1", "raw:1", "all:1"], outgoing);
    }

    [Fact]
    public async Task The_stock_client_sees_timeout_acks_packet_middlewares_and_typed_emits()
    {
        var seen = new ConcurrentQueue<string>();
        _server.Io.Of("/parity").OnConnection(s =>
        {
            s.Join("parity-room");
            s.Use((e, next) => next(e.Name == "forbidden" ? new InvalidOperationException("forbidden event") : null));
            s.Error += (_, error) => seen.Enqueue("error:" + error.Message);
            s.Disconnecting += (me, reason) => seen.Enqueue($"disconnecting:{reason}:{me.Rooms.Contains("parity-room")}");
            s.On("forbidden", e => seen.Enqueue("handler ran for a rejected event"));
            s.On("allowed", e => e.Ack("ok:" + (int?)e.Args[0]));
            s.On("start", async e =>
            {
                var answer = await s.Timeout(TimeSpan.FromSeconds(5)).EmitWithAckAsync("question", 41);
                string? expired = null;
                try
                {
                    await s.Timeout(TimeSpan.FromMilliseconds(300)).EmitWithAckAsync("ignored");
                }
                catch (TimeoutException ex)
                {
                    expired = ex.Message;
                }

                s.Emit("result", answer[0], expired);
            });
            s.Emit("typed", new ParityPoint(1, 2.5, "p"), ParityJsonContext.Default.ParityPoint);
        });

        var result = await NodeRunner.RunAsync("parity.mjs", _server.Url, "node-parity");

        Json.Equal("[{\"x\":1,\"y\":2.5,\"label\":\"p\"}]", result.Single("typed")["args"]);
        Json.Equal("[42,\"operation has timed out\"]", result.Single("result")["args"]);
        Assert.False((bool)result.Single("forbidden")["acked"]!, result.Output);
        Json.Equal("\"ok:2\"", result.Single("allowed")["args"]); // emitWithAck resolves with the first argument
        await WaitUntilAsync(() => seen.Count == 2);
        Assert.Equal(["error:forbidden event", $"disconnecting:{DisconnectReason.ClientNamespaceDisconnect}:True"], seen);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the condition never held");
            await Task.Delay(20);
        }
    }
}

public sealed record ParityPoint(int X, double Y, string? Label);

public readonly record struct ParityStruct(int N, bool On);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(ParityPoint))]
[JsonSerializable(typeof(int))]
internal sealed partial class ParityJsonContext : JsonSerializerContext;

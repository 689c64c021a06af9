using System.Text.Json.Nodes;
using Evolution.Events.EngineIO.Protocol;
using Evolution.Events.SocketIO.Adapters;
using Evolution.Events.SocketIO.Protocol;

namespace Evolution.Events.SocketIO.Tests;

/// <summary>
/// Connection state recovery on a real server with a raw WebSocket client that shows the packets: offsets on
/// kept broadcasts only, a dropped client's session (rooms, data, missed packets) restored once (with its
/// offset, or with its pid alone from where it joined), the ways it
/// is not (unknown pid, too late, evicted, refused, deliberate disconnects), and the store outliving an
/// emptied dynamic namespace.
/// </summary>
public sealed class RecoveryTests
{
    internal const string Nsp = "/rec";

    [Fact]
    public async Task Only_kept_broadcast_events_carry_an_offset()
    {
        await using var server = await StartAsync();
        await using var client = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (ok, connect) = await client.ConnectAsync(Nsp);
        Assert.True(ok);
        var sid = (string)connect["sid"]!;
        Assert.False(string.IsNullOrEmpty((string?)connect["pid"]));
        var socket = server.Io.Of(Nsp).SocketsById[sid];

        server.Io.Of(Nsp).Emit("broadcast", 1);
        var first = await client.NextEventAsync(Nsp);
        Assert.Equal(3, first.Count);
        Assert.Equal("broadcast", (string?)first[0]);
        var offset1 = long.Parse((string)first[2]!);

        server.Io.Of(Nsp).Volatile.Emit("volatile", 2);
        Assert.Equal("[\"volatile\",2]", (await client.NextEventAsync(Nsp)).ToJsonString());

        socket.Emit("direct", 3);
        Assert.Equal("[\"direct\",3]", (await client.NextEventAsync(Nsp)).ToJsonString());

        var ack = socket.EmitWithAckAsync("ask", [4], TimeSpan.FromSeconds(5));
        var asked = await client.NextAsync();
        Assert.Equal(Nsp + ",1[\"ask\",4]", asked[1..]); // "2/rec,1[...]": an ack id, no offset
        await client.SendAsync("3" + Nsp + ",1[\"yes\"]");
        Assert.Equal("yes", (string?)(await ack)[0]);

        server.Io.Of(Nsp).Emit("bin", new byte[] { 1, 2, 3 });
        var binary = await client.NextAsync();
        Assert.StartsWith("51-" + Nsp + ",", binary);
        var args = JsonNode.Parse(binary[(binary.IndexOf(',') + 1)..])!.AsArray();
        Assert.Equal("bin", (string?)args[0]);
        Assert.True((bool)args[1]!["_placeholder"]!);
        Assert.True(long.Parse((string)args[2]!) > offset1, "offsets increase");
        Assert.Equal("<binary 3>", await client.NextAsync());

        Assert.Equal(2, server.Io.Recovery.Packets);
        Assert.True(server.Io.Recovery.Bytes > 0);
    }

    [Fact]
    public async Task Offsets_are_spliced_into_the_encoded_packet()
    {
        var plain = SocketPacketEncoder.Event("/", "ev", [1, "x"]);
        Assert.True(plain.IsEventWithoutAck);
        Assert.Equal("2[\"ev\",1,\"x\",\"42\"]", plain.WithOffset("42").ToString());
        Assert.Equal("42", plain.WithOffset("42").Offset);
        var named = SocketPacketEncoder.Event("/a,b", "ev", []);
        Assert.Equal("2/a,b,[\"ev\",\"7\"]", named.WithOffset("7").ToString());
        Assert.False(SocketPacketEncoder.Event("/", "ev", [1], ackId: 5).IsEventWithoutAck);
        Assert.False(SocketPacketEncoder.Event("/n", "ev", [1], ackId: 5).IsEventWithoutAck);
        Assert.False(SocketPacketEncoder.Ack("/", 5, [1]).IsEventWithoutAck);
        Assert.False(SocketPacketEncoder.Connect("/", "sid").IsEventWithoutAck);
        var binary = SocketPacketEncoder.Event("/n", "ev", [new byte[] { 9 }]);
        Assert.True(binary.IsEventWithoutAck);
        Assert.Equal("51-/n,[\"ev\",{\"_placeholder\":true,\"num\":0},\"3\"]", binary.WithOffset("3").ToString());
        Assert.Same(binary.Attachments, binary.WithOffset("3").Attachments);
        await Task.CompletedTask;
    }

    [Fact]
    public async Task A_dropped_client_recovers_its_id_rooms_data_and_every_missed_broadcast_once()
    {
        await using var server = await StartAsync();
        var nsp = server.Io.Of(Nsp);
        await using var before = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (_, connect) = await before.ConnectAsync(Nsp);
        var (sid, pid) = ((string)connect["sid"]!, (string)connect["pid"]!);
        var socket = nsp.SocketsById[sid];
        socket.Join("red");
        socket.Data["user"] = "alice";
        nsp.To("red").Emit("n", 1);
        var offset = (string)(await before.NextEventAsync(Nsp))[2]!;

        before.Drop();
        await WaitUntilAsync(() => !nsp.SocketsById.ContainsKey(sid) && server.Io.Recovery.Sessions == 1);
        nsp.To("red").Emit("n", 2);
        nsp.To("blue").Emit("n", -1);              // not for this socket
        nsp.Except("red").Emit("n", -2);           // nor this
        nsp.Emit("n", 3);
        nsp.To(sid).Emit("n", 4);                  // its own room
        nsp.Volatile.Emit("n", -3);                // volatile: not kept

        await using var after = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (ok, again) = await after.ConnectAsync(Nsp, new JsonObject { ["pid"] = pid, ["offset"] = offset });
        Assert.True(ok);
        Assert.Equal(sid, (string?)again["sid"]);
        Assert.Equal(pid, (string?)again["pid"]);
        for (var n = 2; n <= 4; n++)
        {
            Assert.Equal(n, (int)(await after.NextEventAsync(Nsp))[1]!);
        }

        nsp.To("red").Emit("n", 5);
        Assert.Equal(5, (int)(await after.NextEventAsync(Nsp))[1]!);
        Assert.True(await after.IsQuietAsync(TimeSpan.FromMilliseconds(300)));

        var recovered = nsp.SocketsById[sid];
        Assert.NotSame(socket, recovered);
        Assert.True(recovered.Recovered);
        Assert.Contains("red", recovered.Rooms);
        Assert.Equal("alice", recovered.Data["user"]);
        Assert.Equal(1, server.Io.Recovery.Recovered);
        Assert.Equal(0, server.Io.Recovery.Sessions);

        // the session was claimed: the same pid does not recover twice
        await using var replay = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (_, third) = await replay.ConnectAsync(Nsp, new JsonObject { ["pid"] = pid, ["offset"] = offset });
        Assert.NotEqual(sid, (string?)third["sid"]);
        Assert.Equal(1, server.Io.Recovery.UnknownSession);
    }

    [Fact]
    public async Task A_client_that_received_no_broadcast_recovers_with_its_pid_alone_from_where_it_joined()
    {
        await using var server = await StartAsync();
        var nsp = server.Io.Of(Nsp);
        await using var watcher = await WsSocketIOClient.OpenAsync(server.BaseUri);
        await watcher.ConnectAsync(Nsp);
        nsp.Emit("n", -1);                         // kept, but broadcast before the client joined
        nsp.Emit("n", -2);
        Assert.Equal(-1, (int)(await watcher.NextEventAsync(Nsp))[1]!);
        Assert.Equal(-2, (int)(await watcher.NextEventAsync(Nsp))[1]!);

        var (sid, pid, offset) = await ConnectReceiveAndDropAsync(server, emit: false);
        Assert.Null(offset);
        nsp.Emit("n", 1);
        nsp.To("blue").Emit("n", -3);              // not for this socket
        nsp.Emit("n", 2);
        nsp.To(sid).Emit("n", 3);
        Assert.Equal(6, server.Io.Recovery.Packets);   // the two from before its join are still kept

        // socket.io-client sends {pid} alone when it got no offset yet
        await using var back = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (ok, again) = await back.ConnectAsync(Nsp, new JsonObject { ["pid"] = pid });
        Assert.True(ok);
        Assert.Equal(sid, (string?)again["sid"]);
        Assert.Equal(pid, (string?)again["pid"]);
        for (var n = 1; n <= 3; n++)
        {
            Assert.Equal(n, (int)(await back.NextEventAsync(Nsp))[1]!);
        }

        nsp.Emit("n", 4);
        Assert.Equal(4, (int)(await back.NextEventAsync(Nsp))[1]!);
        Assert.True(await back.IsQuietAsync(TimeSpan.FromMilliseconds(300)));
        Assert.True(nsp.SocketsById[sid].Recovered);
        Assert.Equal(1, server.Io.Recovery.Recovered);
        Assert.Equal(0, server.Io.Recovery.Sessions);
    }

    [Fact]
    public async Task A_recovered_client_that_again_received_nothing_recovers_again_from_its_first_join()
    {
        await using var server = await StartAsync();
        var nsp = server.Io.Of(Nsp);
        var (sid, pid, _) = await ConnectReceiveAndDropAsync(server, emit: false);

        // recovered with nothing missed, then dropped again before any broadcast
        var back = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (_, again) = await back.ConnectAsync(Nsp, new JsonObject { ["pid"] = pid });
        Assert.Equal(sid, (string?)again["sid"]);
        back.Drop();
        await back.DisposeAsync();
        await WaitUntilAsync(() => server.Io.Recovery.Sessions == 1);
        nsp.Emit("n", 1);

        await using var third = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (_, once) = await third.ConnectAsync(Nsp, new JsonObject { ["pid"] = pid });
        Assert.Equal(sid, (string?)once["sid"]);
        Assert.Equal(1, (int)(await third.NextEventAsync(Nsp))[1]!);
        Assert.True(await third.IsQuietAsync(TimeSpan.FromMilliseconds(300)));
        Assert.Equal(2, server.Io.Recovery.Recovered);
    }

    [Fact]
    public async Task A_join_point_outlives_sweeps_of_a_quiet_namespace_while_other_namespaces_broadcast()
    {
        // a 3 s window sweeps every 1.5 s: the quiet namespace's empty log must stay while its socket is connected
        await using var server = await StartAsync(o => o.MaxDisconnectionDuration = TimeSpan.FromSeconds(3));
        var nsp = server.Io.Of(Nsp);
        var other = server.Io.Of("/other");
        var client = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (_, connect) = await client.ConnectAsync(Nsp);
        var (sid, pid) = ((string)connect["sid"]!, (string)connect["pid"]!);
        for (var i = 0; i < 4; i++)
        {
            other.Emit("n", i);                    // offsets go on elsewhere
            await Task.Delay(1000);                // across sweeps (this only gives a wrong removal its chance)
        }

        client.Drop();
        await client.DisposeAsync();
        await WaitUntilAsync(() => server.Io.Recovery.Sessions == 1);
        nsp.Emit("n", 1);
        await using var back = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (_, again) = await back.ConnectAsync(Nsp, new JsonObject { ["pid"] = pid });
        Assert.Equal(sid, (string?)again["sid"]);
        Assert.Equal(1, (int)(await back.NextEventAsync(Nsp))[1]!);
    }

    [Fact]
    public async Task Without_an_offset_eviction_past_the_join_point_gives_a_fresh_session()
    {
        await using var server = await StartAsync(o => o.MaxPacketsPerNamespace = 2);
        var nsp = server.Io.Of(Nsp);
        await using var watcher = await WsSocketIOClient.OpenAsync(server.BaseUri);
        await watcher.ConnectAsync(Nsp);
        nsp.Emit("n", -1);
        nsp.Emit("n", -2);

        // the two packets from before its join go: it lost nothing, it recovers both later ones
        var (sid, pid, _) = await ConnectReceiveAndDropAsync(server, emit: false);
        nsp.Emit("n", 1);
        nsp.Emit("n", 2);
        await using var back = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (_, recovered) = await back.ConnectAsync(Nsp, new JsonObject { ["pid"] = pid });
        Assert.Equal(sid, (string?)recovered["sid"]);
        Assert.Equal(1, (int)(await back.NextEventAsync(Nsp))[1]!);
        Assert.Equal(2, (int)(await back.NextEventAsync(Nsp))[1]!);
        Assert.Equal(1, server.Io.Recovery.Recovered);

        // one packet after its join was evicted: a fresh session
        var (sidLate, pidLate, _) = await ConnectReceiveAndDropAsync(server, emit: false);
        nsp.Emit("n", 3);
        nsp.Emit("n", 4);
        nsp.Emit("n", 5);
        await using var late = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (_, fresh) = await late.ConnectAsync(Nsp, new JsonObject { ["pid"] = pidLate });
        Assert.NotEqual(sidLate, (string?)fresh["sid"]);
        Assert.NotEqual(pidLate, (string?)fresh["pid"]);
        Assert.Equal(1, server.Io.Recovery.TooLate);
        nsp.Emit("n", 6);
        Assert.Equal(6, (int)(await late.NextEventAsync(Nsp))[1]!);
    }

    [Fact]
    public async Task The_connect_answer_comes_before_any_broadcast_while_broadcasts_flow()
    {
        // CONNECT is written before the socket is marked connected: a concurrent broadcast cannot overtake it.
        // The flood fills a joining client's queue within milliseconds: packets past the bound are dropped
        // (DropNewest), not the connection, so what the client reads first is what was queued first.
        await using var server = await TestServer.StartAsync(o =>
        {
            o.ConnectionStateRecovery = new ConnectionStateRecoveryOptions();
            o.Engine.OverflowPolicy = EngineIO.OverflowPolicy.DropNewest;
        });
        var nsp = server.Io.Of(Nsp);
        using var stop = new CancellationTokenSource();
        var flood = Task.Run(() =>
        {
            for (var n = 0; n < 2_000_000 && !stop.IsCancellationRequested; n++)
            {
                nsp.Emit("n", n);
            }
        });
        try
        {
            for (var i = 0; i < 20; i++)
            {
                await using var client = await WsSocketIOClient.OpenAsync(server.BaseUri);
                await client.SendAsync("0" + Nsp + ",{}");
                var first = await client.NextAsync();
                Assert.StartsWith("0" + Nsp + ",", first);
            }
        }
        finally
        {
            await stop.CancelAsync();
            await flood;
        }
    }

    [Fact]
    public async Task Recovery_is_off_by_default_no_pid_no_offset()
    {
        await using var server = await TestServer.StartAsync();
        server.Io.Of(Nsp);
        await using var client = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (_, connect) = await client.ConnectAsync(Nsp);
        Assert.Null(connect["pid"]);
        server.Io.Of(Nsp).Emit("n", 1);
        Assert.Equal("[\"n\",1]", (await client.NextEventAsync(Nsp)).ToJsonString());
    }

    [Fact]
    public async Task An_unknown_pid_gets_a_fresh_session()
    {
        await using var server = await StartAsync();
        await using var client = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (ok, connect) = await client.ConnectAsync(Nsp, new JsonObject { ["pid"] = "nobody", ["offset"] = "1" });
        Assert.True(ok);
        Assert.NotEqual("nobody", (string?)connect["pid"]);
        var socket = server.Io.Of(Nsp).SocketsById[(string)connect["sid"]!];
        Assert.False(socket.Recovered);
        Assert.Equal(1, server.Io.Recovery.UnknownSession);
        Assert.Equal(0, server.Io.Recovery.Recovered);
    }

    [Fact]
    public async Task Past_the_disconnection_window_the_session_is_gone()
    {
        await using var server = await StartAsync(o => o.MaxDisconnectionDuration = TimeSpan.FromMilliseconds(800));
        var (sid, pid, offset) = await ConnectReceiveAndDropAsync(server);
        await Task.Delay(1200);
        server.Io.Of(Nsp).Emit("n", 2);

        await using var again = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (_, connect) = await again.ConnectAsync(Nsp, new JsonObject { ["pid"] = pid, ["offset"] = offset });
        Assert.NotEqual(sid, (string?)connect["sid"]);
        Assert.NotEqual(pid, (string?)connect["pid"]);
        Assert.Equal(1, server.Io.Recovery.TooLate + server.Io.Recovery.UnknownSession); // expired: swept or found too late
        Assert.Equal(0, server.Io.Recovery.Recovered);
        Assert.Equal(0, server.Io.Recovery.Sessions);
    }

    [Fact]
    public async Task The_count_bound_evicts_the_oldest_packets()
    {
        await using var server = await StartAsync(o => o.MaxPacketsPerNamespace = 5);
        var nsp = server.Io.Of(Nsp);
        await using var watcher = await WsSocketIOClient.OpenAsync(server.BaseUri);
        await watcher.ConnectAsync(Nsp);
        var (sidOld, pidOld, offsetOld) = await ConnectReceiveAndDropAsync(server);
        var offsets = new List<string>();
        for (var n = 0; n < 10; n++)
        {
            nsp.Emit("n", n);
        }

        for (var n = 0; n < 10; n++)
        {
            offsets.Add((string)(await watcher.NextEventAsync(Nsp))[2]!);
        }

        Assert.Equal(5, server.Io.Recovery.Packets);

        // its offset is older than the oldest kept packet: a fresh session
        await using var late = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (_, fresh) = await late.ConnectAsync(Nsp, new JsonObject { ["pid"] = pidOld, ["offset"] = offsetOld });
        Assert.NotEqual(sidOld, (string?)fresh["sid"]);
        Assert.Equal(1, server.Io.Recovery.TooLate);

        // a session whose offset is the newest evicted one lost nothing: it gets the five kept packets
        var (sid, pid, _) = await ConnectReceiveAndDropAsync(server, emit: false);
        await using var back = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (_, recovered) = await back.ConnectAsync(Nsp, new JsonObject { ["pid"] = pid, ["offset"] = offsets[4] });
        Assert.Equal(sid, (string?)recovered["sid"]);
        for (var n = 5; n < 10; n++)
        {
            Assert.Equal(n, (int)(await back.NextEventAsync(Nsp))[1]!);
        }

        Assert.Equal(1, server.Io.Recovery.Recovered);
    }

    [Fact]
    public async Task The_byte_bound_evicts_the_oldest_packets()
    {
        await using var server = await StartAsync(o => o.MaxBytesPerNamespace = 10_000);
        var nsp = server.Io.Of(Nsp);
        for (var n = 0; n < 50; n++)
        {
            nsp.Emit("n", n, new string('x', 1000));
        }

        Assert.InRange(server.Io.Recovery.Bytes, 9 * 1000, 10_000);
        Assert.Equal(9, server.Io.Recovery.Packets);
    }

    [Fact]
    public async Task The_total_byte_bound_holds_over_all_namespaces()
    {
        await using var server = await StartAsync(o => o.MaxBytesTotal = 20_000);
        var payload = new string('x', 1000);
        for (var n = 0; n < 30; n++)
        {
            server.Io.Of("/t1").Emit("n", n, payload);
            server.Io.Of("/t2").Emit("n", n, payload);
        }

        Assert.InRange(server.Io.Recovery.Bytes, 15_000, 20_000);
        server.Io.Of("/t1").Emit("n", 50, payload); // /t1 makes room by displacing its own oldest: still kept
        Assert.InRange(server.Io.Recovery.Bytes, 15_000, 20_000);

        // /t1 and /t2 fill the whole store: a new /t3 packet, with nothing of /t3 to displace, is delivered but not
        // kept, and a /t3 client that dropped before such a packet gets a fresh session, never a silent gap
        await using var client = await WsSocketIOClient.OpenAsync(server.BaseUri);
        server.Io.Of("/t3");
        var (ok, connect) = await client.ConnectAsync("/t3");
        Assert.True(ok);

        server.Io.Of("/t3").Emit("n", 100, payload);
        var offset = (string)(await client.NextEventAsync("/t3"))[3]!;
        client.Drop();
        await WaitUntilAsync(() => server.Io.Recovery.Sessions == 1);
        server.Io.Of("/t3").Emit("n", 101, payload);
        Assert.True(server.Io.Recovery.Bytes <= 20_000);

        await using var back = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (_, again) = await back.ConnectAsync("/t3", new JsonObject { ["pid"] = (string)connect["pid"]!, ["offset"] = offset });
        Assert.NotEqual((string?)connect["sid"], (string?)again["sid"]);
        Assert.Equal(1, server.Io.Recovery.TooLate);
    }

    [Fact]
    public async Task A_middleware_refusal_restores_nothing_unless_middlewares_are_skipped()
    {
        await using var server = await StartAsync();
        var (_, pid, offset) = await ConnectReceiveAndDropAsync(server);
        await using var refused = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (ok, error) = await refused.ConnectAsync(Nsp, new JsonObject { ["pid"] = pid, ["offset"] = offset, ["deny"] = true });
        Assert.False(ok);
        Assert.Equal("denied", (string?)error["message"]);
        Assert.Equal(1, server.Io.Recovery.Refused);
        Assert.Equal(0, server.Io.Recovery.Sessions);
        Assert.Equal(0, server.Io.Of(Nsp).SocketCount);

        await using var skipping = await StartAsync(o => o.SkipMiddlewares = true);
        var (sid2, pid2, offset2) = await ConnectReceiveAndDropAsync(skipping);
        await using var admitted = await WsSocketIOClient.OpenAsync(skipping.BaseUri);
        var (ok2, connect) = await admitted.ConnectAsync(Nsp, new JsonObject { ["pid"] = pid2, ["offset"] = offset2, ["deny"] = true });
        Assert.True(ok2);
        Assert.Equal(sid2, (string?)connect["sid"]);
        Assert.Equal(1, skipping.Io.Recovery.Recovered);
    }

    [Fact]
    public async Task A_server_disconnect_keeps_no_session()
    {
        await using var server = await StartAsync();
        await using var client = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (_, connect) = await client.ConnectAsync(Nsp);
        var sid = (string)connect["sid"]!;
        server.Io.Of(Nsp).Emit("n", 1);
        await client.NextEventAsync(Nsp);
        server.Io.Of(Nsp).SocketsById[sid].Disconnect();
        Assert.Equal("1" + Nsp + ",", await client.NextAsync());
        await WaitUntilAsync(() => server.Io.Of(Nsp).SocketCount == 0);
        Assert.Equal(0, server.Io.Recovery.Sessions);

        // and the connection closing afterwards does not persist it either
        client.Drop();
        await WaitUntilAsync(() => server.Io.Engine.SessionCount == 0);
        Assert.Equal(0, server.Io.Recovery.Sessions);
    }

    [Fact]
    public async Task A_client_namespace_disconnect_keeps_no_session()
    {
        await using var server = await StartAsync();
        await using var client = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (_, connect) = await client.ConnectAsync(Nsp);
        var (sid, pid) = ((string)connect["sid"]!, (string)connect["pid"]!);
        server.Io.Of(Nsp).Emit("n", 1);
        var offset = (string)(await client.NextEventAsync(Nsp))[2]!;
        await client.SendAsync("1" + Nsp + ",");
        await WaitUntilAsync(() => server.Io.Of(Nsp).SocketCount == 0);
        Assert.Equal(0, server.Io.Recovery.Sessions);
        client.Drop();

        await using var again = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (_, fresh) = await again.ConnectAsync(Nsp, new JsonObject { ["pid"] = pid, ["offset"] = offset });
        Assert.NotEqual(sid, (string?)fresh["sid"]);
        Assert.Equal(1, server.Io.Recovery.UnknownSession);
    }

    [Fact]
    public async Task A_dynamic_child_emptied_by_a_drop_stays_while_the_session_is_kept_then_goes()
    {
        await using var server = await StartAsync(o => o.MaxDisconnectionDuration = TimeSpan.FromSeconds(3));
        var parent = server.Io.Of(name => name.StartsWith("/rdyn-", StringComparison.Ordinal));
        const string name = "/rdyn-a";
        await using var a = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (_, connectA) = await a.ConnectAsync(name);
        var (sid, pid) = ((string)connectA["sid"]!, (string)connectA["pid"]!);
        parent.Emit("n", 1);
        var offset = (string)(await a.NextEventAsync(name))[2]!;

        // its only client dropped: the child stays (empty) while the session is kept, and a broadcast through
        // the parent still reaches it and is kept for the session
        a.Drop();
        await WaitUntilAsync(() => server.Io.Recovery.Sessions == 1);
        Assert.True(server.Io.TryGetNamespace(name, out var emptied));
        Assert.Equal(0, emptied.SocketCount);
        Assert.True(emptied.HasSocketsOrSessions);
        parent.Emit("n", 2);

        await using var back = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (ok, connect) = await back.ConnectAsync(name, new JsonObject { ["pid"] = pid, ["offset"] = offset });
        Assert.True(ok);
        Assert.Equal(sid, (string?)connect["sid"]);
        Assert.Equal(2, (int)(await back.NextEventAsync(name))[1]!);
        Assert.True(server.Io.Of(name).SocketsById[sid].Recovered);

        // dropped again and never back: once the session expired, the sweep lets the empty child go
        back.Drop();
        await WaitUntilAsync(() => server.Io.Recovery.Sessions == 1);
        Assert.True(server.Io.TryGetNamespace(name, out _));
        await WaitUntilAsync(() => !server.Io.TryGetNamespace(name, out _));
        Assert.Equal(0, server.Io.Recovery.Sessions);
    }

    [Fact]
    public async Task The_store_is_kept_by_namespace_name_across_namespace_objects()
    {
        // the kept packets belong to the name, not to the Namespace object: a child made again after it was
        // dropped (no session kept then) continues the same log, and offsets keep increasing
        await using var server = await StartAsync();
        var parent = server.Io.Of(name => name.StartsWith("/rdyn-", StringComparison.Ordinal));
        const string name = "/rdyn-b";
        await using (var first = await WsSocketIOClient.OpenAsync(server.BaseUri))
        {
            await first.ConnectAsync(name);
            parent.Emit("n", 1);
            await first.NextEventAsync(name);
            await first.SendAsync("1" + name + ","); // deliberate leave: no session
            await WaitUntilAsync(() => !server.Io.TryGetNamespace(name, out _));
        }

        Assert.Equal(1, server.Io.Recovery.Packets);
        await using var second = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (_, connect) = await second.ConnectAsync(name);
        parent.Emit("n", 2);
        var offset = (string)(await second.NextEventAsync(name))[2]!;
        Assert.Equal(2, server.Io.Recovery.Packets);

        second.Drop();
        await WaitUntilAsync(() => server.Io.Recovery.Sessions == 1);
        parent.Emit("n", 3);
        await using var back = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (_, again) = await back.ConnectAsync(name, new JsonObject { ["pid"] = (string)connect["pid"]!, ["offset"] = offset });
        Assert.Equal((string?)connect["sid"], (string?)again["sid"]);
        Assert.Equal(3, (int)(await back.NextEventAsync(name))[1]!);
    }

    [Fact]
    public async Task Outcomes_are_raised_as_events()
    {
        await using var server = await StartAsync();
        var seen = new List<(string, RecoveryOutcome)>();
        server.Io.RecoveryAttempted += (nsp, outcome) =>
        {
            lock (seen)
            {
                seen.Add((nsp, outcome));
            }
        };
        var (_, pid, offset) = await ConnectReceiveAndDropAsync(server);
        await using var back = await WsSocketIOClient.OpenAsync(server.BaseUri);
        await back.ConnectAsync(Nsp, new JsonObject { ["pid"] = pid, ["offset"] = offset });
        await using var stranger = await WsSocketIOClient.OpenAsync(server.BaseUri);
        await stranger.ConnectAsync(Nsp, new JsonObject { ["pid"] = "x", ["offset"] = "1" });
        lock (seen)
        {
            Assert.Equal([(Nsp, RecoveryOutcome.Recovered), (Nsp, RecoveryOutcome.UnknownSession)], seen);
        }
    }

    internal static async Task<TestServer> StartAsync(Action<ConnectionStateRecoveryOptions>? configure = null)
    {
        var server = await TestServer.StartAsync(o =>
        {
            o.ConnectionStateRecovery = new ConnectionStateRecoveryOptions();
            configure?.Invoke(o.ConnectionStateRecovery);
        });
        server.Io.Of(Nsp).Use(socket => ValueTask.FromResult(
            socket.Handshake.Auth["deny"] is not null ? new ConnectError("denied") : null));
        return server;
    }

    /// <summary>A client joins <see cref="Nsp"/>, gets one broadcast (unless not <paramref name="emit"/>), and drops.</summary>
    private static async Task<(string Sid, string Pid, string? Offset)> ConnectReceiveAndDropAsync(TestServer server, bool emit = true)
    {
        var client = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (_, connect) = await client.ConnectAsync(Nsp);
        var (sid, pid) = ((string)connect["sid"]!, (string)connect["pid"]!);
        string? offset = null;
        if (emit)
        {
            server.Io.Of(Nsp).To(sid).Emit("n", 0);
            offset = (string)(await client.NextEventAsync(Nsp))[2]!;
        }

        var sessions = server.Io.Recovery.Sessions;
        client.Drop();
        await client.DisposeAsync();
        await WaitUntilAsync(() => server.Io.Recovery.Sessions == sessions + 1);
        return (sid, pid, offset);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met within 10 s");
            await Task.Delay(20);
        }
    }
}

/// <summary>
/// What kept packets cost on the managed heap: measured with GC.GetTotalMemory, which is process-wide, so in the
/// non-parallel collection (no other test allocates meanwhile).
/// </summary>
[Collection(AttackCollection.Name)]
public sealed class RecoveryMemoryTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public async Task Ten_thousand_kept_one_kilobyte_packets_cost_about_their_bytes()
    {
        await using var server = await RecoveryTests.StartAsync();
        var nsp = server.Io.Of(RecoveryTests.Nsp);
        var payload = new string('x', 1000);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var before = GC.GetTotalMemory(forceFullCollection: true);
        for (var n = 0; n < 10_000; n++)
        {
            nsp.Emit("n", n, payload);
        }

        GC.Collect();
        GC.WaitForPendingFinalizers();
        var growth = GC.GetTotalMemory(forceFullCollection: true) - before;
        var bytes = server.Io.Recovery.Bytes;
        output.WriteLine($"10,000 kept packets: {bytes} packet bytes, managed heap +{growth} bytes ({growth / 10_000.0:F0} per packet)");
        Assert.Equal(10_000, server.Io.Recovery.Packets);
        Assert.InRange(bytes, 10_000L * 1000, 10_000L * 1100);
        // the packet bytes plus a small per-packet overhead (a loose upper bound)
        Assert.True(growth < 3 * bytes, $"heap grew {growth} bytes for {bytes} kept bytes");
    }
}

/// <summary>
/// The store's cost per broadcast does not grow with the sessions it keeps: expired sessions are looked for only
/// once one is due, yet leave on the next broadcast after that without waiting for the sweeper.
/// </summary>
public sealed class RecoveryStoreSessionTests
{
    private static readonly EncodedPacket Packet = SocketPacketEncoder.Event("/s", "e", [1]);

    private static PersistedSession Session(int n) => new($"sid{n}", $"pid{n}", new HashSet<string>(), null);

    [Fact]
    public void Broadcasts_do_not_look_through_sessions_that_are_not_due()
    {
        using var store = new RecoveryStore(new ConnectionStateRecoveryOptions { MaxDisconnectionDuration = TimeSpan.FromMinutes(2) }, _ => { });
        for (var n = 0; n < 5_000; n++)
        {
            store.Persist("/s", Session(n));
        }

        for (var n = 0; n < 2_000; n++)
        {
            store.Broadcast("/s", Packet, BroadcastOptions.All, static (_, _) => { });
        }

        Assert.Equal(5_000, store.SessionCount);
        Assert.Equal(0, store.SessionScans); // it was one look through 5,000 sessions per broadcast
    }

    [Fact]
    public async Task A_due_session_leaves_on_the_next_broadcast_and_the_rest_are_not_looked_at_again_at_once()
    {
        // the window is 100 ms; the sweeper's first tick is 500 ms away
        using var store = new RecoveryStore(new ConnectionStateRecoveryOptions { MaxDisconnectionDuration = TimeSpan.FromMilliseconds(100) }, _ => { });
        store.Persist("/s", Session(1));
        await Task.Delay(150);
        store.Persist("/s", Session(2));
        store.Broadcast("/s", Packet, BroadcastOptions.All, static (_, _) => { });

        Assert.Equal(1, store.SessionCount); // the first one, due, left (on this broadcast, unless a slow machine let the sweeper come first)
        for (var n = 0; n < 100; n++)
        {
            store.Broadcast("/s", Packet, BroadcastOptions.All, static (_, _) => { });
        }

        Assert.InRange(store.SessionScans, 0, 1); // the second one is not due: not looked for on every broadcast
    }
}

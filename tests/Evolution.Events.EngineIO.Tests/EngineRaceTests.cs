using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Net.WebSockets;
using Evolution.Events.EngineIO.Protocol;

namespace Evolution.Events.EngineIO.Tests;

/// <summary>Regressions for races between a well-behaved client and the server's own bookkeeping.</summary>
public class EngineRaceTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15); // a wait on a condition: generous for a loaded machine

    [Fact]
    public async Task Back_to_back_polls_and_posts_are_never_taken_for_overlapping_requests()
    {
        // a client sends its next GET (or POST) as soon as the previous response is complete; the
        // server must not still count the previous request as active at that moment
        await using var host = await EngineHost.StartAsync();
        host.Echo = false;
        var (sid, _) = await host.HandshakeAsync();
        Assert.True(host.Server.TryGetSession(sid, out var session));
        var payload = new string('p', 64 * 1024);
        using var second = new HttpClient { BaseAddress = host.BaseUri };
        var posts = Task.Run(async () =>
        {
            for (var i = 0; i < 300; i++)
            {
                using var post = await second.PostAsync(EngineHost.Path + "?EIO=4&transport=polling&sid=" + sid, new StringContent("4" + i));
                Assert.Equal(HttpStatusCode.OK, post.StatusCode);
            }
        });
        for (var i = 0; i < 300; i++)
        {
            Assert.True(session.Send(OutboundPacket.Message(payload)));
            using var poll = await host.PollAsync(sid);
            Assert.Equal(HttpStatusCode.OK, poll.StatusCode);
            Assert.Equal(payload.Length + 1, (await poll.Content.ReadAsStringAsync()).Length);
        }

        await posts;
        var closed = host.Listeners[sid].Closed;
        Assert.False(closed.IsCompleted, closed.IsCompleted ? "closed: " + (await closed).Description : "");
        Assert.Equal(300, host.Listeners[sid].Messages.Count);
    }

    [Fact]
    public async Task A_server_close_during_an_upgrade_is_flushed_on_the_new_websocket()
    {
        // the client has probed and paused polling when the server closes the session; its upgrade
        // packet must still hand the queue (the last messages, then the close) to the WebSocket
        await using var host = await EngineHost.StartAsync();
        var (sid, _) = await host.HandshakeAsync();
        Assert.True(host.Server.TryGetSession(sid, out var session));
        var waitingPoll = host.PollAsync(sid);
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(host.WebSocketUri("EIO=4&transport=websocket&sid=" + sid), CancellationToken.None);
        await EngineWebSocketTests.SendTextAsync(ws, "2probe");
        Assert.Equal("3probe", (await EngineWebSocketTests.ReceiveAsync(ws)).Text);
        using (var released = await waitingPoll.WaitAsync(Wait))
        {
            Assert.Equal("6", await released.Content.ReadAsStringAsync());
        }

        Assert.True(session.Send(OutboundPacket.Message("last words")));
        session.Close();
        await EngineWebSocketTests.SendTextAsync(ws, "5");

        Assert.Equal("4last words", (await EngineWebSocketTests.ReceiveAsync(ws)).Text);
        Assert.Equal(WebSocketMessageType.Close, (await EngineWebSocketTests.ReceiveAsync(ws)).Type);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, ws.CloseStatus);
        Assert.Equal(EngineCloseReason.ForcedClose, (await host.Listeners[sid].Closed.WaitAsync(Wait)).Reason);
        Assert.False(host.Server.TryGetSession(sid, out _));
    }

    [Fact]
    public async Task A_poll_sent_together_with_a_close_packet_gets_a_noop_whichever_is_served_first()
    {
        // the official suites' "forcefully closes the session": GET and POST "1" at the same moment, on
        // two connections; served in parallel, the close often wins, and the GET must still get "6"
        await using var host = await EngineHost.StartAsync();
        using var polls = new HttpClient { BaseAddress = host.BaseUri, Timeout = TimeSpan.FromSeconds(10) };
        using var posts = new HttpClient { BaseAddress = host.BaseUri, Timeout = TimeSpan.FromSeconds(10) };
        for (var i = 0; i < 200; i++)
        {
            var (sid, _) = await host.HandshakeAsync();
            var query = EngineHost.Path + "?EIO=4&transport=polling&sid=" + sid;
            var poll = polls.GetAsync(query);
            var close = posts.PostAsync(query, new StringContent("1"));
            await Task.WhenAll(poll, close);
            using (var pollResponse = await poll)
            using (var closeResponse = await close)
            {
                Assert.Equal(HttpStatusCode.OK, closeResponse.StatusCode);
                Assert.True(pollResponse.StatusCode == HttpStatusCode.OK, $"iteration {i}: poll got {(int)pollResponse.StatusCode}");
                Assert.Equal("6", await pollResponse.Content.ReadAsStringAsync());
            }

            using var after = await polls.GetAsync(query);
            Assert.True(after.StatusCode == HttpStatusCode.BadRequest, $"iteration {i}: the poll after got {(int)after.StatusCode}");
        }

        Assert.Equal(0, host.Server.ClosedPollCount);
    }

    [Fact]
    public async Task A_poll_served_after_a_close_packet_gets_one_noop_then_400()
    {
        // the order the race above loses in, made deterministic: the close is served before the poll
        await using var host = await EngineHost.StartAsync();
        var (sid, _) = await host.HandshakeAsync();
        using (var close = await host.PostAsync(sid, "1"))
        {
            Assert.Equal(HttpStatusCode.OK, close.StatusCode);
        }

        Assert.Equal(EngineCloseReason.TransportClose, (await host.Listeners[sid].Closed.WaitAsync(Wait)).Reason);
        Assert.False(host.Server.TryGetSession(sid, out _));
        using (var post = await host.PostAsync(sid, "4late"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, post.StatusCode); // only a poll is answered
        }

        using (var poll = await host.PollAsync(sid))
        {
            Assert.Equal(HttpStatusCode.OK, poll.StatusCode);
            Assert.Equal("6", await poll.Content.ReadAsStringAsync());
        }

        using (var again = await host.PollAsync(sid))
        {
            Assert.Equal(HttpStatusCode.BadRequest, again.StatusCode);
            Assert.Contains("\"code\":1", await again.Content.ReadAsStringAsync());
        }

        Assert.Equal(0, host.Server.ClosedPollCount);
    }

    [Fact]
    public async Task A_waiting_poll_answered_by_the_close_leaves_nothing_for_a_later_poll()
    {
        await using var host = await EngineHost.StartAsync();
        var (sid, _) = await host.HandshakeAsync();
        var poll = host.PollAsync(sid);
        await WaitUntilAsync(() => IsPollWaiting(host, sid));
        using (var close = await host.PostAsync(sid, "1"))
        {
            Assert.Equal(HttpStatusCode.OK, close.StatusCode);
        }

        using (var answered = await poll.WaitAsync(Wait))
        {
            Assert.Equal("6", await answered.Content.ReadAsStringAsync());
        }

        using var later = await host.PollAsync(sid);
        Assert.Equal(HttpStatusCode.BadRequest, later.StatusCode);
        Assert.Equal(0, host.Server.ClosedPollCount);
    }

    [Fact]
    public async Task A_poll_after_the_grace_gets_400()
    {
        await using var host = await EngineHost.StartAsync(o => o.ClosedPollGraceMs = 200);
        var (sid, _) = await host.HandshakeAsync();
        using (var close = await host.PostAsync(sid, "1"))
        {
            Assert.Equal(HttpStatusCode.OK, close.StatusCode);
        }

        await Task.Delay(500); // the grace is what is tested: any time past it must give 400
        using var poll = await host.PollAsync(sid);
        Assert.Equal(HttpStatusCode.BadRequest, poll.StatusCode);
    }

    [Fact]
    public async Task Only_a_close_packet_over_polling_leaves_an_answer_for_a_crossing_poll()
    {
        await using var host = await EngineHost.StartAsync();

        // a parse error closes the session too, but a poll after it must get 400 (the suites check it)
        var (bad, _) = await host.HandshakeAsync();
        using (var post = await host.PostAsync(bad, "abc"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, post.StatusCode);
        }

        using (var poll = await host.PollAsync(bad))
        {
            Assert.Equal(HttpStatusCode.BadRequest, poll.StatusCode);
        }

        // a server close
        var (closed, _) = await host.HandshakeAsync();
        Assert.True(host.Server.TryGetSession(closed, out var session));
        session.Abort(EngineCloseReason.ForcedClose, null);
        using (var poll = await host.PollAsync(closed))
        {
            Assert.Equal(HttpStatusCode.BadRequest, poll.StatusCode);
        }

        // a close packet over an upgraded session's WebSocket
        var (upgraded, _) = await host.HandshakeAsync();
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(host.WebSocketUri("EIO=4&transport=websocket&sid=" + upgraded), CancellationToken.None);
        await EngineWebSocketTests.SendTextAsync(ws, "2probe");
        Assert.Equal("3probe", (await EngineWebSocketTests.ReceiveAsync(ws)).Text);
        await EngineWebSocketTests.SendTextAsync(ws, "5");
        await WaitUntilAsync(() => host.Server.TryGetSession(upgraded, out var s) && s.Transport == "websocket");
        await EngineWebSocketTests.SendTextAsync(ws, "1");
        await host.Listeners[upgraded].Closed.WaitAsync(Wait);
        using (var poll = await host.PollAsync(upgraded))
        {
            Assert.Equal(HttpStatusCode.BadRequest, poll.StatusCode);
        }

        Assert.Equal(0, host.Server.ClosedPollCount);
    }

    [Fact]
    public async Task Closed_polling_sessions_are_remembered_up_to_a_bound()
    {
        await using var host = await EngineHost.StartAsync(o =>
        {
            o.ClosedPollCapacity = 8;
            o.ClosedPollGraceMs = 60_000; // none expires while the test runs, however slow the machine
        });
        var sids = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            var (sid, _) = await host.HandshakeAsync();
            using var close = await host.PostAsync(sid, "1");
            Assert.Equal(HttpStatusCode.OK, close.StatusCode);
            sids.Add(sid);
        }

        Assert.Equal(8, host.Server.ClosedPollCount);
        var answered = 0;
        foreach (var sid in sids)
        {
            using var poll = await host.PollAsync(sid);
            answered += poll.StatusCode == HttpStatusCode.OK ? 1 : 0;
        }

        Assert.Equal(8, answered);
        Assert.Equal(0, host.Server.ClosedPollCount);
    }

    [Fact]
    public async Task Expired_entries_are_swept_and_never_answer()
    {
        var set = new ClosedPollTombstones(capacity: 4, graceMs: 1000);
        foreach (var sid in new[] { "a", "b", "c", "d" })
        {
            set.Add(sid);
        }

        set.Add("e"); // full of live entries: dropped
        Assert.Equal(4, set.Count);
        Assert.True(set.TryTake("a"));
        Assert.False(set.TryTake("a"));
        Assert.False(set.TryTake("e"));

        await Task.Delay(1300); // past the grace
        Assert.False(set.TryTake("b")); // expired: taken out but not answered
        set.Add("f"); // the first add past the grace sweeps the rest
        Assert.Equal(1, set.Count);
        Assert.True(set.TryTake("f"));
    }

    [Fact]
    public async Task Of_two_websockets_connecting_together_for_one_session_only_one_may_probe()
    {
        // both connect before either probes: the second is refused whichever of them is served first,
        // as it would be if it had come after the first one's probe
        await using var host = await EngineHost.StartAsync();
        var (sid, _) = await host.HandshakeAsync();
        using var first = new ClientWebSocket();
        using var second = new ClientWebSocket();
        await first.ConnectAsync(host.WebSocketUri("EIO=4&transport=websocket&sid=" + sid), CancellationToken.None);
        await second.ConnectAsync(host.WebSocketUri("EIO=4&transport=websocket&sid=" + sid), CancellationToken.None);
        Assert.Equal(WebSocketMessageType.Close, (await EngineWebSocketTests.ReceiveAsync(second).WaitAsync(Wait)).Type);

        await EngineWebSocketTests.SendTextAsync(first, "2probe");
        Assert.Equal("3probe", (await EngineWebSocketTests.ReceiveAsync(first)).Text);
        await EngineWebSocketTests.SendTextAsync(first, "5");
        await EngineWebSocketTests.SendTextAsync(first, "4hello");
        Assert.Equal("4hello", (await EngineWebSocketTests.ReceiveAsync(first).WaitAsync(Wait)).Text);
    }

    [Fact]
    public async Task A_websocket_whose_probe_failed_frees_the_upgrade_for_the_next_one()
    {
        await using var host = await EngineHost.StartAsync();
        var (sid, _) = await host.HandshakeAsync();
        using (var failed = new ClientWebSocket())
        {
            await failed.ConnectAsync(host.WebSocketUri("EIO=4&transport=websocket&sid=" + sid), CancellationToken.None);
            await EngineWebSocketTests.SendTextAsync(failed, "4not a probe");
            Assert.Equal(WebSocketMessageType.Close, (await EngineWebSocketTests.ReceiveAsync(failed).WaitAsync(Wait)).Type);
        }

        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(host.WebSocketUri("EIO=4&transport=websocket&sid=" + sid), CancellationToken.None);
        await EngineWebSocketTests.SendTextAsync(ws, "2probe");
        Assert.Equal("3probe", (await EngineWebSocketTests.ReceiveAsync(ws).WaitAsync(Wait)).Text);
    }

    [Fact]
    public async Task A_poll_sent_as_soon_as_the_close_packet_arrived_finds_the_session_gone()
    {
        // the poll that carries a server close ends the session before its answer is written: the
        // client's next request, sent the moment it has that answer, gets 400, never a second answer
        await using var host = await EngineHost.StartAsync();
        for (var i = 0; i < 100; i++)
        {
            var (sid, _) = await host.HandshakeAsync();
            Assert.True(host.Server.TryGetSession(sid, out var session));
            var poll = host.PollAsync(sid);
            await WaitUntilAsync(() => session.IsPollWaiting);
            session.Close();
            using (var last = await poll.WaitAsync(Wait))
            {
                Assert.Equal("1", await last.Content.ReadAsStringAsync());
            }

            Assert.False(host.Server.TryGetSession(sid, out _), $"iteration {i}: still registered after its close packet");
            using var after = await host.PollAsync(sid);
            Assert.Equal(HttpStatusCode.BadRequest, after.StatusCode);
        }
    }

    [Fact]
    public async Task A_cancelled_poll_served_after_the_next_poll_still_ends_the_session_first()
    {
        // the suites' "closes the session upon cancelled polling request": a poll, cancelled by its
        // client 5 ms later, then a new poll. Served in parallel, the new poll may be served first and
        // the cancelled one reach the session only after it; the outcome must be the same: the session
        // ends, and the new poll gets 400 (not the close packet of an "overlapping polls" error)
        await using var host = await EngineHost.StartAsync();
        for (var i = 0; i < 20; i++)
        {
            var (sid, _) = await host.HandshakeAsync();
            Assert.True(host.Server.TryGetSession(sid, out var session));
            var later = host.PollAsync(sid);
            await WaitUntilAsync(() => session.IsPollWaiting);
            using (var tcp = new TcpClient())
            {
                await tcp.ConnectAsync(host.BaseUri.Host, host.BaseUri.Port);
                var request = $"GET {EngineHost.Path}?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: {host.BaseUri.Authority}\r\n\r\n";
                await tcp.GetStream().WriteAsync(Encoding.ASCII.GetBytes(request));
            } // closed at once: the client gave up on it

            using var response = await later.WaitAsync(Wait);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest,
                $"iteration {i}: the later poll got {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            Assert.Equal(EngineCloseReason.TransportClose, (await host.Listeners[sid].Closed.WaitAsync(Wait)).Reason);
        }
    }

    [Fact]
    public async Task A_polling_client_has_the_whole_ping_timeout_from_the_poll_that_carried_the_ping()
    {
        // the ping waits in the queue until the client polls: its time to answer counts from that poll
        await using var host = await EngineHost.StartAsync(o =>
        {
            o.PingInterval = 100;
            o.PingTimeout = 8000;
        });
        var (sid, _) = await host.HandshakeAsync();
        Assert.True(host.Server.TryGetSession(sid, out var session));
        await WaitUntilAsync(() => session.QueuedPackets == 1); // the ping is queued
        // delays only ever run late: 2 s of slack before the timeout counted from the ping (a loaded machine)
        await Task.Delay(6000); // well within the timeout, counted from the ping
        using (var poll = await host.PollAsync(sid))
        {
            Assert.Equal(HttpStatusCode.OK, poll.StatusCode);
            Assert.Equal("2", await poll.Content.ReadAsStringAsync());
        }

        await Task.Delay(3000); // past the timeout counted from the ping (9 s > 8 s), well within it counted from the poll
        using (var pong = await host.PostAsync(sid, "3"))
        {
            Assert.Equal(HttpStatusCode.OK, pong.StatusCode);
        }

        Assert.False(host.Listeners[sid].Closed.IsCompleted, "closed before its pong was due");
        using (var next = await host.PollAsync(sid))
        {
            Assert.Equal("2", await next.Content.ReadAsStringAsync()); // the next ping: the pong counted
        }
    }

    [Fact]
    public async Task Pings_keep_their_rhythm_whatever_the_pong_round_trip()
    {
        // the next ping is due pingInterval after the previous one was due, not after the pong: a slow
        // round trip (or a late timer) does not push every later ping back
        await using var host = await EngineHost.StartAsync(o =>
        {
            o.PingInterval = 5000;
            o.PingTimeout = 20000;
        });
        var (sid, _) = await host.HandshakeAsync();
        using (var first = await host.PollAsync(sid))
        {
            Assert.Equal("2", await first.Content.ReadAsStringAsync());
        }

        await Task.Delay(3000); // the pong comes late in the interval
        using (var pong = await host.PostAsync(sid, "3"))
        {
            Assert.Equal(HttpStatusCode.OK, pong.StatusCode);
        }

        var sincePong = System.Diagnostics.Stopwatch.StartNew();
        using (var second = await host.PollAsync(sid))
        {
            Assert.Equal("2", await second.Content.ReadAsStringAsync());
        }

        // due about 2000 ms after the pong (5000 after the first ping); counted from the pong it would be 5000 or
        // more: 4500 leaves 2.5 s for a late timer on a loaded machine
        Assert.True(sincePong.ElapsedMilliseconds < 4500, $"next ping {sincePong.ElapsedMilliseconds} ms after the pong");
    }

    [Fact]
    public async Task A_polling_client_that_stops_polling_times_out_on_schedule()
    {
        await using var host = await EngineHost.StartAsync(o =>
        {
            o.PingInterval = 300;
            o.PingTimeout = 200;
        });
        var (sid, _) = await host.HandshakeAsync();
        await Task.Delay(700); // past interval + timeout: whether or not the ping timer has run yet
        using var poll = await host.PollAsync(sid);
        Assert.Equal(HttpStatusCode.BadRequest, poll.StatusCode);
        Assert.Equal(EngineCloseReason.PingTimeout, (await host.Listeners[sid].Closed.WaitAsync(Wait)).Reason);
    }

    private static bool IsPollWaiting(EngineHost host, string sid) =>
        host.Server.TryGetSession(sid, out var session) && session.IsPollWaiting;

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in time");
            await Task.Delay(10);
        }
    }
}

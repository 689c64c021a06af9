using System.Net;
using Evolution.Events.EngineIO.Protocol;

namespace Evolution.Events.EngineIO.Tests;

/// <summary>Tests that need a host of their own (options differ); each starts and stops it.</summary>
public class EngineSessionTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15); // a wait on a condition: generous for a loaded machine

    [Fact]
    public async Task Cors_wildcard_without_credentials_answers_star()
    {
        await using var host = await EngineHost.StartAsync(o => o.CorsOrigins.Add("*"));
        using var request = new HttpRequestMessage(HttpMethod.Get, EngineHost.Path + "?EIO=4&transport=polling");
        request.Headers.Add("Origin", "https://anything.example");
        using var response = await host.Http.SendAsync(request);
        Assert.Equal("*", EngineHttpTests.Header(response, "Access-Control-Allow-Origin"));
        Assert.Null(EngineHttpTests.Header(response, "Access-Control-Allow-Credentials"));
    }

    [Fact]
    public async Task Cors_wildcard_with_credentials_echoes_the_origin()
    {
        await using var host = await EngineHost.StartAsync(o =>
        {
            o.CorsOrigins.Add("*");
            o.CorsCredentials = true;
        });
        using var request = new HttpRequestMessage(HttpMethod.Get, EngineHost.Path + "?EIO=4&transport=polling");
        request.Headers.Add("Origin", "https://anything.example");
        using var response = await host.Http.SendAsync(request);
        Assert.Equal("https://anything.example", EngineHttpTests.Header(response, "Access-Control-Allow-Origin"));
        Assert.Equal("true", EngineHttpTests.Header(response, "Access-Control-Allow-Credentials"));
    }

    [Fact]
    public async Task Without_cors_origins_no_cors_header_is_sent()
    {
        await using var host = await EngineHost.StartAsync();
        using var request = new HttpRequestMessage(HttpMethod.Get, EngineHost.Path + "?EIO=4&transport=polling");
        request.Headers.Add("Origin", "https://anything.example");
        using var response = await host.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Null(EngineHttpTests.Header(response, "Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task Disabled_transports_are_unknown_and_upgrades_are_not_offered()
    {
        await using var host = await EngineHost.StartAsync(o => o.AllowWebSocket = false);
        var (_, open) = await host.HandshakeAsync();
        Assert.Empty(open["upgrades"]!.AsArray());
        using var response = await host.Http.GetAsync(EngineHost.Path + "?EIO=4&transport=websocket");
        Assert.Equal("{\"code\":0,\"message\":\"Transport unknown\"}", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task The_server_pings_and_a_pong_keeps_the_session_alive()
    {
        // each round trip (the poll that carries the ping, then the pong) has 1.5 s on a loaded machine; the pings
        // are answered for twice interval + timeout, so a session whose pongs did not count would have timed out
        const int Interval = 150, Timeout = 1500;
        await using var host = await EngineHost.StartAsync(o =>
        {
            o.PingInterval = Interval;
            o.PingTimeout = Timeout;
        });
        var (sid, open) = await host.HandshakeAsync();
        Assert.Equal(Interval, open["pingInterval"]!.GetValue<int>());
        System.Diagnostics.Stopwatch? sinceFirstPing = null;
        var pings = 0;
        while (pings < 3 || sinceFirstPing!.ElapsedMilliseconds < 2 * (Interval + Timeout))
        {
            using var poll = await host.PollAsync(sid);
            Assert.Equal("2", await poll.Content.ReadAsStringAsync());
            sinceFirstPing ??= System.Diagnostics.Stopwatch.StartNew();
            pings++;
            using var pong = await host.PostAsync(sid, "3");
            Assert.Equal(HttpStatusCode.OK, pong.StatusCode);
        }

        Assert.False(host.Listeners[sid].Closed.IsCompleted);
        Assert.True(host.Server.TryGetSession(sid, out _));
    }

    [Fact]
    public async Task A_missing_pong_closes_the_session_with_ping_timeout()
    {
        // the ping's pong deadline counts from when the ping was due until a poll carries it: 1.5 s lets the
        // first poll come late on a loaded machine (with 100 ms, a poll more than 200 ms after the handshake finds it closed)
        await using var host = await EngineHost.StartAsync(o =>
        {
            o.PingInterval = 100;
            o.PingTimeout = 1500;
        });
        var (sid, _) = await host.HandshakeAsync();
        using (var poll = await host.PollAsync(sid))
        {
            Assert.Equal("2", await poll.Content.ReadAsStringAsync());
        }

        var closed = await host.Listeners[sid].Closed.WaitAsync(Wait);
        Assert.Equal(EngineCloseReason.PingTimeout, closed.Reason);
        using var late = await host.PollAsync(sid);
        Assert.Equal(HttpStatusCode.BadRequest, late.StatusCode);
    }

    [Fact]
    public async Task Overflow_Disconnect_closes_a_polling_session_that_never_polls()
    {
        await using var host = await EngineHost.StartAsync(o =>
        {
            o.MaxQueuedPackets = 4;
            o.OverflowPolicy = OverflowPolicy.Disconnect;
        });
        var (sid, _) = await host.HandshakeAsync();
        Assert.True(host.Server.TryGetSession(sid, out var session));
        var accepted = 0;
        var sendThread = Environment.CurrentManagedThreadId;
        for (var i = 0; i < 10; i++)
        {
            accepted += session.Send(OutboundPacket.Message("m" + i)) ? 1 : 0;
            Assert.True(session.QueuedPackets <= 4, $"queued {session.QueuedPackets}");
        }

        // the session stopped taking packets on the sending thread, at once
        Assert.NotEqual(EngineReadyState.Open, session.ReadyState);
        Assert.Equal(4, accepted);
        var closed = await host.Listeners[sid].Closed.WaitAsync(Wait);
        Assert.Equal(EngineCloseReason.SlowConsumer, closed.Reason);
        Assert.Equal("slow consumer", closed.Reason.ToWire());

        // the close cascade (the listener, hence the application's handlers) ran off the sending thread
        Assert.NotEqual(sendThread, host.Listeners[sid].CloseThread);
        var deadline = DateTime.UtcNow + Wait;
        while (host.Server.TryGetSession(sid, out _))
        {
            Assert.True(DateTime.UtcNow < deadline, "the closed session is still registered");
            await Task.Delay(10);
        }

        using var poll = await host.PollAsync(sid);
        Assert.Equal(HttpStatusCode.BadRequest, poll.StatusCode);
        Assert.Contains("\"code\":1", await poll.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Overflow_DropNewest_keeps_the_session_and_the_oldest_packets()
    {
        await using var host = await EngineHost.StartAsync(o =>
        {
            o.MaxQueuedPackets = 4;
            o.OverflowPolicy = OverflowPolicy.DropNewest;
        });
        var (sid, _) = await host.HandshakeAsync();
        Assert.True(host.Server.TryGetSession(sid, out var session));
        var accepted = Enumerable.Range(0, 10).Count(i => session.Send(OutboundPacket.Message("m" + i)));
        Assert.Equal(4, accepted);
        Assert.Equal(4, session.QueuedPackets);
        Assert.Equal(6, session.DroppedPackets);
        Assert.Equal(EngineReadyState.Open, session.ReadyState);
        Assert.False(host.Listeners[sid].Closed.IsCompleted);

        using (var poll = await host.PollAsync(sid))
        {
            Assert.Equal("4m0\u001e4m1\u001e4m2\u001e4m3", await poll.Content.ReadAsStringAsync());
        }

        // room again once drained
        Assert.Equal(0, session.QueuedPackets);
        Assert.True(session.Send(OutboundPacket.Message("again")));
        using var next = await host.PollAsync(sid);
        Assert.Equal("4again", await next.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Overflow_by_bytes_applies_the_policy_too()
    {
        await using var host = await EngineHost.StartAsync(o =>
        {
            o.MaxQueuedBytes = 1000;
            o.OverflowPolicy = OverflowPolicy.Disconnect;
        });
        var (sid, _) = await host.HandshakeAsync();
        Assert.True(host.Server.TryGetSession(sid, out var session));
        Assert.True(session.Send(OutboundPacket.Message(new string('x', 600))));
        Assert.False(session.Send(OutboundPacket.Message(new string('y', 600))));
        Assert.Equal(EngineCloseReason.SlowConsumer, (await host.Listeners[sid].Closed.WaitAsync(Wait)).Reason);
    }

    [Fact]
    public async Task A_volatile_send_that_would_overflow_is_dropped_and_never_closes_the_session()
    {
        await using var host = await EngineHost.StartAsync(o =>
        {
            o.MaxQueuedBytes = 1000;
            o.OverflowPolicy = OverflowPolicy.Disconnect;
        });
        var (sid, _) = await host.HandshakeAsync();
        Assert.True(host.Server.TryGetSession(sid, out var session));
        Assert.False(session.SendVolatile(OutboundPacket.Message(new string('v', 2000))));
        Assert.Equal(1, session.DroppedPackets);
        Assert.Equal(EngineReadyState.Open, session.ReadyState);
        Assert.True(session.SendVolatile(OutboundPacket.Message("small")));
        using var poll = await host.PollAsync(sid);
        Assert.Equal("4small", await poll.Content.ReadAsStringAsync());
        Assert.False(host.Listeners[sid].Closed.IsCompleted);
    }

    [Fact]
    public async Task Volatile_sends_are_dropped_while_something_is_queued()
    {
        await using var host = await EngineHost.StartAsync();
        var (sid, _) = await host.HandshakeAsync();
        Assert.True(host.Server.TryGetSession(sid, out var session));
        Assert.True(session.SendVolatile(OutboundPacket.Message("v1")));
        Assert.False(session.SendVolatile(OutboundPacket.Message("v2")));
        Assert.Equal(1, session.DroppedPackets);
        using var poll = await host.PollAsync(sid);
        Assert.Equal("4v1", await poll.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task CloseAll_ends_every_session_with_server_shutting_down()
    {
        await using var host = await EngineHost.StartAsync();
        var (a, _) = await host.HandshakeAsync();
        var (b, _) = await host.HandshakeAsync();
        host.Server.CloseAll();
        Assert.Equal(EngineCloseReason.ServerShuttingDown, (await host.Listeners[a].Closed.WaitAsync(Wait)).Reason);
        Assert.Equal(EngineCloseReason.ServerShuttingDown, (await host.Listeners[b].Closed.WaitAsync(Wait)).Reason);
        using var poll = await host.PollAsync(a);
        Assert.Equal("1", await poll.Content.ReadAsStringAsync());
    }
}

using System.Net;
using System.Net.WebSockets;
using Evolution.Events.EngineIO.Protocol;

namespace Evolution.Events.EngineIO.Tests;

/// <summary>Regressions for races between a well-behaved client and the server's own bookkeeping.</summary>
public class EngineRaceTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);

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
}

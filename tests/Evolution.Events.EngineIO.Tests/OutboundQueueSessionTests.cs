using System.Net.WebSockets;
using Evolution.Events.EngineIO.Protocol;

namespace Evolution.Events.EngineIO.Tests;

/// <summary>The session's outbound queue with real clients: corked fan-out, and an upgrade under concurrent sends.</summary>
public class OutboundQueueSessionTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30); // a wait on a condition: generous for a loaded machine

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached in time");
            await Task.Delay(10);
        }
    }

    /// <summary>A WebSocket client's session, opened directly on the WebSocket transport.</summary>
    private static async Task<(ClientWebSocket Ws, EngineSocket Session)> OpenWebSocketAsync(EngineHost host)
    {
        var ws = new ClientWebSocket();
        await ws.ConnectAsync(host.WebSocketUri("EIO=4&transport=websocket"), CancellationToken.None);
        var open = await EngineWebSocketTests.ReceiveAsync(ws);
        Assert.StartsWith("0{", open.Text);
        var sid = System.Text.Json.Nodes.JsonNode.Parse(open.Text![1..])!["sid"]!.GetValue<string>();
        Assert.True(host.Server.TryGetSession(sid, out var session));
        return (ws, session);
    }

    [Fact]
    public async Task Packets_sent_under_a_cork_wake_the_websocket_writer_once_and_leave_in_one_batch()
    {
        await using var host = await EngineHost.StartAsync();
        host.Echo = false;
        var (ws, session) = await OpenWebSocketAsync(host);
        using var _ = ws;
        await WaitUntilAsync(() => session.Queue.HasWaiter); // the writer is idle, waiting

        const int count = 50;
        var before = session.Queue.Wakeups;
        using (OutboundQueue.Cork())
        {
            for (var i = 0; i < count; i++)
            {
                Assert.True(session.Send(OutboundPacket.Message("m" + i)));
            }

            Assert.True(session.Queue.HasWaiter); // not woken while corked
            Assert.Equal(count, session.QueuedPackets);
        }

        for (var i = 0; i < count; i++)
        {
            Assert.Equal("4m" + i, (await EngineWebSocketTests.ReceiveAsync(ws)).Text);
        }

        Assert.Equal(before + 1, session.Queue.Wakeups); // one wake-up: one batch, one write
    }

    [Fact]
    public async Task A_big_corked_batch_is_written_by_the_corking_thread_before_the_cork_ends()
    {
        await using var host = await EngineHost.StartAsync();
        host.Echo = false;
        var (ws, session) = await OpenWebSocketAsync(host);
        using var _ = ws;
        var text = new string('x', OutboundQueue.InlineWakeBytes / 16);
        for (var round = 0; round < 3; round++)
        {
            await WaitUntilAsync(() => session.Queue.HasWaiter);
            await Task.Delay(20); // the writer's continuation is registered, not only its wait
            using (OutboundQueue.Cork())
            {
                for (var i = 0; i < 20; i++)
                {
                    Assert.True(session.Send(OutboundPacket.Message(text)));
                }
            }

            // the WebSocket writer ran on this thread at the cork's end (a thread-pool wake would still be on its way)
            Assert.Equal(0, session.QueuedPackets);
            for (var i = 0; i < 20; i++)
            {
                Assert.Equal("4" + text, (await EngineWebSocketTests.ReceiveAsync(ws)).Text);
            }
        }
    }

    [Fact]
    public async Task Uncorked_sends_wake_an_idle_writer_at_once()
    {
        await using var host = await EngineHost.StartAsync();
        host.Echo = false;
        var (ws, session) = await OpenWebSocketAsync(host);
        using var _ = ws;
        await WaitUntilAsync(() => session.Queue.HasWaiter);
        var before = session.Queue.Wakeups;
        Assert.True(session.Send(OutboundPacket.Message("alone")));
        Assert.Equal(before + 1, session.Queue.Wakeups); // a single packet waits for nothing
        Assert.Equal("4alone", (await EngineWebSocketTests.ReceiveAsync(ws)).Text);
    }

    [Fact]
    public async Task An_upgrade_under_concurrent_sends_loses_and_duplicates_nothing()
    {
        await using var host = await EngineHost.StartAsync();
        host.Echo = false;
        for (var round = 0; round < 4; round++)
        {
            const int count = 1_500;
            var (sid, _) = await host.HandshakeAsync();
            Assert.True(host.Server.TryGetSession(sid, out var session));
            var received = new List<string>();
            var pause = false;
            var probed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

            var producer = Task.Run(async () =>
            {
                for (var i = 0; i < count; i++)
                {
                    using (i % 10 < 5 ? OutboundQueue.Cork() : default)
                    {
                        Assert.True(session.Send(OutboundPacket.Message("m" + i)), $"send {i} refused");
                    }

                    if (i == count / 3)
                    {
                        await probed.Task; // the rest goes out while polling pauses and the upgrade completes
                    }
                    else if (i % 50 == 0)
                    {
                        await Task.Yield();
                    }
                }
            });

            var polling = Task.Run(async () =>
            {
                while (!Volatile.Read(ref pause))
                {
                    using var poll = await host.PollAsync(sid);
                    Assert.Equal(System.Net.HttpStatusCode.OK, poll.StatusCode);
                    foreach (var packet in (await poll.Content.ReadAsStringAsync()).Split('\x1e'))
                    {
                        if (packet.StartsWith('4'))
                        {
                            received.Add(packet[1..]);
                        }
                    }
                }
            });

            using var ws = new ClientWebSocket();
            await ws.ConnectAsync(host.WebSocketUri("EIO=4&transport=websocket&sid=" + sid), CancellationToken.None);
            await EngineWebSocketTests.SendTextAsync(ws, "2probe");
            Assert.Equal("3probe", (await EngineWebSocketTests.ReceiveAsync(ws)).Text);
            Volatile.Write(ref pause, true); // as a client: no new poll once probed; the one in flight ends
            probed.SetResult();
            await polling.WaitAsync(Wait);
            await EngineWebSocketTests.SendTextAsync(ws, "5");
            while (received.Count < count)
            {
                var message = await EngineWebSocketTests.ReceiveAsync(ws);
                Assert.Equal(WebSocketMessageType.Text, message.Type);
                if (message.Text!.StartsWith('4'))
                {
                    received.Add(message.Text[1..]);
                }
            }

            await producer.WaitAsync(Wait);
            Assert.Equal(Enumerable.Range(0, count).Select(i => "m" + i), received);
            await WaitUntilAsync(() => session.Transport == "websocket");
            Assert.Equal(0, session.QueuedPackets);
            session.Close();
        }
    }
}

using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Threading.Channels;
using Evolution.Events.EngineIO;
using Evolution.Events.EngineIO.Protocol;
using Evolution.Events.Gateway.Events;
using Evolution.Events.Gateway.Fanout;
using Evolution.Events.Gateway.Instances;
using Evolution.Events.Gateway.PlainWebSockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Evolution.Events.Gateway.Tests;

/// <summary>
/// The fan-out's cork (FanoutService: a drained run of the bus under one <c>OutboundQueue.Cork()</c>) and the plain
/// WebSocket's byte bound, with real clients.
/// </summary>
public class CorkedFanoutTests
{
    [Fact]
    public async Task A_run_of_events_wakes_each_client_writer_once()
    {
        await using var gw = await TestGateway.StartAsync(new() { ["WEBSOCKET_REPLAY_LAST_STATE"] = "true" });
        var (ws, hub) = await ConnectPlainAsync(gw);
        using var _ = ws;
        var replay = gw.App.Services.GetRequiredService<LastStateReplay>();
        var queue = hub.Connections.Single().Queue;
        await PlainWebSocketTests.WaitUntilAsync(() => queue.HasWaiter);
        // two instances on different lock stripes: the fan-out delivers "a" then stops at "b" while the test holds it
        var first = "a";
        var second = Enumerable.Range(0, 1000).Select(i => "b" + i).First(n => replay.LockFor(n) != replay.LockFor(first));
        var before = queue.Wakeups;
        using var holder = new LockHolder(replay.LockFor(first), replay.LockFor(second));
        await gw.IngestAsync($"[{TestGateway.Event("call", first)},{TestGateway.Event("call", second)}]");
        holder.Release(0); // the run starts: "a" is delivered, "b" waits for its lock
        await PlainWebSocketTests.WaitUntilAsync(() => queue.Count == 1 || queue.Wakeups != before);
        // an uncorked writer would wake for "a" now, write it and wait again (then wake again for "b"); a corked
        // one sleeps until the run ends. The pause only gives the uncorked writer its chance to show.
        await Task.Delay(300);
        Assert.Equal(before, queue.Wakeups);
        holder.Release(1);
        Assert.Equal(first, (await TestGateway.ReceiveJsonAsync(ws))["instance"]!.GetValue<string>());
        Assert.Equal(second, (await TestGateway.ReceiveJsonAsync(ws))["instance"]!.GetValue<string>());
        Assert.Equal(before + 1, queue.Wakeups); // both events in one wake-up: one write
    }

    /// <summary>
    /// A lone event is not corked: a client's writer wakes as the event is queued for it, while the fan-out is still
    /// handing the same event to the sinks after it. A second fan-out on the gateway's bus has two sinks: the first
    /// queues the event for a waiting writer, the second holds the fan-out until that writer has woken (at most 5 s).
    /// A corked writer would sleep until the run, and so the second sink, had ended.
    /// </summary>
    [Fact]
    public async Task A_lone_event_wakes_a_writer_before_the_fan_out_has_finished_it()
    {
        await using var gw = await TestGateway.StartAsync();
        var services = gw.App.Services;
        var queue = new OutboundQueue(maxPackets: 16, maxBytes: 1 << 20);
        var woke = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var writer = Task.Run(async () =>
        {
            if (await queue.WaitToReadAsync(CancellationToken.None))
                woke.TrySetResult();
        });
        await PlainWebSocketTests.WaitUntilAsync(() => queue.HasWaiter);
        var wokeWhileHeld = new ConcurrentQueue<bool>();
        using var fanout = new FanoutService(services.GetRequiredService<IEventBus>(),
            [new QueueingSink(queue), new HoldingSink(woke.Task, wokeWhileHeld)],
            services.GetRequiredService<InstanceRegistry>(), services.GetRequiredService<LastStateReplay>(),
            NullLogger<FanoutService>.Instance);
        await fanout.StartAsync(CancellationToken.None);
        try
        {
            await gw.IngestAsync(TestGateway.Event("call", "a"));
            await PlainWebSocketTests.WaitUntilAsync(() => !wokeWhileHeld.IsEmpty);
            Assert.True(wokeWhileHeld.Single(), "the writer did not wake until the fan-out had finished the lone event");
            await writer;
        }
        finally
        {
            await fanout.StopAsync(CancellationToken.None);
        }
    }

    /// <summary>
    /// Fan-out rounds (OutboundQueue.FanoutRounds): while a writer the last event woke has not resumed, the next events'
    /// wakes are held, then go together, one wake for the events that came meanwhile. A second fan-out on the gateway's
    /// bus queues instance "a" for one writer, which the test keeps from resuming, and "b" for another.
    /// </summary>
    [Fact]
    public async Task Events_that_come_while_the_last_ones_writers_are_still_to_resume_wake_their_writers_once_after_them()
    {
        await using var gw = await TestGateway.StartAsync();
        var services = gw.App.Services;
        var a = new OutboundQueue(maxPackets: 16, maxBytes: 1 << 20);
        var b = new OutboundQueue(maxPackets: 16, maxBytes: 1 << 20);
        var aWait = a.WaitToReadAsync(); // not read back until the test says: a writer that has not resumed
        var bWait = b.WaitToReadAsync();
        using var fanout = new FanoutService(services.GetRequiredService<IEventBus>(),
            [new RoutingSink(e => e.Instance == "a" ? a : b)],
            services.GetRequiredService<InstanceRegistry>(), services.GetRequiredService<LastStateReplay>(),
            NullLogger<FanoutService>.Instance)
        {
            Rounds = new OutboundQueue.FanoutRounds(TimeSpan.FromMinutes(1)), // the hold never runs out here
        };
        await fanout.StartAsync(CancellationToken.None);
        try
        {
            await gw.IngestAsync(TestGateway.Event("call", "a"));
            await PlainWebSocketTests.WaitUntilAsync(() => aWait.IsCompleted); // nothing in flight: woken at once
            await gw.IngestAsync(TestGateway.Event("call", "b"));
            await PlainWebSocketTests.WaitUntilAsync(() => b.Count == 1);
            await gw.IngestAsync(TestGateway.Event("call", "b"));
            await PlainWebSocketTests.WaitUntilAsync(() => b.Count == 2);
            Assert.False(bWait.IsCompleted, "b's writer was woken while a's had not resumed");
            Assert.Equal(0, b.Wakeups);

            Assert.True(await aWait); // a's writer resumes (reads its wait back): b's held wake goes
            Assert.True(await bWait.AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.Equal(1, b.Wakeups);
            Assert.Equal(2, b.TryDrain(new OutboundPacket[16], long.MaxValue)); // both events: one write
        }
        finally
        {
            await fanout.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public void A_run_takes_up_to_its_count_of_small_events()
    {
        var reader = BusWith(Enumerable.Repeat(420, 300));
        Assert.True(reader.TryRead(out var first));
        var delivered = new List<GatewayEvent>();

        Assert.Equal(FanoutService.CorkBytes / 420, FanoutService.DeliverRun(reader, first, delivered.Add)); // 117 of S1's 420-byte events
        Assert.Equal(FanoutService.CorkBytes / 420, delivered.Count);
        Assert.Equal(300 - FanoutService.CorkBytes / 420, reader.Count);

        var small = BusWith(Enumerable.Repeat(100, 300));
        Assert.True(small.TryRead(out first));
        Assert.Equal(FanoutService.CorkRun, FanoutService.DeliverRun(small, first, _ => { }));
        Assert.Equal(300 - FanoutService.CorkRun, small.Count);
    }

    [Fact]
    public void A_run_of_big_events_ends_before_its_envelopes_outgrow_one_write()
    {
        var reader = BusWith(Enumerable.Repeat(20_000, 10));
        var runs = new List<int>();
        while (reader.TryRead(out var first))
            runs.Add(FanoutService.DeliverRun(reader, first, _ => { }));
        Assert.Equal([2, 2, 2, 2, 2], runs); // 40,000 bytes; a third would make 60,000 > 48 KiB

        var huge = BusWith([100_000, 10]);
        Assert.True(huge.TryRead(out var big));
        Assert.Equal(1, FanoutService.DeliverRun(huge, big, _ => { })); // a first event past the bound runs alone
    }

    /// <summary>The gateway's own bus (its reader peeks and counts), holding events of these envelope sizes.</summary>
    private static ChannelReader<GatewayEvent> BusWith(IEnumerable<int> sizes)
    {
        var bus = new InProcessEventBus(capacity: 10_000);
        var reader = bus.Subscribe().Reader;
        foreach (var size in sizes)
            bus.PublishAsync([EventOf(size)]).AsTask().GetAwaiter().GetResult(); // completes at once: the bus has room
        return reader;
    }

    private static GatewayEvent EventOf(int bytes) => new("a", EventNames.Find("call")!, new byte[bytes]);

    private sealed class QueueingSink(OutboundQueue queue) : IEventSink
    {
        public void Deliver(GatewayEvent gatewayEvent, InstanceSettings? settings) =>
            queue.TryEnqueue(OutboundPacket.Binary(gatewayEvent.EnvelopeJson));
    }

    private sealed class RoutingSink(Func<GatewayEvent, OutboundQueue> route) : IEventSink
    {
        public void Deliver(GatewayEvent gatewayEvent, InstanceSettings? settings) =>
            route(gatewayEvent).TryEnqueue(OutboundPacket.Binary(gatewayEvent.EnvelopeJson));
    }

    private sealed class HoldingSink(Task woke, ConcurrentQueue<bool> wokeWhileHeld) : IEventSink
    {
        public void Deliver(GatewayEvent gatewayEvent, InstanceSettings? settings) =>
            wokeWhileHeld.Enqueue(woke.Wait(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task A_big_corked_batch_is_written_by_the_corking_thread()
    {
        await using var gw = await TestGateway.StartAsync();
        var (ws, hub) = await ConnectPlainAsync(gw);
        using var _ = ws;
        var connection = hub.Connections.Single();
        var queue = connection.Queue;
        var payload = new string('x', OutboundQueue.InlineWakeBytes / 16);
        var frame = System.Text.Encoding.UTF8.GetBytes($"{{\"x\":\"{payload}\"}}");
        for (var round = 0; round < 3; round++)
        {
            await PlainWebSocketTests.WaitUntilAsync(() => queue.HasWaiter);
            await Task.Delay(20); // the writer's continuation is registered, not only its wait
            using (OutboundQueue.Cork())
            {
                for (var i = 0; i < 20; i++)
                {
                    Assert.True(connection.TryEnqueue(frame));
                }
            }

            // the plain WebSocket's writer ran on this thread at the cork's end (a thread-pool wake would still be on its way)
            Assert.Equal(0, queue.Count);
            for (var i = 0; i < 20; i++)
            {
                Assert.Equal(payload, (await TestGateway.ReceiveJsonAsync(ws))["x"]!.GetValue<string>());
            }
        }
    }

    [Fact]
    public async Task A_single_event_is_not_held_back()
    {
        await using var gw = await TestGateway.StartAsync();
        var (ws, hub) = await ConnectPlainAsync(gw);
        using var _ = ws;
        for (var i = 0; i < 20; i++)
        {
            await gw.IngestAsync(TestGateway.Event("call", "i" + i));
            Assert.Equal("i" + i, (await TestGateway.ReceiveJsonAsync(ws))["instance"]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task The_plain_websocket_queue_is_bounded_by_bytes_too()
    {
        // WEBSOCKET_SEND_QUEUE is far away: only WEBSOCKET_SEND_QUEUE_BYTES can drop this client
        await using var gw = await TestGateway.StartAsync(new()
        {
            ["WEBSOCKET_SEND_QUEUE"] = "1000000",
            ["WEBSOCKET_SEND_QUEUE_BYTES"] = (1024 * 1024).ToString(),
            ["WEBHOOK_MAX_BODY"] = "100000000",
        });
        var (slow, hub) = await ConnectPlainAsync(gw);
        using var _ = slow;
        var pad = new string('x', 200 * 1024);
        var batch = "[" + string.Join(',', Enumerable.Range(0, 20).Select(_ => TestGateway.Event("call", "a", $$"""{"p":"{{pad}}"}"""))) + "]";
        for (var i = 0; i < 20 && hub.Count > 0; i++)
            await gw.IngestAsync(batch); // 4 MB a time: the kernel's buffers fill, then the queue's megabyte
        await PlainWebSocketTests.WaitUntilAsync(() => hub.Count == 0);

        // the slow client was closed: what it reads ends with the connection lost
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var buffer = new byte[1 << 20];
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            while (true)
            {
                var result = await slow.ReceiveAsync(buffer, timeout.Token);
                if (result.MessageType == WebSocketMessageType.Close)
                    throw new WebSocketException("closed");
            }
        });
        Assert.False(timeout.IsCancellationRequested, "the slow client was never disconnected");
    }

    /// <summary>A plain WebSocket client with the global key, once the gateway's hub holds it.</summary>
    private static async Task<(ClientWebSocket Ws, PlainWebSocketHub Hub)> ConnectPlainAsync(TestGateway gw)
    {
        var ws = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}");
        var hub = gw.App.Services.GetRequiredService<PlainWebSocketHub>();
        await PlainWebSocketTests.WaitUntilAsync(() => hub.Count == 1);
        return (ws, hub);
    }

    /// <summary>Holds locks on a thread of its own (a <see cref="Lock"/> is released by the thread that took it).</summary>
    private sealed class LockHolder : IDisposable
    {
        private readonly ManualResetEventSlim[] _release;
        private readonly Thread _thread;

        public LockHolder(params Lock[] locks)
        {
            _release = locks.Select(_ => new ManualResetEventSlim()).ToArray();
            using var held = new ManualResetEventSlim();
            _thread = new Thread(() =>
            {
                foreach (var l in locks)
                    l.Enter();
                held.Set();
                for (var i = 0; i < locks.Length; i++)
                {
                    _release[i].Wait(TimeSpan.FromSeconds(60));
                    locks[i].Exit();
                }
            }) { IsBackground = true };
            _thread.Start();
            held.Wait();
        }

        /// <summary>Releases the locks up to and including this one, in order.</summary>
        public void Release(int index)
        {
            for (var i = 0; i <= index; i++)
                _release[i].Set();
        }

        public void Dispose()
        {
            Release(_release.Length - 1);
            _thread.Join();
        }
    }
}

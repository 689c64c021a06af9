using Evolution.Events.EngineIO.Protocol;

namespace Evolution.Events.EngineIO.Tests;

/// <summary>
/// The per-connection outbound queue on its own: bounds, volatile, batch drain, the writer's wait, corking. The small
/// rings are shared process-wide, so the allocation tests would see another test's queues take them: these run alone.
/// </summary>
[Collection(AttackCollection.Name)]
public class OutboundQueueTests
{
    private static OutboundPacket Packet(int bytes) => OutboundPacket.Binary(new byte[bytes]);

    [Fact]
    public void PacketBoundRefusesThePacketPastIt()
    {
        var queue = new OutboundQueue(maxPackets: 3, maxBytes: 1_000);
        Assert.True(queue.TryEnqueue(Packet(1)));
        Assert.True(queue.TryEnqueue(Packet(1)));
        Assert.True(queue.TryEnqueue(Packet(1)));
        Assert.False(queue.TryEnqueue(Packet(1)));
        Assert.Equal(3, queue.Count);
        Assert.True(queue.TryDequeue(out _));
        Assert.True(queue.TryEnqueue(Packet(1))); // room again once the writer took one
    }

    [Fact]
    public void ByteBoundRefusesThePacketThatWouldPassIt()
    {
        var queue = new OutboundQueue(maxPackets: 100, maxBytes: 10);
        Assert.True(queue.TryEnqueue(Packet(6)));
        Assert.False(queue.TryEnqueue(Packet(5)));
        Assert.True(queue.TryEnqueue(Packet(4)));
        Assert.Equal(10, queue.Bytes);
        Assert.False(queue.TryEnqueue(Packet(1)));
        Assert.False(new OutboundQueue(100, 10).TryEnqueue(Packet(11))); // a packet larger than the bound never fits
    }

    [Fact]
    public void VolatileGoesOnlyIntoAnEmptyQueueAndControlPacketsPassTheBounds()
    {
        var queue = new OutboundQueue(maxPackets: 1, maxBytes: 100);
        Assert.True(queue.TryEnqueueVolatile(Packet(1)));
        Assert.False(queue.TryEnqueueVolatile(Packet(1)));
        Assert.False(queue.TryEnqueue(Packet(1)));
        Assert.True(queue.EnqueueUnbounded(OutboundPacket.Close));
        Assert.Equal(2, queue.Count);
        queue.Complete();
        Assert.False(queue.TryEnqueue(Packet(1)));
        Assert.False(queue.EnqueueUnbounded(OutboundPacket.Noop));
        Assert.False(queue.TryEnqueueVolatile(Packet(1)));
    }

    [Fact]
    public void DrainTakesPacketsInOrderUpToTheBudgetAndAlwaysAtLeastOne()
    {
        var queue = new OutboundQueue(maxPackets: 1_000, maxBytes: 1_000_000);
        for (var i = 1; i <= 20; i++)
        {
            Assert.True(queue.TryEnqueue(Packet(i))); // grows the ring past its first size, wrapping around
        }

        var into = new OutboundPacket[64];
        Assert.Equal(4, queue.TryDrain(into, maxBytes: 10)); // 1+2+3+4
        Assert.Equal([1, 2, 3, 4], into[..4].Select(p => p.Bytes.Length));
        Assert.Equal(1, queue.TryDrain(into, maxBytes: 1)); // 5 bytes: over the budget, still taken alone
        Assert.Equal(5, into[0].Bytes.Length);
        Assert.Equal(3, queue.TryDrain(into.AsSpan(0, 3), maxBytes: long.MaxValue));
        Assert.Equal([6, 7, 8], into[..3].Select(p => p.Bytes.Length));
        Assert.Equal(12, queue.TryDrain(into, long.MaxValue));
        Assert.Equal(Enumerable.Range(9, 12), into[..12].Select(p => p.Bytes.Length));
        Assert.Equal(0, queue.Count);
        Assert.Equal(0, queue.Bytes);
        Assert.Equal(0, queue.TryDrain(into, long.MaxValue));
    }

    [Fact]
    public void EnqueueAndDrainAllocateNothing()
    {
        var queue = new OutboundQueue(maxPackets: 1_000, maxBytes: 1_000_000);
        var packet = Packet(10);
        var into = new OutboundPacket[8];
        for (var i = 0; i < 8; i++)
        {
            queue.TryEnqueue(packet); // the ring's first allocation
        }

        queue.TryDrain(into, long.MaxValue);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var round = 0; round < 1_000; round++)
        {
            for (var i = 0; i < 8; i++)
            {
                queue.TryEnqueue(packet);
            }

            queue.TryDrain(into, long.MaxValue);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void A_broadcast_to_many_idle_queues_reuses_their_rings()
    {
        // one packet to each of 1,000 empty queues, then each drained (the fan-out of one event at a low rate): the
        // rings taken and given back are the same ones, round after round (ArrayPool.Shared would allocate most)
        var queues = Enumerable.Range(0, 1_000).Select(_ => new OutboundQueue(10, 1_000)).ToArray();
        var packet = Packet(10);
        var into = new OutboundPacket[8];
        void Round()
        {
            foreach (var queue in queues)
            {
                queue.TryEnqueue(packet);
            }

            foreach (var queue in queues)
            {
                queue.TryDrain(into, long.MaxValue);
            }
        }

        Round();
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var round = 0; round < 20; round++)
        {
            Round();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public async Task TheWriterWaitsUntilAPacketOrTheEnd()
    {
        var queue = new OutboundQueue(10, 1_000);
        var wait = queue.WaitToReadAsync();
        Assert.False(wait.IsCompleted);
        Assert.True(queue.HasWaiter);
        queue.TryEnqueue(Packet(1));
        Assert.True(await wait);
        Assert.True(await queue.WaitToReadAsync()); // a packet is there: at once
        Assert.True(queue.TryDequeue(out _));

        // the same source is reused, many times over
        for (var i = 0; i < 100; i++)
        {
            var next = queue.WaitToReadAsync();
            var writer = Task.Run(() => queue.TryEnqueue(Packet(1)));
            Assert.True(await next);
            await writer;
            Assert.True(queue.TryDequeue(out _));
        }

        var last = queue.WaitToReadAsync();
        queue.Complete();
        Assert.False(await last);
        Assert.False(await queue.WaitToReadAsync());
    }

    [Fact]
    public async Task WhatIsQueuedIsStillReadAfterComplete()
    {
        var queue = new OutboundQueue(10, 1_000);
        queue.TryEnqueue(Packet(1));
        queue.EnqueueUnbounded(OutboundPacket.Close);
        queue.Complete();
        Assert.True(await queue.WaitToReadAsync());
        Assert.Equal(2, queue.TryDrain(new OutboundPacket[4], long.MaxValue));
        Assert.False(await queue.WaitToReadAsync());
    }

    [Fact]
    public async Task ACancelledWaitThrowsAndTheNextWaitWorks()
    {
        var queue = new OutboundQueue(10, 1_000);
        using var cts = new CancellationTokenSource();
        var wait = queue.WaitToReadAsync(cts.Token);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await wait);
        Assert.False(queue.HasWaiter);

        var next = queue.WaitToReadAsync(CancellationToken.None);
        queue.TryEnqueue(Packet(1));
        Assert.True(await next);
    }

    [Fact]
    public async Task ASecondConcurrentReaderIsWokenToo()
    {
        var queue = new OutboundQueue(10, 1_000);
        var first = queue.WaitToReadAsync();
        var second = queue.WaitToReadAsync().AsTask();
        queue.TryEnqueue(Packet(1));
        Assert.True(await first);
        Assert.True(await second);
    }

    [Fact]
    public async Task A_reader_that_waits_again_before_the_first_has_taken_its_wake_up_leaves_it_intact()
    {
        // two readers (a poll overlapping the WebSocket that takes over): the second, woken with the first, drains
        // and waits again before the first reader's continuation has read its result
        var queue = new OutboundQueue(10, 1_000);
        var first = queue.WaitToReadAsync();
        var second = queue.WaitToReadAsync().AsTask();
        queue.TryEnqueue(Packet(1));
        Assert.True(await second);
        Assert.True(queue.TryDequeue(out _));
        var again = queue.WaitToReadAsync().AsTask();
        Assert.True(await first); // its wake-up was not reset under it
        Assert.False(again.IsCompleted);
        queue.TryEnqueue(Packet(1)); // and the reader waiting again is woken by the next packet
        Assert.True(await again.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task A_reader_waiting_behind_a_cancelled_one_is_still_woken()
    {
        var queue = new OutboundQueue(10, 1_000);
        using var cts = new CancellationTokenSource();
        var first = queue.WaitToReadAsync(cts.Token);
        var second = queue.WaitToReadAsync().AsTask();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await first);
        queue.TryEnqueue(Packet(1));
        Assert.True(await second.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task ACorkWakesTheWriterOnceAtItsEnd()
    {
        var queue = new OutboundQueue(100, 100_000);
        var other = new OutboundQueue(100, 100_000);
        var wait = queue.WaitToReadAsync();
        var otherWait = other.WaitToReadAsync();
        using (OutboundQueue.Cork())
        {
            using (OutboundQueue.Cork())
            {
                for (var i = 0; i < 10; i++)
                {
                    Assert.True(queue.TryEnqueue(Packet(3)));
                    Assert.True(other.TryEnqueue(Packet(3)));
                }
            }

            // the inner scope ended: only the outermost one wakes
            Assert.True(queue.HasWaiter);
            Assert.False(wait.IsCompleted);
            Assert.False(otherWait.IsCompleted);
            Assert.Equal(0, queue.Wakeups);
        }

        Assert.True(await wait);
        Assert.True(await otherWait);
        Assert.Equal(1, queue.Wakeups);
        Assert.Equal(1, other.Wakeups);
        Assert.Equal(10, queue.TryDrain(new OutboundPacket[64], long.MaxValue)); // one batch: one write
    }

    [Fact]
    public async Task ACorkOnAnotherThreadDoesNotHoldThisOne()
    {
        var queue = new OutboundQueue(100, 100_000);
        var wait = queue.WaitToReadAsync();
        using (OutboundQueue.Cork())
        {
            var other = new Thread(() => queue.TryEnqueue(Packet(1))); // not corked there
            other.Start();
            other.Join();
            Assert.True(wait.IsCompleted);
        }

        Assert.True(await wait);
        Assert.Equal(1, queue.Wakeups);
    }

    [Fact]
    public async Task AFanoutWhileAnotherOnesWritersHaveNotResumedHoldsItsWakesAndTheNextJoinsThem()
    {
        using var rounds = new OutboundQueue.FanoutRounds(TimeSpan.FromMinutes(1)); // the hold never runs out here
        var first = new OutboundQueue(100, 100_000);
        var second = new OutboundQueue(100, 100_000);
        var firstWait = first.WaitToReadAsync();
        var secondWait = second.WaitToReadAsync();

        using (rounds.Begin())
        {
            Assert.True(first.TryEnqueue(Packet(3)));
            Assert.True(firstWait.IsCompleted); // nothing in flight: woken as the packet is queued, not held
        }

        // the first fan-out's writer has not resumed (its wait is not read back): the next fan-outs are held
        Assert.True(rounds.InFlight);
        for (var i = 0; i < 2; i++)
        {
            using (rounds.Begin())
            {
                Assert.True(second.TryEnqueue(Packet(3)));
            }
        }

        Assert.False(secondWait.IsCompleted);
        Assert.Equal(2, rounds.FanoutsHeld);

        Assert.True(firstWait.IsCompleted);
        Assert.True(await firstWait); // the first round's writer resumes (reads its wait back): the held wakes go
        Assert.True(await secondWait.AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(1, second.Wakeups); // both fan-outs' packets, one wake: one write
        Assert.Equal(2, second.TryDrain(new OutboundPacket[64], long.MaxValue));
        Assert.Equal(1, first.TryDrain(new OutboundPacket[64], long.MaxValue));
        Assert.False(rounds.InFlight); // the held wakes' round ended as its writer resumed
    }

    [Fact]
    public async Task HeldWakesGoAfterMaxHoldEvenIfTheRoundInFlightNeverEnds()
    {
        using var rounds = new OutboundQueue.FanoutRounds(TimeSpan.FromMilliseconds(500)); // a stalled test thread still asserts in time
        var stuck = new OutboundQueue(100, 100_000);
        var held = new OutboundQueue(100, 100_000);
        var stuckWait = stuck.WaitToReadAsync();
        var heldWait = held.WaitToReadAsync();
        using (rounds.Begin())
        {
            stuck.TryEnqueue(Packet(1));
        }

        var clock = System.Diagnostics.Stopwatch.StartNew();
        using (rounds.Begin())
        {
            held.TryEnqueue(Packet(1));
        }

        Assert.False(heldWait.IsCompleted);
        Assert.True(await heldWait.AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.True(clock.Elapsed >= rounds.MaxHold - TimeSpan.FromMilliseconds(20), $"released after {clock.Elapsed}");
        Assert.True(await stuckWait);
        Assert.False(rounds.InFlight);
    }

    [Fact]
    public async Task AFanoutInsideACorkLeavesTheWakesToTheCork()
    {
        using var rounds = new OutboundQueue.FanoutRounds();
        var queue = new OutboundQueue(100, 100_000);
        var wait = queue.WaitToReadAsync();
        using (OutboundQueue.Cork())
        {
            using (rounds.Begin())
            {
                queue.TryEnqueue(Packet(1));
            }

            Assert.False(wait.IsCompleted);
            Assert.False(rounds.InFlight); // not counted: the cork wakes, outside any round
        }

        Assert.True(wait.IsCompleted);
        Assert.True(await wait);
    }

    /// <summary>A writer as the transports run one: waits, notes the thread it resumed on, drains, waits again.</summary>
    private sealed class Writer
    {
        private readonly OutboundQueue _queue;
        private readonly bool _inline;
        private readonly Action? _onWake;

        public Writer(OutboundQueue queue, bool inlineAfterCork, Action? onWake = null)
        {
            (_queue, _inline, _onWake) = (queue, inlineAfterCork, onWake);
            Loop = LoopAsync(); // runs here until its first wait
        }

        public Task Loop { get; }
        public int Drained;
        public int ResumedOn = -1;

        private async Task LoopAsync()
        {
            var into = new OutboundPacket[64];
            while (await _queue.WaitToReadAsync(inlineAfterCork: _inline))
            {
                ResumedOn = Environment.CurrentManagedThreadId;
                Drained += _queue.TryDrain(into, long.MaxValue);
                _onWake?.Invoke();
            }
        }
    }

    /// <summary>Runs <paramref name="body"/> on a thread of its own: no synchronization context, and no thread-pool thread a woken writer could share.</summary>
    private static void OnOwnThread(Action body)
    {
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                body();
            }
            catch (Exception ex)
            {
                failure = ex;
            }
        });
        thread.Start();
        Assert.True(thread.Join(TimeSpan.FromSeconds(30)), "the test body hung");
        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }
    }

    private static void EnqueueBytes(OutboundQueue queue, int bytes, int packets = 4)
    {
        for (var i = 0; i < packets; i++)
        {
            Assert.True(queue.TryEnqueue(Packet(bytes / packets)));
        }
    }

    private static void CompleteAndJoin(OutboundQueue queue, Writer writer)
    {
        queue.Complete();
        Assert.True(writer.Loop.Wait(TimeSpan.FromSeconds(10)), "the writer did not end");
    }

    [Fact]
    public void A_cork_ending_with_a_big_batch_runs_the_writer_that_allows_it_on_its_own_thread() => OnOwnThread(() =>
    {
        var queue = new OutboundQueue(100, 1_000_000);
        var writer = new Writer(queue, inlineAfterCork: true);
        using (OutboundQueue.Cork())
        {
            EnqueueBytes(queue, OutboundQueue.InlineWakeBytes);
            Assert.Equal(-1, writer.ResumedOn); // corked: not yet
        }

        // the cork's end ran it here, to its next wait: the batch is written before the fan-out goes on
        Assert.Equal(Environment.CurrentManagedThreadId, writer.ResumedOn);
        Assert.Equal(4, writer.Drained);
        Assert.Equal(0, queue.Count);
        Assert.True(queue.HasWaiter);

        // that was for the cork's wake only: the next wake, uncorked, resumes the writer on the thread pool
        EnqueueBytes(queue, OutboundQueue.InlineWakeBytes);
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref writer.Drained) == 8, TimeSpan.FromSeconds(10)));
        Assert.NotEqual(Environment.CurrentManagedThreadId, writer.ResumedOn);
        CompleteAndJoin(queue, writer);
    });

    [Fact]
    public void A_small_batch_a_writer_that_does_not_allow_it_or_no_cork_wake_on_the_thread_pool() => OnOwnThread(() =>
    {
        var me = Environment.CurrentManagedThreadId;

        // below the threshold: left to gather the next corks' packets
        var small = new OutboundQueue(100, 1_000_000);
        var smallWriter = new Writer(small, inlineAfterCork: true);
        using (OutboundQueue.Cork())
        {
            EnqueueBytes(small, OutboundQueue.InlineWakeBytes - 4);
        }

        // a poll's wait: never resumed on the corking thread
        var poll = new OutboundQueue(100, 1_000_000);
        var pollWriter = new Writer(poll, inlineAfterCork: false);
        using (OutboundQueue.Cork())
        {
            EnqueueBytes(poll, 4 * OutboundQueue.InlineWakeBytes);
        }

        // not corked: an enqueue never runs the writer
        var plain = new OutboundQueue(100, 1_000_000);
        var plainWriter = new Writer(plain, inlineAfterCork: true);
        EnqueueBytes(plain, 4 * OutboundQueue.InlineWakeBytes);

        foreach (var (queue, writer) in new[] { (small, smallWriter), (poll, pollWriter), (plain, plainWriter) })
        {
            CompleteAndJoin(queue, writer);
            Assert.Equal(4, writer.Drained);
            Assert.NotEqual(-1, writer.ResumedOn);
            Assert.NotEqual(me, writer.ResumedOn);
        }
    });

    [Fact]
    public void A_writer_run_by_a_cork_may_cork_again_and_every_deferred_writer_still_runs() => OnOwnThread(() =>
    {
        var me = Environment.CurrentManagedThreadId;
        var inner = new OutboundQueue(100, 1_000_000);
        var innerWriter = new Writer(inner, inlineAfterCork: true);
        var nested = 0;
        var outer = new OutboundQueue(100, 1_000_000);
        var outerWriter = new Writer(outer, inlineAfterCork: true, onWake: () =>
        {
            if (nested++ == 0)
            {
                using (OutboundQueue.Cork()) // a writer resumed on the corking thread corks (a handler that broadcasts)
                {
                    EnqueueBytes(inner, OutboundQueue.InlineWakeBytes);
                }
            }
        });
        var last = new OutboundQueue(100, 1_000_000);
        var lastWriter = new Writer(last, inlineAfterCork: true);
        using (OutboundQueue.Cork())
        {
            EnqueueBytes(outer, OutboundQueue.InlineWakeBytes);
            EnqueueBytes(last, OutboundQueue.InlineWakeBytes);
        }

        Assert.Equal((4, 4, 4), (outerWriter.Drained, innerWriter.Drained, lastWriter.Drained));
        Assert.Equal((me, me, me), (outerWriter.ResumedOn, innerWriter.ResumedOn, lastWriter.ResumedOn));

        // and the thread's cork still works afterwards
        using (OutboundQueue.Cork())
        {
            EnqueueBytes(last, OutboundQueue.InlineWakeBytes);
            Assert.Equal(4, lastWriter.Drained);
        }

        Assert.Equal(8, lastWriter.Drained);
        foreach (var (queue, writer) in new[] { (outer, outerWriter), (inner, innerWriter), (last, lastWriter) })
        {
            CompleteAndJoin(queue, writer);
        }
    });

    [Fact]
    public void A_cancelled_wait_is_not_resumed_on_the_cancelling_thread() => OnOwnThread(() =>
    {
        var queue = new OutboundQueue(10, 1_000);
        using var cts = new CancellationTokenSource();
        var resumedOn = -1;
        var waiter = Task.Run(async () =>
        {
            try
            {
                await queue.WaitToReadAsync(inlineAfterCork: true, cts.Token);
            }
            catch (OperationCanceledException)
            {
                resumedOn = Environment.CurrentManagedThreadId;
            }
        });
        SpinWait.SpinUntil(() => queue.HasWaiter, TimeSpan.FromSeconds(10));
        cts.Cancel();
        Assert.True(waiter.Wait(TimeSpan.FromSeconds(10)));
        Assert.NotEqual(-1, resumedOn);
        Assert.NotEqual(Environment.CurrentManagedThreadId, resumedOn);
    });

    [Fact]
    public async Task ConcurrentProducersLoseAndDuplicateNothing()
    {
        const int producers = 4, each = 5_000;
        var queue = new OutboundQueue(100_000, long.MaxValue);
        var seen = new int[producers];
        var reader = Task.Run(async () =>
        {
            var into = new OutboundPacket[64];
            var total = 0;
            while (await queue.WaitToReadAsync())
            {
                var n = queue.TryDrain(into, 4096);
                for (var i = 0; i < n; i++)
                {
                    var (producer, sequence) = (into[i].Bytes.Span[0], BitConverter.ToInt32(into[i].Bytes.Span[1..]));
                    Assert.Equal(seen[producer], sequence); // each producer's packets in order, none twice
                    seen[producer]++;
                    total++;
                }
            }

            return total;
        });
        await Task.WhenAll(Enumerable.Range(0, producers).Select(p => Task.Run(() =>
        {
            for (var i = 0; i < each; i++)
            {
                var bytes = new byte[5];
                bytes[0] = (byte)p;
                BitConverter.TryWriteBytes(bytes.AsSpan(1), i);
                using (i % 7 == 0 ? OutboundQueue.Cork() : default)
                {
                    Assert.True(queue.TryEnqueue(OutboundPacket.Binary(bytes)));
                }
            }
        })));
        queue.Complete();
        Assert.Equal(producers * each, await reader.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.All(seen, n => Assert.Equal(each, n));
    }
}

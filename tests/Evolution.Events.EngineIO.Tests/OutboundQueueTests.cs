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

using Evolution.Events.EngineIO.Protocol;
using Evolution.Events.EngineIO.Transports;

namespace Evolution.Events.EngineIO.Tests;

/// <summary>The write batch of every wake of a WebSocket's writer: its thread's spare, so a batch allocates nothing.</summary>
public sealed class PooledBufferWriterTests
{
    [Fact]
    public void A_batch_after_the_first_on_a_thread_allocates_nothing()
    {
        static void Batch()
        {
            using var batch = PooledBufferWriter.Rent(4096);
            WebSocketFrameWriter.Append(batch, WebSocketFrameWriter.Opcode.Text, "42[\"tick\",1]"u8);
        }

        Batch();
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1_000; i++)
        {
            Batch();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void A_rented_writer_starts_empty_and_is_handed_out_once()
    {
        var first = PooledBufferWriter.Rent(4096);
        first.GetSpan(3)[..3].Fill(1);
        first.Advance(3);
        first.Dispose();
        first.Dispose(); // a second dispose does not make it the spare twice

        var again = PooledBufferWriter.Rent(16);
        Assert.Same(first, again);
        Assert.Equal(0, again.WrittenCount);
        Assert.NotSame(again, PooledBufferWriter.Rent(16)); // the spare is taken: the next one is new
        again.Dispose();
    }

    [Fact]
    public void A_writer_grown_past_the_spare_size_is_not_kept()
    {
        using (var spare = PooledBufferWriter.Rent(16))
        {
        }

        var taken = PooledBufferWriter.Rent(16); // the thread's spare: none left
        var big = PooledBufferWriter.Rent(16);
        big.GetSpan(PooledBufferWriter.SpareMaxBytes * 2);
        big.Advance(PooledBufferWriter.SpareMaxBytes * 2);
        big.Dispose();
        Assert.NotSame(big, PooledBufferWriter.Rent(16));
        taken.Dispose();
    }

    [Theory]
    [InlineData(1, 420)] // one S1-sized event
    [InlineData(117, 420)] // a fan-out run of them (48 KiB of envelopes)
    [InlineData(400, 10)] // small packets: 2-byte headers
    [InlineData(150, 430)] // past one batch: framed up to the batch limit and the packet that crosses it
    public void A_batch_starts_with_room_for_what_is_queued(int packets, int size)
    {
        var queue = new OutboundQueue(10_000, 10_000_000);
        var payload = new byte[size];
        payload.AsSpan().Fill((byte)'x');
        payload[0] = (byte)'4'; // a message packet
        for (var i = 0; i < packets; i++)
        {
            Assert.True(queue.TryEnqueue(OutboundPacket.FromEncodedText(payload)));
        }

        var capacity = WebSocketFrameWriter.BatchBufferSize(queue);
        Assert.InRange(capacity, 4096, 2 * WebSocketFrameWriter.BatchBytes);
        using var batch = PooledBufferWriter.Rent(capacity);
        var buffer = Buffer(batch);
        var taken = new OutboundPacket[64];
        while (batch.WrittenCount < WebSocketFrameWriter.BatchBytes
            && queue.TryDrain(taken, WebSocketFrameWriter.BatchBytes - batch.WrittenCount) is var n and > 0)
        {
            for (var i = 0; i < n; i++)
            {
                WebSocketFrameWriter.Append(batch, WebSocketFrameWriter.Opcode.Text, taken[i].Bytes.Span);
            }
        }

        Assert.InRange(batch.WrittenCount, 1, capacity); // the size asked for was enough (not only the pool's rounding up)
        Assert.Same(buffer, Buffer(batch)); // framed without growing (no copy of what was framed)

        static byte[] Buffer(PooledBufferWriter writer) =>
            System.Runtime.InteropServices.MemoryMarshal.TryGetArray(writer.WrittenMemory, out var segment) ? segment.Array! : [];
    }
}

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
}

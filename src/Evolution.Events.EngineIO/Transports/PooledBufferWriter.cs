using System.Buffers;

namespace Evolution.Events.EngineIO.Transports;

/// <summary>
/// An <see cref="IBufferWriter{T}"/> over arrays rented from <see cref="ArrayPool{T}.Shared"/>, and an idle connection
/// holds no buffer. Dispose returns the array, or keeps the writer, buffer and all, as its thread's spare for the next
/// <see cref="Rent"/>: a write batch (one per wake of a connection's writer) allocates nothing.
/// </summary>
internal sealed class PooledBufferWriter : IBufferWriter<byte>, IDisposable
{
    /// <summary>Largest buffer a thread's spare keeps; a batch that grew past it gives its buffer back.</summary>
    public const int SpareMaxBytes = 8 * 1024;

    [ThreadStatic]
    private static PooledBufferWriter? t_spare;

    private byte[] _buffer;
    private int _written;
    private bool _isSpare;

    public PooledBufferWriter(int initialSize) => _buffer = ArrayPool<byte>.Shared.Rent(initialSize);

    /// <summary>This thread's spare writer (emptied) when it has one, else a new one; dispose it when done.</summary>
    public static PooledBufferWriter Rent(int initialSize)
    {
        var spare = t_spare;
        if (spare is null)
        {
            return new PooledBufferWriter(initialSize);
        }

        t_spare = null;
        spare._isSpare = false;
        spare.Ensure(initialSize);
        return spare;
    }

    public int WrittenCount => _written;

    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _written);

    public void Advance(int count) => _written += count;

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(_written);
    }

    public void Reset() => _written = 0;

    public void Dispose()
    {
        if (_isSpare)
        {
            return; // disposed already (and kept as this thread's spare)
        }

        _written = 0;
        if (t_spare is null && _buffer.Length is > 0 and <= SpareMaxBytes)
        {
            _isSpare = true;
            t_spare = this;
            return;
        }

        var buffer = _buffer;
        _buffer = [];
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void Ensure(int sizeHint)
    {
        var needed = _written + Math.Max(sizeHint, 1);
        if (needed <= _buffer.Length)
        {
            return;
        }

        var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, _buffer.Length * 2));
        _buffer.AsSpan(0, _written).CopyTo(bigger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = bigger;
    }
}

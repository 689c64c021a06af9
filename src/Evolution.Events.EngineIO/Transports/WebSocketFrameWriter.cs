using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net.WebSockets;

namespace Evolution.Events.EngineIO.Transports;

/// <summary>
/// Writes server frames (unmasked, RFC 6455). Frames are gathered into one buffer and written with
/// one call, so a socket with many queued packets costs one system call per batch, not per packet.
/// Writes are serialized: the read loop answers pings and closes through the same writer. On the raw upgrade
/// path (a <see cref="Hosting.DuplexPipeStream"/>) frames go straight into the connection's
/// <see cref="PipeWriter"/>, one flush per write, without the stream's layer in between.
/// </summary>
internal sealed class WebSocketFrameWriter
{
    /// <summary>Largest batch gathered before a write (larger frames are written on their own).</summary>
    public const int BatchBytes = 64 * 1024;

    /// <summary>Smallest buffer a batch starts with.</summary>
    private const int MinBatchBuffer = 4096;

    /// <summary>The largest header of a frame that goes into a batch (a frame past <see cref="BatchBytes"/> is written on its own).</summary>
    private const int BatchedHeaderMax = 4;

    private const byte Fin = 0x80;

    /// <summary>RSV1: the message is compressed (permessage-deflate).</summary>
    private const byte Rsv1 = 0x40;
    private readonly Stream _stream;
    private readonly PipeWriter? _output;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private long _writingSince;

    public WebSocketFrameWriter(Stream stream)
    {
        _stream = stream;
        _output = (stream as Hosting.DuplexPipeStream)?.Output;
    }

    public enum Opcode : byte
    {
        Text = 0x1,
        Binary = 0x2,
        Close = 0x8,
        Ping = 0x9,
        Pong = 0xA,
    }

    /// <summary>
    /// <see cref="EngineClock.Milliseconds"/> when the write now under way started (0: none). The session's
    /// heartbeat aborts the connection when a write waits past the ping timeout.
    /// </summary>
    public long WritingSince => Volatile.Read(ref _writingSince);

    /// <summary>
    /// The buffer a batch starts with for what <paramref name="queue"/> holds: room for the queued payloads and a
    /// header of each (a buffer that grows copies what it holds at every doubling, which for a big batch cost more
    /// than framing it), from 4 KiB up to twice <see cref="BatchBytes"/> (a batch ends past <see cref="BatchBytes"/>).
    /// </summary>
    public static int BatchBufferSize(OutboundQueue queue)
    {
        var (packets, bytes) = queue.Queued;
        return (int)Math.Clamp(bytes + ((long)packets * BatchedHeaderMax), MinBatchBuffer, 2 * BatchBytes);
    }

    /// <summary>Room a frame of this payload length takes (header + payload).</summary>
    public static int FrameSize(int payloadLength) => HeaderSize(payloadLength) + payloadLength;

    /// <summary>Appends one frame to a batch buffer (<paramref name="compressed"/>: RSV1 set, the payload is deflated).</summary>
    public static void Append(IBufferWriter<byte> batch, Opcode opcode, ReadOnlySpan<byte> payload, bool compressed = false)
    {
        var span = batch.GetSpan(FrameSize(payload.Length));
        var header = WriteHeader(span, opcode, payload.Length, compressed);
        payload.CopyTo(span[header..]);
        batch.Advance(header + payload.Length);
    }

    public async ValueTask WriteAsync(ReadOnlyMemory<byte> frames, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken);
        Volatile.Write(ref _writingSince, EngineClock.Milliseconds);
        try
        {
            if (_output is { } output)
            {
                output.Write(frames.Span);
                Hosting.DuplexPipeStream.ThrowIfEnded(await output.FlushAsync(cancellationToken));
            }
            else
            {
                await _stream.WriteAsync(frames, cancellationToken);
                await _stream.FlushAsync(cancellationToken);
            }
        }
        finally
        {
            Volatile.Write(ref _writingSince, 0);
            _lock.Release();
        }
    }

    /// <summary>Writes one frame without copying its payload (for frames larger than a batch).</summary>
    public async ValueTask WriteFrameAsync(Opcode opcode, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken,
        bool compressed = false)
    {
        await _lock.WaitAsync(cancellationToken);
        Volatile.Write(ref _writingSince, EngineClock.Milliseconds);
        try
        {
            if (_output is { } output)
            {
                output.Advance(WriteHeader(output.GetSpan(HeaderSize(payload.Length)), opcode, payload.Length, compressed));
                output.Write(payload.Span);
                Hosting.DuplexPipeStream.ThrowIfEnded(await output.FlushAsync(cancellationToken));
            }
            else
            {
                var header = new byte[HeaderSize(payload.Length)];
                WriteHeader(header, opcode, payload.Length, compressed);
                await _stream.WriteAsync(header, cancellationToken);
                await _stream.WriteAsync(payload, cancellationToken);
                await _stream.FlushAsync(cancellationToken);
            }
        }
        finally
        {
            Volatile.Write(ref _writingSince, 0);
            _lock.Release();
        }
    }

    public ValueTask WriteCloseAsync(WebSocketCloseStatus status, CancellationToken cancellationToken) =>
        WriteCloseAsync(status, null, cancellationToken);

    /// <summary>A close frame with a reason (cut to fit the 125 bytes a control frame may carry, on a character boundary).</summary>
    public ValueTask WriteCloseAsync(WebSocketCloseStatus status, string? reason, CancellationToken cancellationToken)
    {
        Span<byte> text = stackalloc byte[123];
        var length = 0;
        if (!string.IsNullOrEmpty(reason))
        {
            var utf8 = System.Text.Encoding.UTF8;
            var chars = reason.AsSpan();
            while (utf8.GetByteCount(chars) > text.Length)
            {
                chars = chars[..(char.IsLowSurrogate(chars[^1]) && chars.Length > 1 ? chars.Length - 2 : chars.Length - 1)];
            }

            length = utf8.GetBytes(chars, text);
        }

        var payload = new byte[2 + length];
        BinaryPrimitives.WriteUInt16BigEndian(payload, (ushort)status);
        text[..length].CopyTo(payload.AsSpan(2));
        return WriteFrameAsync(Opcode.Close, payload, cancellationToken);
    }

    private static int HeaderSize(int length) => length < 126 ? 2 : length <= ushort.MaxValue ? 4 : 10;

    private static int WriteHeader(Span<byte> span, Opcode opcode, int length, bool compressed = false)
    {
        span[0] = (byte)(Fin | (compressed ? Rsv1 : 0) | (byte)opcode);
        if (length < 126)
        {
            span[1] = (byte)length;
            return 2;
        }

        if (length <= ushort.MaxValue)
        {
            span[1] = 126;
            BinaryPrimitives.WriteUInt16BigEndian(span[2..], (ushort)length);
            return 4;
        }

        span[1] = 127;
        BinaryPrimitives.WriteUInt64BigEndian(span[2..], (ulong)length);
        return 10;
    }
}

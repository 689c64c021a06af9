using System.Buffers;
using System.Buffers.Binary;
using System.Net.WebSockets;
using System.Text;

namespace Evolution.Events.EngineIO.Transports;

/// <summary>
/// Reads client frames (masked, RFC 6455) and assembles messages. Pings are answered and pongs
/// ignored here; a protocol violation ends the connection with the close code it deserves.
/// An idle connection holds no receive buffer: it waits with a zero-byte read, rents a buffer for
/// what arrives, and returns it once every byte is consumed. Reads take no cancellation token (a
/// registration per pending read costs memory on every idle socket): the transport aborts the
/// connection instead. With <c>permessage-deflate</c> negotiated, a message whose first frame has RSV1 set is
/// inflated once whole, never past the maximum payload.
/// </summary>
internal sealed class WebSocketFrameReader
{
    private const int ChunkSize = 4096;
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
    private readonly Stream _stream;
    private readonly WebSocketFrameWriter _writer;
    private readonly int _maxPayload;
    private byte[]? _buffer;
    private int _start;
    private int _count;
    private ArrayBufferWriter<byte>? _fragments;
    private byte _fragmentOpcode;
    private bool _fragmentsCompressed;
    private readonly WebSocketDeflate? _deflate;

    public WebSocketFrameReader(Stream stream, WebSocketFrameWriter writer, int maxPayload, WebSocketDeflate? deflate = null)
    {
        _stream = stream;
        _writer = writer;
        _maxPayload = maxPayload;
        _deflate = deflate;
    }

    /// <summary><c>permessage-deflate</c> as negotiated for this connection (null: not negotiated).</summary>
    public WebSocketDeflate? Deflate => _deflate;

    public enum Kind
    {
        Text,
        Binary,
        Close,
        TooLarge,
        ProtocolError,
        InvalidUtf8,

        /// <summary>A compressed message that does not inflate (close 1007, as ws).</summary>
        InvalidCompressed,
    }

    public readonly record struct Message(Kind Kind, string? Text = null, byte[]? Binary = null);

    /// <summary>
    /// True when the reader holds no bytes: <see cref="ReadAsync"/> would start by waiting for data. The transport's
    /// read loop then waits itself (<see cref="PipeInput"/> or <see cref="WaitOnStreamAsync"/>), in its own state
    /// machine, so an idle connection keeps no suspended <see cref="ReadAsync"/> (264 bytes each) alive; once data
    /// is there, <see cref="ReadAsync"/> mostly completes without suspending.
    /// </summary>
    public bool IsIdle => _buffer is null && _count == 0;

    /// <summary>The connection's pipe when it is read on the raw path (no stream read state per idle connection).</summary>
    public System.IO.Pipelines.PipeReader? PipeInput => (_stream as Hosting.DuplexPipeStream)?.Input;

    /// <summary>Waits for data on a stream without a buffer (a zero-byte read returns once data is there).</summary>
#pragma warning disable CA2022 // nothing is read
    public ValueTask<int> WaitOnStreamAsync() => _stream.ReadAsync(Memory<byte>.Empty);
#pragma warning restore CA2022

    /// <summary>Ends a wait on <see cref="PipeInput"/>: nothing consumed or examined, so the next read returns those bytes.</summary>
    public static void Waited(System.IO.Pipelines.PipeReader input, in System.IO.Pipelines.ReadResult waited)
    {
        input.AdvanceTo(waited.Buffer.Start);
        if (waited.IsCanceled)
        {
            throw new OperationCanceledException();
        }
    }

    public async ValueTask<Message> ReadAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            while (_count > 0)
            {
                var parsed = TryParseFrame(out var frame, out var needed);
                if (parsed == Parse.TooLarge)
                {
                    return new Message(Kind.TooLarge);
                }

                if (parsed == Parse.NeedMore)
                {
                    EnsureCapacity(needed);
                    break;
                }

                if (await OnFrameAsync(frame, cancellationToken) is { } message)
                {
                    ReleaseIfConsumed();
                    return message;
                }
            }

            ReleaseIfConsumed();
            if (_buffer is null)
            {
                // idle: wait for data without holding a buffer (a zero-byte read returns once data is there)
                if (_stream is Hosting.DuplexPipeStream pipeStream)
                {
                    // the raw path: wait on the pipe itself, so no read state machine of the stream stays alive per idle connection
                    var input = pipeStream.Input;
                    Waited(input, await input.ReadAsync(cancellationToken));
                }
                else
                {
#pragma warning disable CA2022
                    await _stream.ReadAsync(Memory<byte>.Empty, cancellationToken);
#pragma warning restore CA2022
                }
                _buffer = ArrayPool<byte>.Shared.Rent(ChunkSize);
                _start = 0;
            }

            var read = await _stream.ReadAsync(_buffer.AsMemory(_start + _count), cancellationToken);
            if (read == 0)
            {
                return new Message(Kind.Close);
            }

            _count += read;
        }
    }

    /// <summary>Returns the receive buffer, if one is held (the connection ended).</summary>
    public void Complete()
    {
        _count = 0;
        ReleaseIfConsumed();
    }

    private enum Parse
    {
        Frame,
        NeedMore,
        TooLarge,
    }

    private readonly record struct Frame(bool Fin, byte Rsv, byte Opcode, bool Masked, byte[] Payload);

    private Parse TryParseFrame(out Frame frame, out int needed)
    {
        frame = default;
        var data = _buffer.AsSpan(_start, _count);
        needed = 14;
        if (data.Length < 2)
        {
            return Parse.NeedMore;
        }

        var masked = (data[1] & 0x80) != 0;
        var len7 = data[1] & 0x7F;
        var extra = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
        var headerSize = 2 + extra + (masked ? 4 : 0);
        if (data.Length < headerSize)
        {
            return Parse.NeedMore;
        }

        var length = extra switch
        {
            0 => len7,
            2 => BinaryPrimitives.ReadUInt16BigEndian(data[2..]),
            _ => (long)Math.Min(BinaryPrimitives.ReadUInt64BigEndian(data[2..]), long.MaxValue),
        };
        if (length > _maxPayload)
        {
            return Parse.TooLarge;
        }

        needed = headerSize + (int)length;
        if (data.Length < needed)
        {
            return Parse.NeedMore;
        }

        var payload = data.Slice(headerSize, (int)length).ToArray();
        if (masked)
        {
            var mask = data.Slice(headerSize - 4, 4);
            for (var i = 0; i < payload.Length; i++)
            {
                payload[i] ^= mask[i & 3];
            }
        }

        frame = new Frame((data[0] & 0x80) != 0, (byte)(data[0] & 0x70), (byte)(data[0] & 0x0F), masked, payload);
        _start += needed;
        _count -= needed;
        return Parse.Frame;
    }

    /// <summary>
    /// Makes room for more of a frame of <paramref name="needed"/> bytes. The buffer grows with the
    /// bytes received, never with the length a header announces: it compacts when there is no room
    /// left at its end, and only when it is full does it double (up to what the frame needs). A
    /// header that announces a megabyte and sends nothing after it costs one 4 KiB chunk.
    /// </summary>
    private void EnsureCapacity(int needed)
    {
        var buffer = _buffer!;
        if (_start + _count < buffer.Length)
        {
            return;
        }

        if (_start > 0)
        {
            buffer.AsSpan(_start, _count).CopyTo(buffer);
            _start = 0;
            if (_count < buffer.Length)
            {
                return;
            }
        }

        var target = ArrayPool<byte>.Shared.Rent(Math.Min(needed, Math.Max(buffer.Length, ChunkSize / 2) * 2));
        buffer.AsSpan(0, _count).CopyTo(target);
        ArrayPool<byte>.Shared.Return(buffer);
        _buffer = target;
    }

    private void ReleaseIfConsumed()
    {
        if (_count == 0 && _buffer is { } buffer)
        {
            _buffer = null;
            _start = 0;
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async ValueTask<Message?> OnFrameAsync(Frame frame, CancellationToken cancellationToken)
    {
        // RSV1 marks a compressed message: only with permessage-deflate, only on a message's first frame
        var compressed = frame.Rsv == 0x40 && _deflate is not null && frame.Opcode is 0x1 or 0x2;
        if ((frame.Rsv != 0 && !compressed) || !frame.Masked)
        {
            return new Message(Kind.ProtocolError);
        }

        switch (frame.Opcode)
        {
            case 0x8:
                return new Message(Kind.Close);
            case 0x9 when frame.Fin && frame.Payload.Length <= 125:
                await _writer.WriteFrameAsync(WebSocketFrameWriter.Opcode.Pong, frame.Payload, cancellationToken);
                return null;
            case 0xA when frame.Fin && frame.Payload.Length <= 125:
                return null;
            case 0x1 or 0x2 when _fragments is null:
                if (frame.Fin)
                {
                    return compressed ? Inflate(frame.Opcode, frame.Payload) : Decode(frame.Opcode, frame.Payload);
                }

                _fragments = new ArrayBufferWriter<byte>(Math.Max(256, frame.Payload.Length * 2));
                _fragmentOpcode = frame.Opcode;
                _fragmentsCompressed = compressed;
                _fragments.Write(frame.Payload);
                return null;
            case 0x0 when _fragments is not null:
                if (_fragments.WrittenCount + frame.Payload.Length > _maxPayload)
                {
                    return new Message(Kind.TooLarge);
                }

                _fragments.Write(frame.Payload);
                if (!frame.Fin)
                {
                    return null;
                }

                if (_fragmentsCompressed)
                {
                    var inflated = Inflate(_fragmentOpcode, _fragments.WrittenSpan);
                    _fragments = null;
                    return inflated;
                }

                var whole = _fragments.WrittenSpan.ToArray();
                _fragments = null;
                return Decode(_fragmentOpcode, whole);
            default:
                return new Message(Kind.ProtocolError);
        }
    }

    private Message Inflate(byte opcode, ReadOnlySpan<byte> compressed) =>
        WebSocketDeflate.Inflate(compressed, _maxPayload, out var message) switch
        {
            WebSocketDeflate.InflateResult.Ok => Decode(opcode, message!),
            WebSocketDeflate.InflateResult.TooLarge => new Message(Kind.TooLarge),
            _ => new Message(Kind.InvalidCompressed),
        };

    private static Message Decode(byte opcode, byte[] payload)
    {
        if (opcode == 0x2)
        {
            return new Message(Kind.Binary, Binary: payload);
        }

        try
        {
            return new Message(Kind.Text, Text: StrictUtf8.GetString(payload));
        }
        catch (DecoderFallbackException)
        {
            return new Message(Kind.InvalidUtf8);
        }
    }
}

internal static class WebSocketCloseCodes
{
    public static WebSocketCloseStatus For(WebSocketFrameReader.Kind kind) => kind switch
    {
        WebSocketFrameReader.Kind.TooLarge => WebSocketCloseStatus.MessageTooBig,
        WebSocketFrameReader.Kind.InvalidUtf8 or WebSocketFrameReader.Kind.InvalidCompressed => WebSocketCloseStatus.InvalidPayloadData,
        WebSocketFrameReader.Kind.ProtocolError => WebSocketCloseStatus.ProtocolError,
        _ => WebSocketCloseStatus.NormalClosure,
    };
}

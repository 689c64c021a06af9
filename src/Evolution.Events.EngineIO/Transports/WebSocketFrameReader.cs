using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net.WebSockets;
using System.Text;

namespace Evolution.Events.EngineIO.Transports;

/// <summary>
/// Reads client frames (masked, RFC 6455) and assembles messages. Pings are answered and pongs
/// ignored here; a protocol violation ends the connection with the close code it deserves.
/// Reads start with a zero-byte read, so an idle connection holds no receive buffer.
/// </summary>
internal sealed class WebSocketFrameReader
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
    private readonly PipeReader _reader;
    private readonly WebSocketFrameWriter _writer;
    private readonly int _maxPayload;
    private ArrayBufferWriter<byte>? _fragments;
    private byte _fragmentOpcode;

    public WebSocketFrameReader(Stream stream, WebSocketFrameWriter writer, int maxPayload)
    {
        _reader = PipeReader.Create(stream, new StreamPipeReaderOptions(
            bufferSize: 4096, minimumReadSize: 1024, leaveOpen: true, useZeroByteReads: true));
        _writer = writer;
        _maxPayload = maxPayload;
    }

    public enum Kind
    {
        Text,
        Binary,
        Close,
        TooLarge,
        ProtocolError,
        InvalidUtf8,
    }

    public readonly record struct Message(Kind Kind, string? Text = null, byte[]? Binary = null);

    public async ValueTask<Message> ReadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await _reader.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            Message? message = null;
            while (message is null && TryReadFrame(ref buffer, out var frame))
            {
                message = await OnFrameAsync(frame, cancellationToken);
            }

            if (message is null && buffer.Length > 0 && DeclaredTooLarge(buffer))
            {
                message = new Message(Kind.TooLarge);
            }

            if (message is { } m)
            {
                // frames may remain in the buffer: examine no further, so the next read sees them at once
                _reader.AdvanceTo(buffer.Start);
                return m;
            }

            _reader.AdvanceTo(buffer.Start, buffer.End);

            if (result.IsCompleted)
            {
                return new Message(Kind.Close);
            }
        }
    }

    public void Complete() => _reader.Complete();

    private readonly record struct Frame(bool Fin, byte Rsv, byte Opcode, bool Masked, byte[] Payload);

    private bool TryReadFrame(ref ReadOnlySequence<byte> buffer, out Frame frame)
    {
        frame = default;
        if (!TryReadHeader(buffer, out var fin, out var rsv, out var opcode, out var masked, out var length, out var headerSize)
            || length > _maxPayload || buffer.Length < headerSize + length)
        {
            return false;
        }

        Span<byte> mask = stackalloc byte[4];
        if (masked)
        {
            buffer.Slice(headerSize - 4, 4).CopyTo(mask);
        }

        var payload = buffer.Slice(headerSize, length).ToArray();
        if (masked)
        {
            for (var i = 0; i < payload.Length; i++)
            {
                payload[i] ^= mask[i & 3];
            }
        }

        buffer = buffer.Slice(headerSize + length);
        frame = new Frame(fin, rsv, opcode, masked, payload);
        return true;
    }

    private bool DeclaredTooLarge(in ReadOnlySequence<byte> buffer) =>
        TryReadHeader(buffer, out _, out _, out _, out _, out var length, out _) && length > _maxPayload;

    private static bool TryReadHeader(
        in ReadOnlySequence<byte> buffer, out bool fin, out byte rsv, out byte opcode, out bool masked, out long length, out int headerSize)
    {
        fin = masked = false;
        rsv = opcode = 0;
        length = headerSize = 0;
        Span<byte> head = stackalloc byte[14];
        var available = (int)Math.Min(buffer.Length, 14);
        if (available < 2)
        {
            return false;
        }

        buffer.Slice(0, available).CopyTo(head);
        fin = (head[0] & 0x80) != 0;
        rsv = (byte)(head[0] & 0x70);
        opcode = (byte)(head[0] & 0x0F);
        masked = (head[1] & 0x80) != 0;
        var len7 = head[1] & 0x7F;
        var extra = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
        headerSize = 2 + extra + (masked ? 4 : 0);
        if (available < headerSize)
        {
            return false;
        }

        length = extra switch
        {
            0 => len7,
            2 => BinaryPrimitives.ReadUInt16BigEndian(head[2..]),
            _ => (long)Math.Min(BinaryPrimitives.ReadUInt64BigEndian(head[2..]), long.MaxValue),
        };
        return true;
    }

    private async ValueTask<Message?> OnFrameAsync(Frame frame, CancellationToken cancellationToken)
    {
        if (frame.Rsv != 0 || !frame.Masked)
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
                    return Decode(frame.Opcode, frame.Payload);
                }

                _fragments = new ArrayBufferWriter<byte>(frame.Payload.Length * 2);
                _fragmentOpcode = frame.Opcode;
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

                var whole = _fragments.WrittenSpan.ToArray();
                _fragments = null;
                return Decode(_fragmentOpcode, whole);
            default:
                return new Message(Kind.ProtocolError);
        }
    }

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
        WebSocketFrameReader.Kind.InvalidUtf8 => WebSocketCloseStatus.InvalidPayloadData,
        WebSocketFrameReader.Kind.ProtocolError => WebSocketCloseStatus.ProtocolError,
        _ => WebSocketCloseStatus.NormalClosure,
    };
}

using System.Text;

namespace Evolution.Events.EngineIO.Protocol;

/// <summary>
/// One Engine.IO packet, already encoded. A text packet holds the UTF-8 bytes of the whole packet,
/// type digit included (<c>42["ev",…]</c>); a binary packet holds the raw message bytes. The bytes are
/// shared, never copied, when the same packet goes to many sessions.
/// </summary>
public readonly struct OutboundPacket
{
    private OutboundPacket(EnginePacketType type, ReadOnlyMemory<byte> bytes, bool isBinary)
    {
        Type = type;
        Bytes = bytes;
        IsBinary = isBinary;
    }

    /// <summary>The Engine.IO packet type.</summary>
    public EnginePacketType Type { get; }

    /// <summary>The encoded bytes (for text, the UTF-8 packet with its type digit); shared, never to be changed.</summary>
    public ReadOnlyMemory<byte> Bytes { get; }

    /// <summary>Whether the packet is a binary message (a WebSocket binary frame, a <c>b</c> payload in base64 polling).</summary>
    public bool IsBinary { get; }

    /// <summary>The server's heartbeat ping (revision 4).</summary>
    internal static OutboundPacket Ping { get; } = Control(EnginePacketType.Ping);

    /// <summary>Engine.IO 3's answer to a client's ping.</summary>
    internal static OutboundPacket Pong { get; } = Control(EnginePacketType.Pong);

    /// <summary>A no-op, sent to end a pending poll during an upgrade.</summary>
    internal static OutboundPacket Noop { get; } = Control(EnginePacketType.Noop);

    /// <summary>The close packet.</summary>
    internal static OutboundPacket Close { get; } = Control(EnginePacketType.Close);

    /// <summary>A message packet from UTF-8 bytes that already start with the <c>4</c> digit.</summary>
    public static OutboundPacket FromEncodedText(ReadOnlyMemory<byte> utf8WithType)
    {
        if (utf8WithType.Length == 0 || utf8WithType.Span[0] != (byte)'4')
        {
            throw new ArgumentException("an encoded message packet starts with '4'", nameof(utf8WithType));
        }

        return new OutboundPacket(EnginePacketType.Message, utf8WithType, isBinary: false);
    }

    /// <summary>A text message packet; <paramref name="text"/> is the message without the type digit.</summary>
    public static OutboundPacket Message(string text)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(text) + 1];
        bytes[0] = (byte)'4';
        Encoding.UTF8.GetBytes(text, bytes.AsSpan(1));
        return new OutboundPacket(EnginePacketType.Message, bytes, isBinary: false);
    }

    /// <summary>A binary message packet around <paramref name="data"/> (not copied: it must not change afterwards).</summary>
    public static OutboundPacket Binary(ReadOnlyMemory<byte> data) => new(EnginePacketType.Message, data, isBinary: true);

    /// <summary>
    /// A text message that is only UTF-8 bytes, without the Engine.IO type digit: for a <see cref="QueuedWebSocket"/>
    /// (a plain WebSocket), never for an Engine.IO session.
    /// </summary>
    internal static OutboundPacket PlainText(ReadOnlyMemory<byte> utf8) => new(EnginePacketType.Message, utf8, isBinary: false);

    internal static OutboundPacket Text(EnginePacketType type, string payload)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(payload) + 1];
        bytes[0] = (byte)('0' + (int)type);
        Encoding.UTF8.GetBytes(payload, bytes.AsSpan(1));
        return new OutboundPacket(type, bytes, isBinary: false);
    }

    private static OutboundPacket Control(EnginePacketType type) =>
        new(type, new[] { (byte)('0' + (int)type) }, isBinary: false);
}

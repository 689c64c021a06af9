namespace Evolution.Events.SocketIO.Protocol;

/// <summary>
/// How Socket.IO packets travel over Engine.IO (socket.io's <c>parser</c> option). The server encodes every
/// packet once in the default form (<see cref="SocketPacketEncoder"/>: a text packet and its binary attachments);
/// that form is what adapters, the recovery store and scale-out see. A parser turns it into its own wire form
/// where a packet leaves for a connection, and decodes what a connection sends.
/// </summary>
/// <remarks>
/// <see cref="Encode"/> is called for every connection a packet is written to; a parser whose form differs should
/// keep it on the packet (<see cref="EncodedPacket.GetOrAddForm"/>) so a broadcast is encoded once, not once per socket.
/// </remarks>
public interface ISocketIOParser
{
    /// <summary>The wire form of <paramref name="packet"/> (given in the default form).</summary>
    EncodedPacket Encode(EncodedPacket packet);

    /// <summary>Decodes one Engine.IO text message; fails with a clear <paramref name="failure"/> on bad input.</summary>
    bool TryDecode(string text, SocketPacketLimits limits, out SocketPacket? packet, out string? failure);

    /// <summary>Decodes one Engine.IO binary message (already bounded by the engine's max payload).</summary>
    bool TryDecode(byte[] data, SocketPacketLimits limits, out SocketPacket? packet, out string? failure);
}

/// <summary>
/// socket.io-parser's form (the default): a text packet, then one binary message per attachment. The server reads
/// and writes this form directly (attachments are reassembled per connection); this class names it for
/// <see cref="SocketIOOptions.Parser"/>.
/// </summary>
public sealed class DefaultSocketIOParser : ISocketIOParser
{
    /// <summary>The one instance.</summary>
    public static DefaultSocketIOParser Instance { get; } = new();

    private DefaultSocketIOParser()
    {
    }

    /// <summary>The packet as it is: the default form is this parser's wire form.</summary>
    public EncodedPacket Encode(EncodedPacket packet) => packet;

    /// <summary>Decodes a text packet with <see cref="SocketPacketDecoder"/>.</summary>
    public bool TryDecode(string text, SocketPacketLimits limits, out SocketPacket? packet, out string? failure) =>
        SocketPacketDecoder.TryDecode(text, limits, out packet, out failure);

    /// <summary>A binary message is only an attachment in this form: alone, it is an error.</summary>
    public bool TryDecode(byte[] data, SocketPacketLimits limits, out SocketPacket? packet, out string? failure)
    {
        packet = null;
        failure = "got binary data outside a binary packet";
        return false;
    }
}

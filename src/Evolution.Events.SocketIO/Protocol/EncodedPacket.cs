using Evolution.Events.EngineIO.Protocol;

namespace Evolution.Events.SocketIO.Protocol;

/// <summary>
/// A Socket.IO packet encoded once into Engine.IO packets: the text packet, then one binary
/// packet per attachment. The same instance is written to every socket of a broadcast.
/// </summary>
public sealed class EncodedPacket
{
    public EncodedPacket(OutboundPacket text, IReadOnlyList<OutboundPacket> attachments)
    {
        Text = text;
        Attachments = attachments;
    }

    public OutboundPacket Text { get; }

    public IReadOnlyList<OutboundPacket> Attachments { get; }

    /// <summary>The text form without the Engine.IO type digit, e.g. <c>2["ev",1]</c> (for tests and logs).</summary>
    public override string ToString() => System.Text.Encoding.UTF8.GetString(Text.Bytes.Span[1..]);
}

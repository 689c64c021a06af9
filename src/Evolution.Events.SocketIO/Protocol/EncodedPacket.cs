using Evolution.Events.EngineIO.Protocol;

namespace Evolution.Events.SocketIO.Protocol;

/// <summary>
/// A Socket.IO packet encoded once into Engine.IO packets: the text packet, then one binary
/// packet per attachment. The same instance is written to every socket of a broadcast.
/// </summary>
public sealed class EncodedPacket
{
    /// <summary>A packet from its text Engine.IO packet and its binary attachments (in order).</summary>
    public EncodedPacket(OutboundPacket text, IReadOnlyList<OutboundPacket> attachments)
        : this(text, attachments, null)
    {
    }

    /// <summary>A packet that carries a connection-state-recovery offset (already written as its last argument).</summary>
    public EncodedPacket(OutboundPacket text, IReadOnlyList<OutboundPacket> attachments, string? offset)
    {
        Text = text;
        Attachments = attachments;
        HasAttachments = attachments.Count > 0;
        Offset = offset;
    }

    private ParserForm? _form;

    /// <summary>The text packet (or, in a parser's own form, its first message).</summary>
    public OutboundPacket Text { get; }

    /// <summary>The binary messages that follow <see cref="Text"/>, one per attachment.</summary>
    public IReadOnlyList<OutboundPacket> Attachments { get; }

    /// <summary>Whether <see cref="Attachments"/> has any (read per recipient of a broadcast, without walking the list).</summary>
    internal bool HasAttachments { get; }

    /// <summary>The recovery offset appended as the last event argument, when the adapter kept this packet for replay.</summary>
    public string? Offset { get; }

    /// <summary>Bytes of the text packet and of every attachment.</summary>
    public long Size
    {
        get
        {
            long size = Text.Bytes.Length;
            foreach (var attachment in Attachments)
            {
                size += attachment.Bytes.Length;
            }

            return size;
        }
    }

    /// <summary>
    /// True for an EVENT or BINARY_EVENT without an ack id, the packets connection state recovery
    /// keeps. Read from the encoded header: <c>4</c>, the type, <c>N-</c> for binary, <c>/nsp,</c>, the ack id.
    /// </summary>
    public bool IsEventWithoutAck
    {
        get
        {
            var span = Text.Bytes.Span;
            if (Text.IsBinary || span.Length < 4 || span[0] != (byte)'4' || span[^1] != (byte)']')
            {
                return false;
            }

            var i = 2;
            if (span[1] == (byte)('0' + (int)SocketPacketType.BinaryEvent))
            {
                while (i < span.Length && span[i] is >= (byte)'0' and <= (byte)'9')
                {
                    i++;
                }

                if (i >= span.Length || span[i] != (byte)'-')
                {
                    return false;
                }

                i++;
            }
            else if (span[1] != (byte)('0' + (int)SocketPacketType.Event))
            {
                return false;
            }

            if (i < span.Length && span[i] == (byte)'/')
            {
                var comma = span[i..].IndexOf((byte)',');
                if (comma < 0)
                {
                    return false;
                }

                i += comma + 1;
            }

            return i < span.Length && span[i] == (byte)'[';
        }
    }

    /// <summary>
    /// This event with <paramref name="offset"/> appended as its last argument (a JSON string): one new
    /// text buffer, the attachments shared. Only for <see cref="IsEventWithoutAck"/> packets.
    /// </summary>
    public EncodedPacket WithOffset(string offset)
    {
        var text = Text.Bytes.Span;
        var bytes = new byte[text.Length + offset.Length + 3];
        text[..^1].CopyTo(bytes);
        var i = text.Length - 1;
        bytes[i++] = (byte)',';
        bytes[i++] = (byte)'"';
        i += System.Text.Encoding.ASCII.GetBytes(offset, bytes.AsSpan(i));
        bytes[i++] = (byte)'"';
        bytes[i] = (byte)']';
        return new EncodedPacket(OutboundPacket.FromEncodedText(bytes), Attachments, offset);
    }

    /// <summary>
    /// This packet in <paramref name="parser"/>'s wire form, made by <paramref name="encode"/> the first time and kept
    /// on the packet, so a broadcast written to many connections is encoded once (two threads may both encode it once).
    /// </summary>
    public EncodedPacket GetOrAddForm(ISocketIOParser parser, Func<EncodedPacket, EncodedPacket> encode)
    {
        var form = Volatile.Read(ref _form);
        if (form is not null && ReferenceEquals(form.Parser, parser))
        {
            return form.Packet;
        }

        var packet = encode(this);
        Volatile.Write(ref _form, new ParserForm(parser, packet));
        return packet;
    }

    /// <summary>
    /// The parts of the default text form: the type (BINARY_EVENT/BINARY_ACK when there are attachments), the
    /// namespace, the ack id and the JSON data (empty when none), with <c>{"_placeholder":true,"num":n}</c> for
    /// attachment n.
    /// </summary>
    public (SocketPacketType Type, string Namespace, long? Id, ReadOnlyMemory<byte> Json) GetParts()
    {
        var bytes = Text.Bytes;
        var text = bytes.Span;
        if (Text.IsBinary || text.Length < 2 || text[0] != (byte)'4')
        {
            throw new InvalidOperationException("not a packet in the default form");
        }

        var type = (SocketPacketType)(text[1] - '0');
        var i = 2;
        if (type is SocketPacketType.BinaryEvent or SocketPacketType.BinaryAck)
        {
            i += text[i..].IndexOf((byte)'-') + 1;
        }

        var nsp = SocketPacket.MainNamespace;
        if (i < text.Length && text[i] == (byte)'/')
        {
            var comma = text[i..].IndexOf((byte)',');
            var end = comma < 0 ? text.Length : i + comma;
            nsp = System.Text.Encoding.UTF8.GetString(text[i..end]);
            i = comma < 0 ? text.Length : end + 1;
        }

        long? id = null;
        var start = i;
        long value = 0;
        while (i < text.Length && text[i] is >= (byte)'0' and <= (byte)'9')
        {
            value = (value * 10) + (text[i] - '0');
            i++;
        }

        if (i > start)
        {
            id = value;
        }

        return (type, nsp, id, bytes[i..]);
    }

    /// <summary>The text form without the Engine.IO type digit, e.g. <c>2["ev",1]</c> (for tests and logs).</summary>
    public override string ToString() => System.Text.Encoding.UTF8.GetString(Text.Bytes.Span[1..]);

    private sealed record ParserForm(ISocketIOParser Parser, EncodedPacket Packet);
}

using System.Buffers;
using System.Globalization;
using System.Text.Json;
using Evolution.Events.EngineIO.Protocol;

namespace Evolution.Events.SocketIO.Protocol;

/// <summary>
/// Encodes Socket.IO 5 packets straight into Engine.IO message packets (one buffer each). Events and acks are public
/// (e.g. to encode a broadcast once for <see cref="BroadcastOperator.Emit(EncodedPacket)"/>); the server's own
/// CONNECT, CONNECT_ERROR and DISCONNECT packets are internal.
/// </summary>
public static class SocketPacketEncoder
{
    /// <summary>An EVENT (BINARY_EVENT when an argument is binary) of <paramref name="eventName"/> with <paramref name="args"/>, asking for an ack when <paramref name="ackId"/> is set.</summary>
    public static EncodedPacket Event(string nsp, string eventName, ReadOnlySpan<object?> args, long? ackId = null)
    {
        var attachments = new List<ReadOnlyMemory<byte>>();
        var json = new ArrayBufferWriter<byte>(128);
        using (var writer = new Utf8JsonWriter(json, JsonArguments.WriterOptions))
        {
            writer.WriteStartArray();
            writer.WriteStringValue(eventName);
            foreach (var arg in args)
            {
                JsonArguments.WriteValue(writer, arg, attachments);
            }

            writer.WriteEndArray();
        }

        var type = attachments.Count > 0 ? SocketPacketType.BinaryEvent : SocketPacketType.Event;
        return Compose(type, nsp, ackId, json.WrittenSpan, attachments);
    }

    /// <summary>An ACK (BINARY_ACK when an argument is binary) answering <paramref name="ackId"/> with <paramref name="args"/>.</summary>
    public static EncodedPacket Ack(string nsp, long ackId, ReadOnlySpan<object?> args)
    {
        var attachments = new List<ReadOnlyMemory<byte>>();
        var json = new ArrayBufferWriter<byte>(64);
        using (var writer = new Utf8JsonWriter(json, JsonArguments.WriterOptions))
        {
            writer.WriteStartArray();
            foreach (var arg in args)
            {
                JsonArguments.WriteValue(writer, arg, attachments);
            }

            writer.WriteEndArray();
        }

        var type = attachments.Count > 0 ? SocketPacketType.BinaryAck : SocketPacketType.Ack;
        return Compose(type, nsp, ackId, json.WrittenSpan, attachments);
    }

    /// <summary>The CONNECT answer: <c>{"sid":…}</c>, with <c>"pid"</c> when connection state recovery is on.</summary>
    internal static EncodedPacket Connect(string nsp, string sid, string? pid = null) =>
        Compose(SocketPacketType.Connect, nsp, null, pid is null
            ? JsonSerializer.SerializeToUtf8Bytes(new SidPayload(sid))
            : JsonSerializer.SerializeToUtf8Bytes(new SidPidPayload(sid, pid)), []);

    /// <summary>The CONNECT answer to a Socket.IO 2.x client (protocol 4): no payload (<c>0</c>, <c>0/admin,</c>).</summary>
    internal static EncodedPacket ConnectWithoutPayload(string nsp) => Compose(SocketPacketType.Connect, nsp, null, [], []);

    /// <summary>A refusal for a Socket.IO 2.x client: the error's data, or its message, as the whole payload (<c>4"Not authorized"</c>).</summary>
    internal static EncodedPacket ConnectErrorValue(string nsp, object value)
    {
        var attachments = new List<ReadOnlyMemory<byte>>();
        var json = new ArrayBufferWriter<byte>(64);
        using (var writer = new Utf8JsonWriter(json, JsonArguments.WriterOptions))
        {
            JsonArguments.WriteValue(writer, value, attachments);
        }

        return Compose(SocketPacketType.ConnectError, nsp, null, json.WrittenSpan, []);
    }

    /// <summary>A CONNECT_ERROR refusing the namespace: <c>{"message":…,"data":…}</c>.</summary>
    internal static EncodedPacket ConnectError(string nsp, string message, object? data = null)
    {
        var attachments = new List<ReadOnlyMemory<byte>>();
        var json = new ArrayBufferWriter<byte>(64);
        using (var writer = new Utf8JsonWriter(json, JsonArguments.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("message", message);
            if (data is not null)
            {
                writer.WritePropertyName("data");
                JsonArguments.WriteValue(writer, data, attachments);
            }

            writer.WriteEndObject();
        }

        return Compose(SocketPacketType.ConnectError, nsp, null, json.WrittenSpan, []);
    }

    /// <summary>A DISCONNECT of the namespace (the server disconnects the socket).</summary>
    internal static EncodedPacket Disconnect(string nsp) => Compose(SocketPacketType.Disconnect, nsp, null, [], []);

    /// <summary>
    /// A packet from its parts (a scale-out adapter's decoded packet): <paramref name="json"/> is its data with
    /// <c>{"_placeholder":true,"num":n}</c> for each attachment; EVENT/ACK become BINARY_* when there are attachments.
    /// </summary>
    internal static EncodedPacket FromParts(SocketPacketType type, string nsp, long? id, ReadOnlySpan<byte> json, List<ReadOnlyMemory<byte>> attachments)
    {
        if (attachments.Count > 0)
        {
            type = type switch
            {
                SocketPacketType.Event => SocketPacketType.BinaryEvent,
                SocketPacketType.Ack => SocketPacketType.BinaryAck,
                _ => type,
            };
        }

        return Compose(type, nsp, id, json, attachments);
    }

    private static EncodedPacket Compose(
        SocketPacketType type, string nsp, long? id, ReadOnlySpan<byte> json, List<ReadOnlyMemory<byte>> attachments)
    {
        var buffer = new ArrayBufferWriter<byte>(json.Length + nsp.Length + 24);
        Span<byte> head = stackalloc byte[24];
        head[0] = (byte)'4';
        head[1] = (byte)('0' + (int)type);
        var n = 2;
        if (attachments.Count > 0)
        {
            attachments.Count.TryFormat(head[n..], out var w, provider: CultureInfo.InvariantCulture);
            n += w;
            head[n++] = (byte)'-';
        }

        buffer.Write(head[..n]);
        if (nsp != SocketPacket.MainNamespace)
        {
            var span = buffer.GetSpan(System.Text.Encoding.UTF8.GetMaxByteCount(nsp.Length) + 1);
            var written = System.Text.Encoding.UTF8.GetBytes(nsp, span);
            span[written] = (byte)',';
            buffer.Advance(written + 1);
        }

        if (id is { } ackId)
        {
            var span = buffer.GetSpan(20);
            ackId.TryFormat(span, out var w, provider: CultureInfo.InvariantCulture);
            buffer.Advance(w);
        }

        buffer.Write(json);
        var frames = attachments.Count == 0 ? [] : attachments.ConvertAll(OutboundPacket.Binary).ToArray();
        return new EncodedPacket(OutboundPacket.FromEncodedText(buffer.WrittenMemory), frames);
    }

    private sealed record SidPayload(string sid);

    private sealed record SidPidPayload(string sid, string pid);
}

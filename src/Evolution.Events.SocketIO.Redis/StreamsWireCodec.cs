using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Evolution.Events.EngineIO.Protocol;
using Evolution.Events.SocketIO.Adapters;
using Evolution.Events.SocketIO.Protocol;
using MessagePack;
using StackExchange.Redis;

namespace Evolution.Events.SocketIO.Redis;

/// <summary>The message types of socket.io-adapter's <c>ClusterAdapter</c> (its numbering, on the wire).</summary>
internal enum ClusterMessageType
{
    InitialHeartbeat = 1,
    Heartbeat = 2,
    Broadcast = 3,
    SocketsJoin = 4,
    SocketsLeave = 5,
    DisconnectSockets = 6,
    FetchSockets = 7,
    FetchSocketsResponse = 8,
    ServerSideEmit = 9,
    ServerSideEmitResponse = 10,
    BroadcastClientCount = 11,
    BroadcastAck = 12,
    AdapterClose = 13,
}

/// <summary>
/// A decoded <c>ClusterMessage</c>: sender, namespace, type and data (binary values left as
/// <c>{"_placeholder":true,"num":i}</c> in <see cref="Data"/>, their bytes in <see cref="Attachments"/>).
/// </summary>
internal sealed record ClusterMessage(string Uid, string Nsp, ClusterMessageType Type, JsonObject? Data, List<ReadOnlyMemory<byte>> Attachments);

/// <summary>
/// The wire format of <c>@socket.io/redis-streams-adapter</c> 0.3.x. A stream entry has the fields <c>uid</c>,
/// <c>nsp</c>, <c>type</c> (the number as a string) and <c>data</c>: <c>JSON.stringify(data)</c>, or, when the data
/// holds binary, base64 of its msgpack. Ephemeral messages (broadcasts with acks, server-side emits, fetches) and
/// responses go through pub/sub as msgpack of the whole message <c>{type, data, uid, nsp}</c>. A session is kept as
/// base64 of the msgpack of <c>{sid, pid, rooms, data}</c> (plus our <c>joinOffset</c>, which Node ignores).
/// </summary>
internal static class StreamsWireCodec
{
    /// <summary>The fields of a stream entry for a message (binary: base64 msgpack data, as Node writes it).</summary>
    public static NameValueEntry[] EncodeEntry(string uid, string nsp, ClusterMessageType type, JsonObject? data, IReadOnlyList<OutboundPacket> attachments)
    {
        var fields = new List<NameValueEntry>(4)
        {
            new("uid", uid),
            new("nsp", nsp),
            new("type", ((int)type).ToString(CultureInfo.InvariantCulture)),
        };
        if (data is not null)
        {
            fields.Add(new("data", attachments.Count > 0 ? Convert.ToBase64String(ToMsgpack(data, attachments)) : data.ToJsonString()));
        }

        return [.. fields];
    }

    /// <summary>Reads a stream entry's fields (a Node or our own). Throws <see cref="FormatException"/> on a malformed one.</summary>
    public static ClusterMessage DecodeEntry(IReadOnlyDictionary<string, RedisValue> fields)
    {
        var uid = fields.TryGetValue("uid", out var u) ? (string?)u ?? "" : "";
        var nsp = fields.TryGetValue("nsp", out var n) ? (string?)n ?? "" : "";
        if (!fields.TryGetValue("type", out var t) || !int.TryParse((string?)t, NumberStyles.Integer, CultureInfo.InvariantCulture, out var type))
        {
            throw new FormatException("stream entry: no message type");
        }

        var attachments = new List<ReadOnlyMemory<byte>>();
        JsonObject? data = null;
        if (fields.TryGetValue("data", out var d) && !d.IsNullOrEmpty)
        {
            var text = (string)d!;
            data = text.StartsWith('{')
                ? JsonNode.Parse(text) as JsonObject ?? throw new FormatException("stream entry: data is not an object")
                : FromMsgpack(Convert.FromBase64String(text), attachments) as JsonObject ?? throw new FormatException("stream entry: data is not a map");
        }

        return new ClusterMessage(uid, nsp, (ClusterMessageType)type, data, attachments);
    }

    /// <summary>msgpack of <c>{type, data, uid, nsp}</c>, a pub/sub message.</summary>
    public static byte[] EncodePubSub(string uid, string nsp, ClusterMessageType type, JsonObject? data, IReadOnlyList<OutboundPacket> attachments)
    {
        var message = new JsonObject { ["type"] = (int)type };
        if (data is not null)
        {
            message["data"] = data;
        }

        message["uid"] = uid;
        message["nsp"] = nsp;
        return ToMsgpack(message, attachments);
    }

    /// <summary>Reads a pub/sub message. Throws <see cref="FormatException"/> (or a msgpack error) on a malformed one.</summary>
    public static ClusterMessage DecodePubSub(ReadOnlyMemory<byte> bytes)
    {
        var attachments = new List<ReadOnlyMemory<byte>>();
        var message = FromMsgpack(bytes, attachments) as JsonObject ?? throw new FormatException("pub/sub message: not a map");
        if (message["type"] is not JsonValue typeValue || !typeValue.TryGetValue<int>(out var type))
        {
            throw new FormatException("pub/sub message: no message type");
        }

        return new ClusterMessage(Text(message["uid"]) ?? "", Text(message["nsp"]) ?? "", (ClusterMessageType)type, message["data"] as JsonObject, attachments);
    }

    /// <summary>
    /// socket.io's packet object <c>{type, data, nsp, id?}</c> of an encoded packet of ours (BINARY_* written as
    /// EVENT/ACK); its binary arguments stay placeholders, resolved against the packet's attachments when written.
    /// </summary>
    public static JsonObject PacketObject(EncodedPacket packet)
    {
        var text = packet.Text.Bytes;
        var (type, nsp, id, jsonStart) = RedisWireCodec.SplitText(text.Span);
        var data = jsonStart < text.Length ? JsonNode.Parse(text.Span[jsonStart..]) : new JsonArray();
        var obj = new JsonObject { ["type"] = (int)type, ["data"] = data, ["nsp"] = nsp };
        if (id is { } ackId)
        {
            obj["id"] = ackId;
        }

        return obj;
    }

    /// <summary>Encodes a received packet object once, with <paramref name="ackId"/> instead of its own id when given.</summary>
    public static EncodedPacket ToPacket(JsonObject packet, List<ReadOnlyMemory<byte>> attachments, long? ackId = null)
    {
        var type = packet["type"] is JsonValue t && t.TryGetValue<int>(out var ty) ? (SocketPacketType)ty : SocketPacketType.Event;
        if (type == SocketPacketType.BinaryEvent)
        {
            type = SocketPacketType.Event;
        }
        else if (type == SocketPacketType.BinaryAck)
        {
            type = SocketPacketType.Ack;
        }

        if (type is not (SocketPacketType.Event or SocketPacketType.Ack))
        {
            throw new FormatException($"broadcast message: packet type {(int)type} is not broadcast");
        }

        var nsp = Text(packet["nsp"]) ?? SocketPacket.MainNamespace;
        long? id = ackId ?? (packet["id"] is JsonValue i && i.TryGetValue<long>(out var l) ? l : null);
        if (packet["data"] is not JsonArray data)
        {
            throw new FormatException("broadcast message: packet data is not an array");
        }

        return SocketPacketEncoder.FromParts(type, nsp, id, Encoding.UTF8.GetBytes(data.ToJsonString()), attachments);
    }

    /// <summary>socket.io-adapter's <c>encodeOptions</c>: <c>{rooms, except, flags}</c>.</summary>
    public static JsonObject Options(BroadcastOptions options, TimeSpan? timeout = null)
    {
        var flags = new JsonObject();
        if ((options.Flags & BroadcastFlags.Volatile) != 0)
        {
            flags["volatile"] = true;
        }

        if (timeout is { } t)
        {
            flags["timeout"] = (long)t.TotalMilliseconds;
        }

        return new JsonObject
        {
            ["rooms"] = new JsonArray([.. options.Rooms.Select(r => (JsonNode?)r)]),
            ["except"] = new JsonArray([.. options.Except.Select(r => (JsonNode?)r)]),
            ["flags"] = flags,
        };
    }

    /// <summary>socket.io-adapter's <c>decodeOptions</c> (rooms may be numbers there: read as their text).</summary>
    public static BroadcastOptions ReadOptions(JsonNode? node, out TimeSpan? timeout)
    {
        timeout = null;
        var opts = node as JsonObject;
        var flags = BroadcastFlags.None;
        if (opts?["flags"] is JsonObject f)
        {
            if (f["volatile"] is JsonValue v && v.GetValueKind() != JsonValueKind.False && v.GetValueKind() != JsonValueKind.Null)
            {
                flags |= BroadcastFlags.Volatile;
            }

            if (f["timeout"] is JsonValue ms && ms.TryGetValue<double>(out var millis) && millis > 0)
            {
                timeout = TimeSpan.FromMilliseconds(Math.Min(millis, int.MaxValue));
            }
        }

        return new BroadcastOptions(Strings(opts?["rooms"]).ToHashSet(StringComparer.Ordinal), Strings(opts?["except"]).ToHashSet(StringComparer.Ordinal), flags);
    }

    /// <summary>The values of a JSON array as strings (numbers as their text); nothing for anything else.</summary>
    public static string[] Strings(JsonNode? node) =>
        node is JsonArray array ? [.. array.Select(n => Text(n) ?? n?.ToJsonString() ?? "")] : [];

    /// <summary>A string value, or null.</summary>
    public static string? Text(JsonNode? node) =>
        node is JsonValue v && v.TryGetValue<string>(out var s) ? s : node is JsonValue n && n.GetValueKind() == JsonValueKind.Number ? n.ToJsonString() : null;

    /// <summary>A JSON value as the application wrote it: a string, number (long or double), bool or null; objects and arrays stay nodes.</summary>
    public static object? ToClr(JsonNode? node) => node switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonValue v when v.GetValueKind() == JsonValueKind.True => true,
        JsonValue v when v.GetValueKind() == JsonValueKind.False => false,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => v.TryGetValue<long>(out var l) ? l : v.GetValue<double>(),
        JsonValue v when v.GetValueKind() == JsonValueKind.Null => null,
        _ => node.DeepClone(),
    };

    /// <summary>A session as Node keeps it: base64 of msgpack <c>{sid, pid, rooms, data}</c> (and <c>joinOffset</c>).</summary>
    public static string EncodeSession(PersistedSession session)
    {
        var data = session.Data is { } d ? JsonSerializer.SerializeToNode(d.ToDictionary(p => p.Key, p => p.Value)) as JsonObject ?? [] : [];
        var obj = new JsonObject
        {
            ["sid"] = session.Sid,
            ["pid"] = session.Pid,
            ["rooms"] = new JsonArray([.. session.Rooms.Select(r => (JsonNode?)r)]),
            ["data"] = data,
        };
        if (session.JoinOffset is { } joinOffset)
        {
            obj["joinOffset"] = joinOffset;
        }

        return Convert.ToBase64String(ToMsgpack(obj, []));
    }

    /// <summary>Reads a kept session (written by Node or by us); its data values come back as JSON nodes.</summary>
    public static PersistedSession DecodeSession(string base64)
    {
        var obj = FromMsgpack(Convert.FromBase64String(base64), []) as JsonObject ?? throw new FormatException("session: not a map");
        var sid = Text(obj["sid"]) ?? throw new FormatException("session: no sid");
        var pid = Text(obj["pid"]) ?? throw new FormatException("session: no pid");
        ConcurrentDictionary<string, object?>? data = null;
        if (obj["data"] is JsonObject values && values.Count > 0)
        {
            data = new ConcurrentDictionary<string, object?>(StringComparer.Ordinal);
            foreach (var (key, value) in values)
            {
                data[key] = ToClr(value);
            }
        }

        return new PersistedSession(sid, pid, Strings(obj["rooms"]), data) { JoinOffset = Text(obj["joinOffset"]) };
    }

    private static byte[] ToMsgpack(JsonNode node, IReadOnlyList<OutboundPacket> attachments)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        var writer = new MessagePackWriter(buffer);
        using (var doc = JsonDocument.Parse(node.ToJsonString()))
        {
            RedisWireCodec.WriteJson(ref writer, doc.RootElement, attachments, 0);
        }

        writer.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    private static JsonNode? FromMsgpack(ReadOnlyMemory<byte> bytes, List<ReadOnlyMemory<byte>> attachments)
    {
        var reader = new MessagePackReader(bytes);
        var json = new ArrayBufferWriter<byte>(bytes.Length + 64);
        using (var writer = new Utf8JsonWriter(json))
        {
            RedisWireCodec.WriteMsgpackAsJson(ref reader, writer, attachments, 0);
        }

        return JsonNode.Parse(json.WrittenSpan);
    }
}

using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Evolution.Events.SocketIO.Adapters;
using Evolution.Events.SocketIO.Protocol;
using MessagePack;

namespace Evolution.Events.SocketIO.Redis;

/// <summary>
/// The broadcast message of <c>@socket.io/redis-adapter</c> 8.x: msgpack (notepack.io) of
/// <c>[uid, packet, opts]</c>, where packet is socket.io's packet object <c>{type, data, nsp, id?}</c>
/// (binary arguments inline as bin, the type EVENT/ACK, not BINARY_*) and opts is
/// <c>{rooms: [...], except: [...], flags: {volatile?, local?, ...}}</c>.
/// </summary>
internal static class RedisWireCodec
{
    private const int MaxDepth = 64;

    /// <summary>A received broadcast: whose it is, the packet (encoded once), and who gets it.</summary>
    internal sealed record Broadcast(string Uid, string Nsp, EncodedPacket Packet, BroadcastOptions Options);

    /// <summary>Writes <c>[uid, packet, opts]</c> for an encoded packet of ours.</summary>
    public static byte[] EncodeBroadcast(string uid, EncodedPacket packet, BroadcastOptions options)
    {
        var text = packet.Text.Bytes;
        var (type, nsp, id, jsonStart) = SplitText(text.Span);
        var json = jsonStart < text.Length ? text[jsonStart..] : "[]"u8.ToArray();
        var buffer = new ArrayBufferWriter<byte>(json.Length + 64);
        var writer = new MessagePackWriter(buffer);
        writer.WriteArrayHeader(3);
        writer.Write(uid);
        writer.WriteMapHeader(id is null ? 3 : 4);
        writer.Write("type");
        writer.Write((int)type);
        writer.Write("data");
        using (var doc = JsonDocument.Parse(json))
        {
            WriteJson(ref writer, doc.RootElement, packet.Attachments, 0);
        }

        writer.Write("nsp");
        writer.Write(nsp);
        if (id is { } ackId)
        {
            writer.Write("id");
            writer.Write(ackId);
        }

        writer.WriteMapHeader(3);
        writer.Write("rooms");
        WriteStrings(ref writer, options.Rooms);
        writer.Write("except");
        WriteStrings(ref writer, options.Except);
        writer.Write("flags");
        var flags = 0;
        flags += (options.Flags & BroadcastFlags.Volatile) != 0 ? 1 : 0;
        flags += (options.Flags & BroadcastFlags.Local) != 0 ? 1 : 0;
        writer.WriteMapHeader(flags);
        if ((options.Flags & BroadcastFlags.Volatile) != 0)
        {
            writer.Write("volatile");
            writer.Write(true);
        }

        if ((options.Flags & BroadcastFlags.Local) != 0)
        {
            writer.Write("local");
            writer.Write(true);
        }

        writer.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Reads <c>[uid, packet, opts]</c>; the packet is encoded here, once. Throws on a malformed message.</summary>
    public static Broadcast DecodeBroadcast(ReadOnlyMemory<byte> message)
    {
        var reader = new MessagePackReader(message);
        var count = reader.ReadArrayHeader();
        if (count < 3)
        {
            throw new FormatException("broadcast message: expected [uid, packet, opts]");
        }

        var uid = ReadString(ref reader);
        SocketPacketType type = SocketPacketType.Event;
        string nsp = SocketPacket.MainNamespace;
        long? id = null;
        var json = new ArrayBufferWriter<byte>(128);
        var attachments = new List<ReadOnlyMemory<byte>>();
        var hasData = false;
        var fields = reader.ReadMapHeader();
        for (var i = 0; i < fields; i++)
        {
            switch (ReadString(ref reader))
            {
                case "type":
                    type = (SocketPacketType)reader.ReadInt32();
                    break;
                case "nsp":
                    nsp = ReadString(ref reader);
                    break;
                case "id":
                    if (reader.TryReadNil())
                    {
                        break;
                    }

                    id = reader.ReadInt64();
                    break;
                case "data":
                    using (var writer = new Utf8JsonWriter(json))
                    {
                        WriteMsgpackAsJson(ref reader, writer, attachments, 0);
                    }

                    hasData = true;
                    break;
                default:
                    reader.Skip();
                    break;
            }
        }

        if (type is not (SocketPacketType.Event or SocketPacketType.Ack or SocketPacketType.BinaryEvent or SocketPacketType.BinaryAck or SocketPacketType.Disconnect))
        {
            throw new FormatException($"broadcast message: packet type {(int)type} is not broadcast");
        }

        if (type == SocketPacketType.BinaryEvent)
        {
            type = SocketPacketType.Event;
        }
        else if (type == SocketPacketType.BinaryAck)
        {
            type = SocketPacketType.Ack;
        }

        var rooms = new HashSet<string>(StringComparer.Ordinal);
        var except = new HashSet<string>(StringComparer.Ordinal);
        var broadcastFlags = BroadcastFlags.None;
        var optFields = reader.TryReadNil() ? 0 : reader.ReadMapHeader();
        for (var i = 0; i < optFields; i++)
        {
            switch (ReadString(ref reader))
            {
                case "rooms":
                    ReadStrings(ref reader, rooms);
                    break;
                case "except":
                    ReadStrings(ref reader, except);
                    break;
                case "flags":
                    if (reader.TryReadNil())
                    {
                        break;
                    }

                    var n = reader.ReadMapHeader();
                    for (var f = 0; f < n; f++)
                    {
                        var name = ReadString(ref reader);
                        var on = reader.NextMessagePackType == MessagePackType.Boolean ? reader.ReadBoolean() : SkipTrue(ref reader);
                        if (on && name == "volatile")
                        {
                            broadcastFlags |= BroadcastFlags.Volatile;
                        }
                    }

                    break;
                default:
                    reader.Skip();
                    break;
            }
        }

        var data = hasData ? json.WrittenSpan : "[]"u8;
        var packet = SocketPacketEncoder.FromParts(type, nsp, id, data, attachments);
        return new Broadcast(uid, nsp, packet, new BroadcastOptions(rooms, except, broadcastFlags));
    }

    private static bool SkipTrue(ref MessagePackReader reader)
    {
        var nil = reader.TryReadNil();
        if (!nil)
        {
            reader.Skip();
        }

        return !nil;
    }

    /// <summary>Our encoded text packet <c>4</c>type[N-][/nsp,][id]json, split into its parts (BINARY_* as EVENT/ACK).</summary>
    internal static (SocketPacketType Type, string Nsp, long? Id, int JsonStart) SplitText(ReadOnlySpan<byte> text)
    {
        if (text.Length < 2 || text[0] != (byte)'4')
        {
            throw new FormatException("not an encoded socket.io message");
        }

        var type = (SocketPacketType)(text[1] - '0');
        var i = 2;
        if (type is SocketPacketType.BinaryEvent or SocketPacketType.BinaryAck)
        {
            while (i < text.Length && text[i] != (byte)'-')
            {
                i++;
            }

            i++;
            type = type == SocketPacketType.BinaryEvent ? SocketPacketType.Event : SocketPacketType.Ack;
        }

        var nsp = SocketPacket.MainNamespace;
        if (i < text.Length && text[i] == (byte)'/')
        {
            var comma = text[i..].IndexOf((byte)',');
            var end = comma < 0 ? text.Length : i + comma;
            nsp = Encoding.UTF8.GetString(text[i..end]);
            i = comma < 0 ? text.Length : end + 1;
        }

        long? id = null;
        var start = i;
        while (i < text.Length && text[i] is >= (byte)'0' and <= (byte)'9')
        {
            i++;
        }

        if (i > start)
        {
            id = long.Parse(Encoding.ASCII.GetString(text[start..i]), CultureInfo.InvariantCulture);
        }

        return (type, nsp, id, i);
    }

    private static void WriteStrings(ref MessagePackWriter writer, IReadOnlySet<string> values)
    {
        writer.WriteArrayHeader(values.Count);
        foreach (var value in values)
        {
            writer.Write(value);
        }
    }

    private static void ReadStrings(ref MessagePackReader reader, HashSet<string> into)
    {
        if (reader.TryReadNil())
        {
            return;
        }

        var n = reader.ReadArrayHeader();
        for (var i = 0; i < n; i++)
        {
            into.Add(ReadScalarAsString(ref reader));
        }
    }

    private static string ReadString(ref MessagePackReader reader) => reader.ReadString() ?? "";

    /// <summary>A room name: a string, or a number (socket.io allows numeric rooms).</summary>
    private static string ReadScalarAsString(ref MessagePackReader reader) => reader.NextMessagePackType switch
    {
        MessagePackType.String => reader.ReadString() ?? "",
        MessagePackType.Integer => reader.ReadInt64().ToString(CultureInfo.InvariantCulture),
        MessagePackType.Float => reader.ReadDouble().ToString(CultureInfo.InvariantCulture),
        _ => throw new FormatException("room: expected a string or a number"),
    };

    internal static void WriteJson(ref MessagePackWriter writer, JsonElement element, IReadOnlyList<Evolution.Events.EngineIO.Protocol.OutboundPacket> attachments, int depth)
    {
        if (depth > MaxDepth)
        {
            throw new FormatException("packet data nested too deeply");
        }

        switch (element.ValueKind)
        {
            case JsonValueKind.Array:
                writer.WriteArrayHeader(element.GetArrayLength());
                foreach (var item in element.EnumerateArray())
                {
                    WriteJson(ref writer, item, attachments, depth + 1);
                }

                break;
            case JsonValueKind.Object:
                if (element.TryGetProperty("_placeholder", out var placeholder) && placeholder.ValueKind == JsonValueKind.True
                    && element.TryGetProperty("num", out var num) && num.TryGetInt32(out var index) && index >= 0 && index < attachments.Count)
                {
                    writer.Write(attachments[index].Bytes.Span);
                    break;
                }

                var count = 0;
                foreach (var _ in element.EnumerateObject())
                {
                    count++;
                }

                writer.WriteMapHeader(count);
                foreach (var property in element.EnumerateObject())
                {
                    writer.Write(property.Name);
                    WriteJson(ref writer, property.Value, attachments, depth + 1);
                }

                break;
            case JsonValueKind.String:
                writer.Write(element.GetString());
                break;
            case JsonValueKind.Number:
                if (element.TryGetInt64(out var l))
                {
                    writer.Write(l);
                }
                else
                {
                    writer.Write(element.GetDouble());
                }

                break;
            case JsonValueKind.True:
                writer.Write(true);
                break;
            case JsonValueKind.False:
                writer.Write(false);
                break;
            default:
                writer.WriteNil();
                break;
        }
    }

    internal static void WriteMsgpackAsJson(ref MessagePackReader reader, Utf8JsonWriter writer, List<ReadOnlyMemory<byte>> attachments, int depth)
    {
        if (depth > MaxDepth)
        {
            throw new FormatException("packet data nested too deeply");
        }

        switch (reader.NextMessagePackType)
        {
            case MessagePackType.Nil:
                reader.ReadNil();
                writer.WriteNullValue();
                break;
            case MessagePackType.Boolean:
                writer.WriteBooleanValue(reader.ReadBoolean());
                break;
            case MessagePackType.Integer:
                if (reader.NextCode == MessagePackCode.UInt64)
                {
                    writer.WriteNumberValue(reader.ReadUInt64());
                }
                else
                {
                    writer.WriteNumberValue(reader.ReadInt64());
                }

                break;
            case MessagePackType.Float:
                var d = reader.ReadDouble();
                if (double.IsFinite(d))
                {
                    writer.WriteNumberValue(d);
                }
                else
                {
                    writer.WriteNullValue();
                }

                break;
            case MessagePackType.String:
                writer.WriteStringValue(reader.ReadString());
                break;
            case MessagePackType.Binary:
                var bytes = reader.ReadBytes() is { } seq ? seq.ToArray() : [];
                writer.WriteStartObject();
                writer.WriteBoolean("_placeholder", true);
                writer.WriteNumber("num", attachments.Count);
                writer.WriteEndObject();
                attachments.Add(bytes);
                break;
            case MessagePackType.Array:
                var n = reader.ReadArrayHeader();
                writer.WriteStartArray();
                for (var i = 0; i < n; i++)
                {
                    WriteMsgpackAsJson(ref reader, writer, attachments, depth + 1);
                }

                writer.WriteEndArray();
                break;
            case MessagePackType.Map:
                var m = reader.ReadMapHeader();
                writer.WriteStartObject();
                for (var i = 0; i < m; i++)
                {
                    writer.WritePropertyName(ReadScalarAsString(ref reader));
                    WriteMsgpackAsJson(ref reader, writer, attachments, depth + 1);
                }

                writer.WriteEndObject();
                break;
            default:
                // an extension (notepack writes undefined and Date so): no JSON value of its own
                reader.Skip();
                writer.WriteNullValue();
                break;
        }
    }
}

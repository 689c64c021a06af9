using System.Buffers;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Evolution.Events.EngineIO.Protocol;
using Evolution.Events.SocketIO.Protocol;
using MessagePack;

namespace Evolution.Events.SocketIO.MsgPack;

/// <summary>
/// socket.io-msgpack-parser 3.x: each packet is one Engine.IO binary message holding the MessagePack map
/// <c>{type, data, nsp, id?}</c> (types 0-4: BINARY_EVENT/BINARY_ACK do not exist, byte arrays are MessagePack
/// bin values inside <c>data</c>). Clients use <c>io(url, { parser: require("socket.io-msgpack-parser") })</c>.
/// </summary>
/// <remarks>
/// Decoding follows the package's checks (integer type 0-4, string nsp, integer or absent id, data fitting the type)
/// plus this server's: nesting depth (<see cref="SocketPacketLimits.MaxDepth"/>), namespace length, reserved event
/// names, duplicate keys. notepack.io's extensions are read as its decoder reads them: ext type 0 with data
/// (a browser's ArrayBuffer/typed array) is bytes, fixext 1 type 0 (<c>undefined</c>) is absent/null, fixext 8 type 0
/// (a Date) is its ISO string, as JSON would carry it. Other extensions are refused.
/// </remarks>
public sealed class MsgPackParser : ISocketIOParser
{
    private static readonly Func<EncodedPacket, EncodedPacket> Transcode = ToMsgPack;

    /// <summary>The one instance, for <see cref="SocketIOOptions.Parser"/>.</summary>
    public static MsgPackParser Instance { get; } = new();

    /// <summary>Encoded once per packet (kept on it), whatever the number of connections it is written to.</summary>
    public EncodedPacket Encode(EncodedPacket packet) => packet.GetOrAddForm(this, Transcode);

    /// <summary>Refuses a text message: with this parser every packet is a binary MessagePack message.</summary>
    public bool TryDecode(string text, SocketPacketLimits limits, out SocketPacket? packet, out string? failure)
    {
        packet = null;
        failure = "got a text message: this server uses the msgpack parser (socket.io-msgpack-parser)";
        return false;
    }

    /// <summary>Decodes one MessagePack map (<c>type</c>, <c>nsp</c>, <c>id</c>, <c>data</c>) and checks it as the default form is checked.</summary>
    public bool TryDecode(byte[] data, SocketPacketLimits limits, out SocketPacket? packet, out string? failure)
    {
        packet = null;
        try
        {
            var reader = new MessagePackReader(data);
            if (reader.NextMessagePackType != MessagePackType.Map)
            {
                return Fail("invalid packet: not a map", out failure);
            }

            var fields = reader.ReadMapHeader();
            int? type = null;
            string? nsp = null;
            long? id = null;
            JsonNode? payload = null;
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < fields; i++)
            {
                var key = ReadKey(ref reader);
                if (!seen.Add(key))
                {
                    return Fail($"duplicate key '{Bound(key)}'", out failure);
                }

                switch (key)
                {
                    case "type":
                        if (reader.NextMessagePackType != MessagePackType.Integer)
                        {
                            return Fail("invalid packet type", out failure);
                        }

                        var t = reader.ReadInt64();
                        if (t is < 0 or > (int)SocketPacketType.ConnectError)
                        {
                            return Fail("invalid packet type", out failure);
                        }

                        type = (int)t;
                        break;
                    case "nsp":
                        if (reader.NextMessagePackType != MessagePackType.String)
                        {
                            return Fail("invalid namespace", out failure);
                        }

                        nsp = reader.ReadString() ?? "";
                        if (nsp.Length > limits.MaxNamespaceLength)
                        {
                            return Fail("namespace too long", out failure);
                        }

                        break;
                    case "id":
                        if (IsUndefined(ref reader) || reader.NextMessagePackType == MessagePackType.Nil)
                        {
                            reader.Skip();
                            break;
                        }

                        if (reader.NextMessagePackType != MessagePackType.Integer || reader.NextCode == MessagePackCode.UInt64)
                        {
                            return Fail("invalid packet id", out failure);
                        }

                        var ackId = reader.ReadInt64();
                        if (ackId is < 0 or > 999_999_999_999_999)
                        {
                            return Fail("invalid packet id", out failure);
                        }

                        id = ackId;
                        break;
                    case "data":
                        payload = ReadNode(ref reader, 0, out _); // undefined: no data
                        break;
                    default:
                        reader.Skip(); // socket.io-client also sends "options" ({compress}); unknown keys are ignored
                        break;
                }
            }

            if (!reader.End)
            {
                return Fail("trailing bytes after the packet", out failure);
            }

            if (type is null)
            {
                return Fail("invalid packet type", out failure);
            }

            if (nsp is null)
            {
                return Fail("invalid namespace", out failure);
            }

            var packetType = (SocketPacketType)type.Value;
            if (!SocketPacketDecoder.IsPayloadValid(packetType, payload, id))
            {
                return Fail($"invalid payload for a {packetType} packet", out failure);
            }

            failure = null;
            packet = new SocketPacket(packetType, nsp, id, payload);
            return true;
        }
        catch (FormatException ex)
        {
            return Fail(ex.Message, out failure);
        }
        catch (MessagePackSerializationException)
        {
            return Fail("invalid MessagePack", out failure);
        }
        catch (EndOfStreamException)
        {
            return Fail("truncated MessagePack", out failure);
        }
        catch (Exception ex) when (ex is ArgumentException or OverflowException or InvalidOperationException)
        {
            // invalid UTF-8, an integer out of range, a malformed header
            return Fail("invalid MessagePack", out failure);
        }
    }

    /// <summary>The default form (text + attachments) rewritten as one MessagePack binary message.</summary>
    private static EncodedPacket ToMsgPack(EncodedPacket packet)
    {
        var (type, nsp, id, json) = packet.GetParts();
        type = type switch
        {
            SocketPacketType.BinaryEvent => SocketPacketType.Event,
            SocketPacketType.BinaryAck => SocketPacketType.Ack,
            _ => type,
        };

        var buffer = new ArrayBufferWriter<byte>(json.Length + nsp.Length + 32);
        var writer = new MessagePackWriter(buffer);
        var hasData = json.Length > 0;
        writer.WriteMapHeader(2 + (hasData ? 1 : 0) + (id is null ? 0 : 1));
        writer.Write("type");
        writer.Write((int)type);
        if (hasData)
        {
            writer.Write("data");
            using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = SocketPacketLimits.MaxDepth + 2 });
            WriteJson(ref writer, doc.RootElement, packet.Attachments, 0);
        }

        writer.Write("nsp");
        writer.Write(nsp);
        if (id is { } ackId)
        {
            writer.Write("id");
            writer.Write(ackId);
        }

        writer.Flush();
        return new EncodedPacket(OutboundPacket.Binary(buffer.WrittenMemory), [], packet.Offset);
    }

    private static void WriteJson(ref MessagePackWriter writer, JsonElement element, IReadOnlyList<OutboundPacket> attachments, int depth)
    {
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

    /// <summary>A value as a JSON node; <paramref name="present"/> is false for notepack's <c>undefined</c>.</summary>
    private static JsonNode? ReadNode(ref MessagePackReader reader, int depth, out bool present)
    {
        present = true;
        if (depth > SocketPacketLimits.MaxDepth)
        {
            throw new FormatException($"packet data nested too deeply (over {SocketPacketLimits.MaxDepth} levels)");
        }

        switch (reader.NextMessagePackType)
        {
            case MessagePackType.Nil:
                reader.ReadNil();
                return null;
            case MessagePackType.Boolean:
                return JsonValue.Create(reader.ReadBoolean());
            case MessagePackType.Integer:
                if (reader.NextCode == MessagePackCode.UInt64)
                {
                    return JsonValue.Create(reader.ReadUInt64());
                }

                var l = reader.ReadInt64();
                return l is >= int.MinValue and <= int.MaxValue ? JsonValue.Create((int)l) : JsonValue.Create(l);
            case MessagePackType.Float:
                var d = reader.ReadDouble();
                return double.IsFinite(d) ? JsonValue.Create(d) : null; // as JSON.stringify writes NaN/Infinity
            case MessagePackType.String:
                return JsonValue.Create(reader.ReadString() ?? "");
            case MessagePackType.Binary:
                return JsonValue.Create(reader.ReadBytes() is { } bytes ? bytes.ToArray() : []);
            case MessagePackType.Array:
                var n = reader.ReadArrayHeader();
                var array = new JsonArray();
                for (var i = 0; i < n; i++)
                {
                    var item = ReadNode(ref reader, depth + 1, out var itemPresent);
                    array.Add(itemPresent ? item : null); // JSON.stringify writes undefined in an array as null
                }

                return array;
            case MessagePackType.Map:
                var m = reader.ReadMapHeader();
                var obj = new JsonObject();
                for (var i = 0; i < m; i++)
                {
                    var name = ReadKey(ref reader);
                    var value = ReadNode(ref reader, depth + 1, out var valuePresent);
                    if (!valuePresent)
                    {
                        continue; // an undefined property is left out, as JSON.stringify does
                    }

                    if (!obj.TryAdd(name, value))
                    {
                        throw new FormatException($"duplicate key '{Bound(name)}'");
                    }
                }

                return obj;
            case MessagePackType.Extension:
                return ReadExtension(ref reader, out present);
            default:
                throw new FormatException("invalid MessagePack value");
        }
    }

    private static JsonValue? ReadExtension(ref MessagePackReader reader, out bool present)
    {
        present = true;
        var code = reader.NextCode;
        var header = reader.ReadExtensionFormatHeader();
        if (header.TypeCode != 0)
        {
            throw new FormatException($"unsupported MessagePack extension type {header.TypeCode}");
        }

        var body = reader.ReadRaw(header.Length).ToArray();
        switch (code)
        {
            case MessagePackCode.FixExt1:
                present = false; // notepack's undefined
                return null;
            case MessagePackCode.FixExt8:
                // notepack's Date: milliseconds since 1970 as a signed 64-bit big-endian integer; JSON carries its ISO string
                var ms = System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(body);
                if (ms is < -62_135_596_800_000 or > 253_402_300_799_999)
                {
                    throw new FormatException("date out of range");
                }

                return JsonValue.Create(DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
            case MessagePackCode.Ext8 or MessagePackCode.Ext16 or MessagePackCode.Ext32:
                return JsonValue.Create(body); // a browser's ArrayBuffer or typed array
            default:
                throw new FormatException("unsupported MessagePack extension");
        }
    }

    private static bool IsUndefined(ref MessagePackReader reader)
    {
        if (reader.NextCode != MessagePackCode.FixExt1)
        {
            return false;
        }

        var peek = reader.CreatePeekReader();
        var header = peek.ReadExtensionFormatHeader();
        return header.TypeCode == 0;
    }

    private static string ReadKey(ref MessagePackReader reader) => reader.NextMessagePackType switch
    {
        MessagePackType.String => reader.ReadString() ?? "",
        // notepack decodes a map into a JS object: a number key becomes its string
        MessagePackType.Integer => reader.ReadInt64().ToString(CultureInfo.InvariantCulture),
        _ => throw new FormatException("map key: expected a string or an integer"),
    };

    private static string Bound(string s) => s.Length <= 64 ? s : s[..64] + "…";

    private static bool Fail(string reason, out string? error)
    {
        error = reason;
        return false;
    }
}

using System.Text.Json;
using System.Text.Json.Nodes;

namespace Evolution.Events.SocketIO.Protocol;

/// <summary>Limits enforced where packets are parsed.</summary>
public sealed record SocketPacketLimits(int MaxAttachments = 64, int MaxNamespaceLength = 256)
{
    /// <summary>Deepest nesting of a packet's data (arrays and objects), as for the JSON payload of the default form.</summary>
    public const int MaxDepth = 64;

    /// <summary>The default limits: 64 attachments, namespace names up to 256 characters.</summary>
    public static SocketPacketLimits Default { get; } = new();
}

/// <summary>
/// Decodes the text form of a Socket.IO 5 packet:
/// <c>&lt;type&gt;[&lt;attachments&gt;-][&lt;namespace&gt;,][&lt;ack id&gt;][&lt;JSON payload&gt;]</c>,
/// and checks the payload against the packet type as socket.io-parser does.
/// </summary>
public static class SocketPacketDecoder
{
    private static readonly HashSet<string> ReservedEvents = new(StringComparer.Ordinal)
    {
        "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
    };

    internal static readonly JsonNodeOptions NodeOptions = new() { PropertyNameCaseInsensitive = false };
    // duplicate keys are refused here: a JsonObject with them throws on first access, far from the parser
    internal static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = SocketPacketLimits.MaxDepth, AllowDuplicateProperties = false };

    /// <summary>Decodes one text packet under <see cref="SocketPacketLimits.Default"/>.</summary>
    public static bool TryDecode(string text, out SocketPacket? packet, out string? error) =>
        TryDecode(text, SocketPacketLimits.Default, out packet, out error);

    /// <summary>Decodes one text packet; on bad input returns false with a clear <paramref name="error"/> (never throws).</summary>
    public static bool TryDecode(string text, SocketPacketLimits limits, out SocketPacket? packet, out string? error)
    {
        packet = null;
        if (text.Length == 0)
        {
            return Fail("empty packet", out error);
        }

        var typeDigit = text[0] - '0';
        if (typeDigit is < 0 or > (int)SocketPacketType.BinaryAck)
        {
            return Fail("unknown packet type", out error);
        }

        var type = (SocketPacketType)typeDigit;
        var i = 1;
        var attachments = 0;
        if (type is SocketPacketType.BinaryEvent or SocketPacketType.BinaryAck)
        {
            var dash = text.IndexOf('-', i);
            if (dash < 0 || !int.TryParse(text.AsSpan(i, dash - i), System.Globalization.NumberStyles.None, null, out attachments))
            {
                return Fail("illegal attachments", out error);
            }

            if (attachments > limits.MaxAttachments)
            {
                return Fail($"too many attachments ({attachments} > {limits.MaxAttachments})", out error);
            }

            i = dash + 1;
        }

        var nsp = SocketPacket.MainNamespace;
        if (i < text.Length && text[i] == '/')
        {
            var comma = text.IndexOf(',', i);
            var end = comma < 0 ? text.Length : comma;
            if (end - i > limits.MaxNamespaceLength)
            {
                return Fail("namespace too long", out error);
            }

            nsp = text[i..end];
            i = comma < 0 ? text.Length : comma + 1;
        }

        long? id = null;
        var idStart = i;
        while (i < text.Length && char.IsAsciiDigit(text[i]))
        {
            i++;
        }

        if (i > idStart)
        {
            if (i - idStart > 15 || !long.TryParse(text.AsSpan(idStart, i - idStart), out var parsed))
            {
                return Fail("illegal ack id", out error);
            }

            id = parsed;
        }

        JsonNode? data = null;
        if (i < text.Length)
        {
            try
            {
                data = JsonNode.Parse(text.AsMemory(i).ToString(), NodeOptions, DocumentOptions);
            }
            catch (JsonException)
            {
                return Fail("invalid JSON payload", out error);
            }
        }

        if (!IsPayloadValid(type, data, id))
        {
            return Fail($"invalid payload for a {type} packet", out error);
        }

        error = null;
        packet = new SocketPacket(type, nsp, id, data, attachments);
        return true;
    }

    /// <summary>
    /// True when <paramref name="data"/> fits the packet type as socket.io-parser checks it (an event names a
    /// non-reserved event, an ack has an id, …); for parsers other than the default one.
    /// </summary>
    public static bool IsPayloadValid(SocketPacketType type, JsonNode? data, long? id) => type switch
    {
        SocketPacketType.Connect => data is null or JsonObject,
        SocketPacketType.Disconnect => data is null,
        SocketPacketType.ConnectError => data is JsonObject || IsString(data),
        SocketPacketType.Event or SocketPacketType.BinaryEvent => data is JsonArray { Count: > 0 } array && IsEventName(array[0]),
        SocketPacketType.Ack or SocketPacketType.BinaryAck => data is JsonArray && id is not null,
        _ => false,
    };

    private static bool IsEventName(JsonNode? first)
    {
        if (first is not JsonValue value)
        {
            return false;
        }

        return value.GetValueKind() switch
        {
            JsonValueKind.Number => true,
            JsonValueKind.String => !ReservedEvents.Contains(value.GetValue<string>()),
            _ => false,
        };
    }

    private static bool IsString(JsonNode? node) => node is JsonValue v && v.GetValueKind() == JsonValueKind.String;

    private static bool Fail(string reason, out string? error)
    {
        error = reason;
        return false;
    }
}

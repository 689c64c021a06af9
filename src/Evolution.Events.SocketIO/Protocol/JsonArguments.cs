using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Evolution.Events.SocketIO.Protocol;

/// <summary>
/// Writes emit arguments as JSON. Binary values (byte[], ReadOnlyMemory&lt;byte&gt;, ArraySegment&lt;byte&gt;,
/// or a <see cref="JsonValue"/> holding a byte[]) become <c>{"_placeholder":true,"num":N}</c> and are
/// collected as attachments, wherever they sit, POCO properties included.
/// </summary>
public static class JsonArguments
{
    [ThreadStatic]
    private static List<ReadOnlyMemory<byte>>? _collector;

    internal static JsonWriterOptions WriterOptions { get; } = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        SkipValidation = false,
    };

    /// <summary>Serializer options for values that are not JSON already; byte[] becomes a placeholder.</summary>
    public static JsonSerializerOptions SerializerOptions { get; } = CreateSerializerOptions();

    internal static void WriteValue(Utf8JsonWriter writer, object? value, List<ReadOnlyMemory<byte>> attachments)
    {
        switch (value)
        {
            case null:
                writer.WriteNullValue();
                break;
            case RawJson raw:
                writer.WriteRawValue(raw.Utf8.Span, skipInputValidation: false);
                break;
            case string s:
                writer.WriteStringValue(s);
                break;
            case bool b:
                writer.WriteBooleanValue(b);
                break;
            case int n:
                writer.WriteNumberValue(n);
                break;
            case long n:
                writer.WriteNumberValue(n);
                break;
            case double n:
                writer.WriteNumberValue(n);
                break;
            case byte[] bytes:
                WritePlaceholder(writer, bytes, attachments);
                break;
            case ReadOnlyMemory<byte> memory:
                WritePlaceholder(writer, memory, attachments);
                break;
            case ArraySegment<byte> segment:
                WritePlaceholder(writer, segment, attachments);
                break;
            case JsonNode node:
                WriteNode(writer, node, attachments);
                break;
            case JsonElement element:
                element.WriteTo(writer);
                break;
            default:
                WriteSerialized(writer, value, attachments);
                break;
        }
    }

    /// <summary>True when the node is a binary attachment (a JsonValue holding a byte[]).</summary>
    public static bool TryGetBinary(JsonNode? node, out byte[] bytes)
    {
        bytes = [];
        if (node is not JsonValue value || value.GetValueKind() != JsonValueKind.String)
        {
            return false;
        }

        // a JSON string converts to string; a wrapped byte[] does not
        if (value.TryGetValue<string>(out _) || !value.TryGetValue<byte[]>(out var found))
        {
            return false;
        }

        bytes = found;
        return true;
    }

    private static void WriteNode(Utf8JsonWriter writer, JsonNode node, List<ReadOnlyMemory<byte>> attachments)
    {
        switch (node)
        {
            case JsonObject obj:
                writer.WriteStartObject();
                foreach (var (name, child) in obj)
                {
                    writer.WritePropertyName(name);
                    WriteNullableNode(writer, child, attachments);
                }

                writer.WriteEndObject();
                break;
            case JsonArray array:
                writer.WriteStartArray();
                foreach (var child in array)
                {
                    WriteNullableNode(writer, child, attachments);
                }

                writer.WriteEndArray();
                break;
            default:
                if (TryGetBinary(node, out var bytes))
                {
                    WritePlaceholder(writer, bytes, attachments);
                }
                else
                {
                    node.WriteTo(writer);
                }

                break;
        }
    }

    private static void WriteNullableNode(Utf8JsonWriter writer, JsonNode? node, List<ReadOnlyMemory<byte>> attachments)
    {
        if (node is null)
        {
            writer.WriteNullValue();
        }
        else
        {
            WriteNode(writer, node, attachments);
        }
    }

    private static void WriteSerialized(Utf8JsonWriter writer, object value, List<ReadOnlyMemory<byte>> attachments)
    {
        var previous = _collector;
        _collector = attachments;
        try
        {
            JsonSerializer.Serialize(writer, value, value.GetType(), SerializerOptions);
        }
        finally
        {
            _collector = previous;
        }
    }

    internal static void WritePlaceholder(Utf8JsonWriter writer, ReadOnlyMemory<byte> bytes, List<ReadOnlyMemory<byte>> attachments)
    {
        writer.WriteStartObject();
        writer.WriteBoolean("_placeholder", true);
        writer.WriteNumber("num", attachments.Count);
        writer.WriteEndObject();
        attachments.Add(bytes);
    }

    private static JsonSerializerOptions CreateSerializerOptions()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        };
        options.Converters.Add(new PlaceholderConverter());
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }

    /// <summary>Inside POCOs: byte[] becomes a placeholder when a packet is being encoded, base64 otherwise.</summary>
    private sealed class PlaceholderConverter : JsonConverter<byte[]>
    {
        public override byte[]? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.Null ? null : reader.GetBytesFromBase64();

        public override void Write(Utf8JsonWriter writer, byte[] value, JsonSerializerOptions options)
        {
            if (_collector is { } attachments)
            {
                WritePlaceholder(writer, value, attachments);
            }
            else
            {
                writer.WriteBase64StringValue(value);
            }
        }
    }
}

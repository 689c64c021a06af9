using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Evolution.Events.SocketIO.Protocol;

namespace Evolution.Events.SocketIO;

/// <summary>Encodes an EVENT packet with one typed argument, serialized by its <see cref="JsonTypeInfo{T}"/> (no boxing).</summary>
internal static class TypedEvent
{
    public static EncodedPacket Encode<T>(string nsp, string eventName, T arg, JsonTypeInfo<T> typeInfo, long? ackId = null)
    {
        var json = new ArrayBufferWriter<byte>(128);
        using (var writer = new Utf8JsonWriter(json, JsonArguments.WriterOptions))
        {
            writer.WriteStartArray();
            writer.WriteStringValue(eventName);
            JsonSerializer.Serialize(writer, arg, typeInfo);
            writer.WriteEndArray();
        }

        return SocketPacketEncoder.FromParts(SocketPacketType.Event, nsp, ackId, json.WrittenSpan, []);
    }
}

using System.Text.Json;
using Evolution.Events.EngineIO.Transports;

namespace Evolution.Events.Gateway.Events;

/// <summary>
/// Writes the envelope: exactly the six keys <c>event, instance, data, server_url, date_time, sender</c>,
/// null where the producer sent nothing. The producer's <c>apikey</c> and <c>destination</c> never appear.
/// Text stays UTF-8 (<see cref="GatewayJson.Encoder"/>): the envelope is about the size of what was sent.
/// </summary>
public static class EnvelopeWriter
{
    // Envelopes are written into the thread's spare pooled buffer (the one the WebSocket writers batch in) through one
    // JSON writer kept per thread: an envelope costs its final array only, not a buffer grown by doubling (and copied)
    // up to the event's size.
    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    public static GatewayEvent Build(EventName name, string instance, JsonElement item, string fallbackServerUrl)
    {
        using var buffer = PooledBufferWriter.Rent(1024);
        var writer = t_writer ??= new Utf8JsonWriter(buffer, GatewayJson.WriterOptions);
        writer.Reset(buffer);
        writer.WriteStartObject();
        writer.WriteString("event", name.Dotted);
        writer.WriteString("instance", instance);
        WriteCopied(writer, "data", item, "data");
        var serverUrl = Get(item, "server_url");
        if (serverUrl is { ValueKind: JsonValueKind.String } s && s.GetString() is { Length: > 0 })
            WriteValue(writer, "server_url", s);
        else
            writer.WriteString("server_url", fallbackServerUrl);
        WriteCopied(writer, "date_time", item, "date_time");
        WriteCopied(writer, "sender", item, "sender");
        writer.WriteEndObject();
        writer.Flush();
        return new GatewayEvent(instance, name, buffer.WrittenMemory.ToArray());
    }

    private static JsonElement? Get(JsonElement item, string property) =>
        item.ValueKind == JsonValueKind.Object && item.TryGetProperty(property, out var value) ? value : null;

    private static void WriteCopied(Utf8JsonWriter writer, string name, JsonElement item, string property)
    {
        if (Get(item, property) is { } value)
            WriteValue(writer, name, value);
        else
            writer.WriteNull(name);
    }

    private static void WriteValue(Utf8JsonWriter writer, string name, JsonElement value)
    {
        writer.WritePropertyName(name);
        value.WriteTo(writer);
    }
}

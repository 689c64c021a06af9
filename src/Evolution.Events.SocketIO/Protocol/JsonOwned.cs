using System.Text.Json;
using System.Text.Json.Nodes;

namespace Evolution.Events.SocketIO.Protocol;

/// <summary>
/// Copies of parsed JSON that own their values. A node parsed from a packet reads its leaves from the packet's
/// <see cref="JsonDocument"/> (the document, its UTF-8 copy and its index stay alive with any leaf): right for an
/// event's arguments, which live for one dispatch, wrong for a CONNECT's auth, which a socket keeps for its lifetime
/// (about 200 bytes per idle socket for <c>{"apikey":"…"}</c>).
/// </summary>
internal static class JsonOwned
{
    /// <summary>A copy of <paramref name="source"/> (itself when empty: nothing to own).</summary>
    public static JsonObject Copy(JsonObject source) => source.Count == 0 ? source : CopyObject(source);

    private static JsonObject CopyObject(JsonObject source)
    {
        var copy = new JsonObject(source.Options);
        foreach (var (key, value) in source)
        {
            copy[key] = Copy(value);
        }

        return copy;
    }

    private static JsonNode? Copy(JsonNode? node) => node switch
    {
        null => null,
        JsonObject o => CopyObject(o), // a new one even when empty: the original has a parent
        JsonArray a => CopyArray(a),
        JsonValue v => CopyValue(v),
        _ => node.DeepClone(),
    };

    private static JsonArray CopyArray(JsonArray source)
    {
        var copy = new JsonArray(source.Options);
        foreach (var item in source)
        {
            copy.Add(Copy(item));
        }

        return copy;
    }

    private static JsonNode? CopyValue(JsonValue value) => value.GetValueKind() switch
    {
        JsonValueKind.String => JsonValue.Create(value.GetValue<string>()),
        JsonValueKind.True => JsonValue.Create(true),
        JsonValueKind.False => JsonValue.Create(false),
        JsonValueKind.Number when value.TryGetValue<long>(out var l) => JsonValue.Create(l),
        JsonValueKind.Number when value.TryGetValue<decimal>(out var m) => JsonValue.Create(m), // keeps its digits ("1.50")
        _ => value.DeepClone(), // a number beyond decimal: kept as parsed
    };
}

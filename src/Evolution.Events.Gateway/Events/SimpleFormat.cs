using System.Text.Json;
using System.Text.Json.Nodes;

namespace Evolution.Events.Gateway.Events;

/// <summary>
/// The <c>format=simple</c> vocabulary of seed 000: <c>message</c>, <c>connection</c>, <c>status</c>,
/// <c>group</c>, <c>presence</c>, <c>call</c>, each frame <c>{ event, instance, data }</c>.
/// An event whose data is a list yields one frame per item; events with no counterpart yield none.
/// </summary>
public static class SimpleFormat
{
    /// <summary>Maps a gateway event to its simple frames (UTF-8 JSON).</summary>
    public static IReadOnlyList<ReadOnlyMemory<byte>> Map(GatewayEvent e)
    {
        try
        {
            using var doc = JsonDocument.Parse(e.EnvelopeJson);
            var root = doc.RootElement;
            var sender = Str(root, "sender");
            var mapped = MapData(e.EventName, e.Instance, root.GetProperty("data"), sender);
            return [.. mapped.Select(m => (ReadOnlyMemory<byte>)Frame(m.Event, e.Instance, m.Data))];
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or KeyNotFoundException)
        {
            return [];
        }
    }

    /// <summary>Maps one event's data to (simple event, simple data) pairs.</summary>
    public static IReadOnlyList<(string Event, JsonObject Data)> MapData(
        string dottedEvent, string instance, JsonElement data, string? sender)
    {
        return dottedEvent switch
        {
            "messages.set" or "messages.upsert" or "messages.edited" or "messages.update"
                or "messages.delete" or "send.message" or "send.message.update" =>
                Each(data, "messages", d => ("message", Message(d, sender))),
            "connection.update" => Each(data, null, d => ("connection", Connection(d))),
            "qrcode.updated" => Each(data, null, d => ("connection", QrCode(d))),
            "contacts.update" or "status.instance" => Each(data, "contacts", d => ("status", Status(d, instance))),
            "groups.upsert" => Each(data, "groups", d => ("group", Group(d, "create"))),
            "groups.update" => Each(data, "groups", d => ("group", Group(d, "update"))),
            "group-participants.update" => Each(data, null, d => ("group", Participants(d))),
            "presence.update" => Each(data, null, d => ("presence", Presence(d))),
            "call" => Each(data, "calls", d => ("call", Call(d))),
            _ => [],
        };
    }

    private static byte[] Frame(string simpleEvent, string instance, JsonObject data) =>
        JsonSerializer.SerializeToUtf8Bytes(new JsonObject
        {
            ["event"] = simpleEvent,
            ["instance"] = instance,
            ["data"] = data,
        }, GatewayJson.SerializerOptions);

    private static List<(string, JsonObject)> Each(
        JsonElement data, string? listProperty, Func<JsonElement, (string, JsonObject)> map)
    {
        var source = data;
        if (listProperty is not null && data.ValueKind == JsonValueKind.Object
            && data.TryGetProperty(listProperty, out var list) && list.ValueKind == JsonValueKind.Array)
            source = list;
        if (source.ValueKind == JsonValueKind.Array)
            return [.. source.EnumerateArray().Where(x => x.ValueKind == JsonValueKind.Object).Select(map)];
        return source.ValueKind == JsonValueKind.Object ? [map(source)] : [];
    }

    private static JsonObject Message(JsonElement d, string? sender)
    {
        var key = Obj(d, "key");
        var remoteJid = Str(key, "remoteJid") ?? Str(d, "remoteJid");
        var fromMe = Bool(key, "fromMe") ?? Bool(d, "fromMe") ?? false;
        var message = Obj(d, "message");
        return new JsonObject
        {
            ["id"] = Str(key, "id") ?? Str(d, "keyId") ?? Str(d, "id") ?? Str(d, "messageId"),
            ["from"] = fromMe ? sender ?? remoteJid : remoteJid ?? Str(d, "sender") ?? sender,
            ["to"] = fromMe ? remoteJid : sender,
            ["type"] = Str(d, "messageType"),
            ["content"] = Str(message, "conversation")
                ?? Str(Obj(message, "extendedTextMessage"), "text")
                ?? Str(Obj(message, "imageMessage"), "caption")
                ?? Str(Obj(message, "videoMessage"), "caption"),
            ["timestamp"] = Copy(d, "messageTimestamp"),
        };
    }

    private static JsonObject Connection(JsonElement d)
    {
        var state = Str(d, "state")?.ToLowerInvariant() switch
        {
            "open" or "connected" => "connected",
            "connecting" => "connecting",
            "close" or "closed" or "refused" or "disconnected" => "disconnected",
            var other => other,
        };
        var info = new JsonObject
        {
            ["me"] = new JsonObject { ["id"] = Str(d, "wuid"), ["name"] = Str(d, "profileName") },
        };
        if (Copy(d, "statusReason") is { } reason)
            info["statusReason"] = reason;
        if (Copy(d, "profilePictureUrl") is { } picture)
            info["profilePictureUrl"] = picture;
        return new JsonObject { ["state"] = state, ["info"] = info };
    }

    private static JsonObject QrCode(JsonElement d)
    {
        var qr = Obj(d, "qrcode") ?? d;
        return new JsonObject
        {
            ["state"] = "qrcode",
            ["qrcode"] = Str(qr, "base64"),
            ["code"] = Str(qr, "code"),
            ["pairingCode"] = Str(qr, "pairingCode"),
            ["info"] = null,
        };
    }

    private static JsonObject Status(JsonElement d, string instance) => new()
    {
        ["from"] = Str(d, "remoteJid") ?? Str(d, "id") ?? Str(d, "wuid") ?? Str(d, "instance") ?? instance,
        ["status"] = Copy(d, "status") ?? Copy(d, "state"),
    };

    private static JsonObject Group(JsonElement d, string action) => new()
    {
        ["id"] = Str(d, "id"),
        ["action"] = action,
        ["metadata"] = new JsonObject
        {
            ["name"] = Str(d, "subject"),
            ["participants"] = ParticipantIds(d),
            ["owner"] = Str(d, "owner"),
        },
    };

    private static JsonObject Participants(JsonElement d)
    {
        var action = Str(d, "action")?.ToLowerInvariant() ?? "update";
        return new JsonObject
        {
            ["id"] = Str(d, "id"),
            ["action"] = "participant_" + action,
            ["metadata"] = new JsonObject { ["participants"] = ParticipantIds(d), ["author"] = Str(d, "author") },
        };
    }

    private static JsonObject Presence(JsonElement d)
    {
        JsonElement? entry = null;
        if (Obj(d, "presences") is { } presences)
            entry = presences.EnumerateObject().Select(p => p.Value).FirstOrDefault(v => v.ValueKind == JsonValueKind.Object);
        var presence = Str(entry, "lastKnownPresence") ?? Str(d, "presence") ?? Str(d, "lastKnownPresence");
        return new JsonObject
        {
            ["id"] = Str(d, "id"),
            ["presence"] = presence,
            ["lastSeen"] = Copy(entry, "lastSeen") ?? Copy(d, "lastSeen"),
            ["typing"] = presence == "composing",
        };
    }

    private static JsonObject Call(JsonElement d)
    {
        var status = Str(d, "status")?.ToLowerInvariant() switch
        {
            "offer" or "ringing" => "offer",
            "accept" => "accept",
            "reject" => "reject",
            "timeout" or "terminate" or "end" => "end",
            var other => other,
        };
        return new JsonObject
        {
            ["id"] = Str(d, "id"),
            ["from"] = Str(d, "from") ?? Str(d, "chatId"),
            ["status"] = status,
            ["isVideo"] = Bool(d, "isVideo") ?? false,
            ["timestamp"] = Copy(d, "date") ?? Copy(d, "timestamp"),
        };
    }

    private static JsonArray ParticipantIds(JsonElement d)
    {
        var result = new JsonArray();
        if (d.ValueKind != JsonValueKind.Object || !d.TryGetProperty("participants", out var list)
            || list.ValueKind != JsonValueKind.Array)
            return result;
        foreach (var p in list.EnumerateArray())
        {
            var id = p.ValueKind == JsonValueKind.String ? p.GetString() : Str(p, "id");
            if (id is not null)
                result.Add(id);
        }
        return result;
    }

    private static JsonElement? Obj(JsonElement? e, string name) =>
        e is { ValueKind: JsonValueKind.Object } o && o.TryGetProperty(name, out var v)
            && v.ValueKind == JsonValueKind.Object ? v : null;

    private static string? Str(JsonElement? e, string name) =>
        e is { ValueKind: JsonValueKind.Object } o && o.TryGetProperty(name, out var v)
            && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static bool? Bool(JsonElement? e, string name) =>
        e is { ValueKind: JsonValueKind.Object } o && o.TryGetProperty(name, out var v)
            && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;

    private static JsonNode? Copy(JsonElement? e, string name) =>
        e is { ValueKind: JsonValueKind.Object } o && o.TryGetProperty(name, out var v)
            && v.ValueKind != JsonValueKind.Null ? JsonNode.Parse(v.GetRawText()) : null;
}

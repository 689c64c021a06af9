using System.Security.Cryptography;
using System.Text.Json.Nodes;
using QRCoder;

namespace Evolution.Events.Gateway.Demo;

/// <summary>
/// Webhook payloads shaped like Evolution API v2's (Baileys) for one instance: QR codes, connection
/// updates, incoming and outgoing messages, presence and calls. Made-up numbers and names.
/// </summary>
public sealed class DemoEvents(string instance, string serverUrl)
{
    private static readonly (string Jid, string Name)[] Contacts =
    [
        ("5511987654321@s.whatsapp.net", "Maria Souza"),
        ("5521998877665@s.whatsapp.net", "João Pereira"),
        ("447700900123@s.whatsapp.net", "Alice Walker"),
        ("4915112345678@s.whatsapp.net", "Jonas Becker"),
    ];

    private static readonly string[] Texts =
    [
        "Olá! Vocês entregam no sábado?", "Can I change my order to the blue one?", "Obrigado, recebi 👍",
        "What time do you open tomorrow?", "Pode me mandar o boleto de novo?", "Is the 20% discount still on?",
        "Bom dia! Meu pedido #4471 já saiu?", "Thanks, that solved it.",
    ];

    private static readonly string[] Replies =
    [
        "Sim! Entregamos de segunda a sábado, das 8h às 18h.", "Sure, done: your order now says blue.",
        "We open at 9 am. See you tomorrow!", "Saiu hoje cedo, chega até amanhã.",
    ];

    public const string OwnJid = "5511912345678@s.whatsapp.net";
    private int _sequence;

    /// <summary><c>qrcode.updated</c> with a real QR PNG (as a data URL) of a WhatsApp-like pairing reference.</summary>
    public JsonObject QrCode(int count)
    {
        var code = $"2@{Token(48)},{Token(44)},{Token(44)},{Token(24)}";
        using var generator = new QRCodeGenerator();
        using var data = generator.CreateQrCode(code, QRCodeGenerator.ECCLevel.L);
        var png = new PngByteQRCode(data).GetGraphic(6);
        return Envelope("qrcode.updated", new JsonObject
        {
            ["qrcode"] = new JsonObject
            {
                ["instance"] = instance,
                ["pairingCode"] = null,
                ["code"] = code,
                ["base64"] = "data:image/png;base64," + Convert.ToBase64String(png),
                ["count"] = count,
            },
        });
    }

    /// <summary><c>connection.update</c>: <c>close</c>, <c>connecting</c> or <c>open</c>.</summary>
    public JsonObject Connection(string state) => Envelope("connection.update", state == "open"
        ? new JsonObject
        {
            ["instance"] = instance,
            ["wuid"] = OwnJid,
            ["profileName"] = "Demo Store",
            ["profilePictureUrl"] = null,
            ["state"] = "open",
            ["statusReason"] = 200,
        }
        : new JsonObject { ["instance"] = instance, ["state"] = state, ["statusReason"] = state == "close" ? 428 : 200 });

    /// <summary><c>messages.upsert</c> (incoming) or <c>send.message</c> (our reply).</summary>
    public JsonObject Message(bool fromMe)
    {
        var (jid, name) = Pick(Contacts);
        var text = fromMe ? Pick(Replies) : Pick(Texts);
        var data = new JsonObject
        {
            ["key"] = new JsonObject { ["remoteJid"] = jid, ["fromMe"] = fromMe, ["id"] = "3EB0" + Token(16).ToUpperInvariant() },
            ["pushName"] = fromMe ? "Demo Store" : name,
            ["status"] = fromMe ? "SERVER_ACK" : "DELIVERY_ACK",
            ["message"] = _sequence % 3 == 0
                ? new JsonObject { ["extendedTextMessage"] = new JsonObject { ["text"] = text } }
                : new JsonObject { ["conversation"] = text },
            ["messageType"] = _sequence % 3 == 0 ? "extendedTextMessage" : "conversation",
            ["messageTimestamp"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            ["instanceId"] = InstanceId,
            ["source"] = fromMe ? "web" : "android",
        };
        return Envelope(fromMe ? "send.message" : "messages.upsert", data);
    }

    /// <summary><c>presence.update</c>: a contact typing, recording, available or paused.</summary>
    public JsonObject Presence()
    {
        var (jid, _) = Pick(Contacts);
        var presence = Pick(["composing", "available", "recording", "paused", "unavailable"]);
        return Envelope("presence.update", new JsonObject
        {
            ["id"] = jid,
            ["presences"] = new JsonObject { [jid] = new JsonObject { ["lastKnownPresence"] = presence } },
        });
    }

    /// <summary><c>call</c>: an incoming voice or video call (<c>offer</c>), later <c>reject</c>/<c>accept</c>/<c>timeout</c>.</summary>
    public JsonObject Call(string id, string from, string status, bool video) => Envelope("call", new JsonObject
    {
        ["chatId"] = from,
        ["from"] = from,
        ["id"] = id,
        ["date"] = DateTimeOffset.UtcNow.ToString("O"),
        ["offline"] = false,
        ["status"] = status,
        ["isVideo"] = video,
        ["isGroup"] = false,
    });

    public (string Id, string From, bool Video) NewCall() =>
        (Token(32).ToUpperInvariant(), Pick(Contacts).Jid, RandomNumberGenerator.GetInt32(3) == 0);

    private static readonly string InstanceId = Guid.NewGuid().ToString();

    private JsonObject Envelope(string eventName, JsonNode data)
    {
        _sequence++;
        return new JsonObject
        {
            ["event"] = eventName,
            ["instance"] = instance,
            ["data"] = data,
            ["destination"] = "http://127.0.0.1/demo",
            ["date_time"] = DateTimeOffset.Now.ToString("yyyy-MM-ddTHH:mm:ss.fffzzz"),
            ["sender"] = OwnJid,
            ["server_url"] = serverUrl,
        };
    }

    private static T Pick<T>(T[] items) => items[RandomNumberGenerator.GetInt32(items.Length)];

    private static string Token(int length) =>
        Convert.ToBase64String(RandomNumberGenerator.GetBytes(length)).Replace('+', 'x').Replace('/', 'y')[..length];
}

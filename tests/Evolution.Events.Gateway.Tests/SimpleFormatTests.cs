using System.Text.Json;
using System.Text.Json.Nodes;
using Evolution.Events.Gateway.Events;

namespace Evolution.Events.Gateway.Tests;

public class SimpleFormatTests
{
    private static List<JsonObject> Map(string eventName, string data, string? sender = "me@s.whatsapp.net")
    {
        var item = JsonDocument.Parse($$"""{"data":{{data}},"sender":{{JsonSerializer.Serialize(sender)}}}""").RootElement;
        var e = EnvelopeWriter.Build(EventNames.Find(eventName)!, "sales", item, "http://gw");
        return [.. e.SimpleFrames.Select(f => JsonNode.Parse(f.Span)!.AsObject())];
    }

    private static JsonObject One(string eventName, string data, string simpleEvent)
    {
        var frame = Assert.Single(Map(eventName, data));
        Assert.Equal(["data", "event", "instance"], frame.Select(p => p.Key).Order());
        Assert.Equal(simpleEvent, frame["event"]!.GetValue<string>());
        Assert.Equal("sales", frame["instance"]!.GetValue<string>());
        return frame["data"]!.AsObject();
    }

    [Theory]
    [InlineData("messages.upsert")]
    [InlineData("messages.set")]
    [InlineData("messages.update")]
    [InlineData("messages.edited")]
    [InlineData("messages.delete")]
    [InlineData("send.message")]
    [InlineData("send.message.update")]
    public void MessagesBecomeMessage(string eventName)
    {
        var d = One(eventName, """
            {"key":{"id":"ABC","remoteJid":"5511@s.whatsapp.net","fromMe":false},"messageType":"conversation",
             "message":{"conversation":"hello"},"messageTimestamp":1621345678}
            """, "message");
        Assert.Equal("ABC", d["id"]!.GetValue<string>());
        Assert.Equal("5511@s.whatsapp.net", d["from"]!.GetValue<string>());
        Assert.Equal("me@s.whatsapp.net", d["to"]!.GetValue<string>());
        Assert.Equal("conversation", d["type"]!.GetValue<string>());
        Assert.Equal("hello", d["content"]!.GetValue<string>());
        Assert.Equal(1621345678, d["timestamp"]!.GetValue<long>());
    }

    [Fact]
    public void ExtendedTextSentMessageAndLists()
    {
        var d = One("send.message", """
            {"key":{"id":"X","remoteJid":"5522@s.whatsapp.net","fromMe":true},"messageType":"extendedTextMessage",
             "message":{"extendedTextMessage":{"text":"link http://x"}}}
            """, "message");
        Assert.Equal("link http://x", d["content"]!.GetValue<string>());
        Assert.Equal("me@s.whatsapp.net", d["from"]!.GetValue<string>());
        Assert.Equal("5522@s.whatsapp.net", d["to"]!.GetValue<string>());
        var frames = Map("messages.set", """{"messages":[{"key":{"id":"1"}},{"key":{"id":"2"}}]}""");
        Assert.Equal(["1", "2"], frames.Select(f => f["data"]!["id"]!.GetValue<string>()));
    }

    [Theory]
    [InlineData("open", "connected")]
    [InlineData("connecting", "connecting")]
    [InlineData("close", "disconnected")]
    public void ConnectionUpdateBecomesConnection(string state, string expected)
    {
        var d = One("connection.update", $$"""{"state":"{{state}}","wuid":"5511@s.whatsapp.net","profileName":"Ana","statusReason":200}""", "connection");
        Assert.Equal(expected, d["state"]!.GetValue<string>());
        Assert.Equal("5511@s.whatsapp.net", d["info"]!["me"]!["id"]!.GetValue<string>());
        Assert.Equal("Ana", d["info"]!["me"]!["name"]!.GetValue<string>());
    }

    [Fact]
    public void QrCodeBecomesConnectionWithTheQr()
    {
        var d = One("qrcode.updated", """{"qrcode":{"base64":"data:image/png;base64,AAA","code":"2@xyz","pairingCode":null}}""", "connection");
        Assert.Equal("qrcode", d["state"]!.GetValue<string>());
        Assert.Equal("data:image/png;base64,AAA", d["qrcode"]!.GetValue<string>());
        Assert.Equal("2@xyz", d["code"]!.GetValue<string>());
    }

    [Fact]
    public void ContactsUpdateAndStatusInstanceBecomeStatus()
    {
        var contacts = Map("contacts.update", """[{"remoteJid":"5511@s.whatsapp.net","status":"Hello, I'm using WhatsApp!"},{"remoteJid":"5522@s.whatsapp.net"}]""");
        Assert.Equal(2, contacts.Count);
        Assert.All(contacts, f => Assert.Equal("status", f["event"]!.GetValue<string>()));
        Assert.Equal("5511@s.whatsapp.net", contacts[0]["data"]!["from"]!.GetValue<string>());
        Assert.Equal("Hello, I'm using WhatsApp!", contacts[0]["data"]!["status"]!.GetValue<string>());
        var d = One("status.instance", """{"instance":"sales","status":"closed"}""", "status");
        Assert.Equal("sales", d["from"]!.GetValue<string>());
        Assert.Equal("closed", d["status"]!.GetValue<string>());
    }

    [Fact]
    public void GroupsBecomeGroupWithAction()
    {
        var created = One("groups.upsert", """[{"id":"123@g.us","subject":"Team","owner":"5511@s.whatsapp.net","participants":[{"id":"a@s"},{"id":"b@s"}]}]""", "group");
        Assert.Equal("create", created["action"]!.GetValue<string>());
        Assert.Equal("123@g.us", created["id"]!.GetValue<string>());
        Assert.Equal("Team", created["metadata"]!["name"]!.GetValue<string>());
        Assert.Equal(["a@s", "b@s"], created["metadata"]!["participants"]!.AsArray().Select(p => p!.GetValue<string>()));
        Assert.Equal("5511@s.whatsapp.net", created["metadata"]!["owner"]!.GetValue<string>());
        Assert.Equal("update", One("groups.update", """{"id":"123@g.us","subject":"New"}""", "group")["action"]!.GetValue<string>());
        foreach (var action in new[] { "add", "remove", "promote", "demote" })
        {
            var d = One("group-participants.update", $$"""{"id":"123@g.us","participants":["c@s"],"action":"{{action}}"}""", "group");
            Assert.Equal($"participant_{action}", d["action"]!.GetValue<string>());
            Assert.Equal("c@s", d["metadata"]!["participants"]![0]!.GetValue<string>());
        }
    }

    [Fact]
    public void PresenceUpdateBecomesPresence()
    {
        var d = One("presence.update", """{"id":"5511@s.whatsapp.net","presences":{"5511@s.whatsapp.net":{"lastKnownPresence":"composing","lastSeen":1621345678}}}""", "presence");
        Assert.Equal("5511@s.whatsapp.net", d["id"]!.GetValue<string>());
        Assert.Equal("composing", d["presence"]!.GetValue<string>());
        Assert.Equal(1621345678, d["lastSeen"]!.GetValue<long>());
        Assert.True(d["typing"]!.GetValue<bool>());
    }

    [Theory]
    [InlineData("offer", "offer")]
    [InlineData("ringing", "offer")]
    [InlineData("accept", "accept")]
    [InlineData("reject", "reject")]
    [InlineData("timeout", "end")]
    [InlineData("terminate", "end")]
    public void CallBecomesCallWithStatus(string status, string expected)
    {
        var d = One("call", $$"""[{"id":"C1","from":"5511@s.whatsapp.net","status":"{{status}}","isVideo":true,"date":1621345678}]""", "call");
        Assert.Equal("C1", d["id"]!.GetValue<string>());
        Assert.Equal("5511@s.whatsapp.net", d["from"]!.GetValue<string>());
        Assert.Equal(expected, d["status"]!.GetValue<string>());
        Assert.True(d["isVideo"]!.GetValue<bool>());
        Assert.Equal(1621345678, d["timestamp"]!.GetValue<long>());
    }

    [Theory]
    [InlineData("chats.upsert")]
    [InlineData("labels.edit")]
    [InlineData("application.startup")]
    [InlineData("contacts.upsert")]
    [InlineData("call.upsert")]
    public void EventsWithoutCounterpartAreNotSent(string eventName) => Assert.Empty(Map(eventName, """{"id":"x"}"""));

    [Fact]
    public void OddDataNeverThrows()
    {
        Assert.Empty(Map("messages.upsert", "null"));
        Assert.Empty(Map("messages.upsert", "\"text\""));
        Assert.Single(Map("connection.update", "{}"));
    }

    [Fact]
    public async Task FormatSimpleOverTheWire()
    {
        await using var gw = await TestGateway.StartAsync();
        using var ws = await gw.ConnectAsync($"/?apikey={TestGateway.Key}&format=simple");
        await gw.IngestAsync($"[{TestGateway.Event("chats.upsert", "sales")},"
            + TestGateway.Event("messages.upsert", "sales", """{"key":{"id":"M1","remoteJid":"x@s"},"message":{"conversation":"hi"}}""") + "]");
        var frame = await TestGateway.ReceiveJsonAsync(ws);
        Assert.Equal("message", frame["event"]!.GetValue<string>());
        Assert.Equal("hi", frame["data"]!["content"]!.GetValue<string>());
    }
}

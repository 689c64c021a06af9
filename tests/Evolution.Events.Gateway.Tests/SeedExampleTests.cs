using System.Text.Json.Nodes;

namespace Evolution.Events.Gateway.Tests;

/// <summary>
/// The client examples of the seeds (shared/seeds), run in Node as close to verbatim as possible
/// (tests/interop/gateway/seed*.mjs; every edit is marked "// EDIT: why" there) against a real gateway.
/// </summary>
public class SeedExampleTests
{
    private const string QrData = """{"qrcode":{"instance":"sales","pairingCode":null,"code":"2@abc","base64":"data:image/png;base64,iVBORw0KGgo="}}""";

    [Fact]
    public async Task Seed001NodeJsExampleGetsTheQrCodeThenConnectionOpen()
    {
        await using var gw = await TestGateway.StartAsync();
        var token = await gw.CreateInstanceAsync("sales");
        // the seed passes no key; the contract requires one, so the script adds auth: { apikey } (marked EDIT)
        await using var node = NodeClient.Start("seed001-nodejs.mjs", gw.BaseUri.ToString(), "sales", token);
        await node.NextAsync(l => Log(l, 0) == "Connected to the WebSocket server successfully");

        await gw.IngestAsync($"[{TestGateway.Event("QRCODE_UPDATED", "sales", QrData)},"
            + $"{TestGateway.Event("connection.update", "sales", """{"instance":"sales","state":"connecting"}""")},"
            + $"{TestGateway.Event("connection-update", "sales", """{"instance":"sales","state":"open","statusReason":200}""")}]");
        var qr = await node.NextAsync(l => Log(l, 0) == "Event received:");
        Assert.Equal("qrcode.updated", (string?)qr["log"]![1]!["event"]);
        Assert.Equal("data:image/png;base64,iVBORw0KGgo=", Log(await node.NextAsync(l => Log(l, 0) == "qrcode"), 1));
        await node.NextAsync(l => Log(l, 0) == "Attempting to connect...");
        await node.NextAsync(l => Log(l, 0) == "Successfully connected...");
        Assert.Equal(0, await node.WaitForExitAsync());
    }

    [Fact]
    public async Task Seed001ExampleWithoutAKeyIsRefusedWithAReason()
    {
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateInstanceAsync("sales");
        await using var node = NodeClient.Start("seed001-nodejs.mjs", gw.BaseUri.ToString(), "sales", "");
        var error = await node.NextAsync(l => Log(l, 0) == "Connection error:");
        Assert.Equal("Invalid API key", Log(error, 1));
    }

    [Fact]
    public async Task Seed000JavaScriptWebSocketExampleInBothFormats()
    {
        await using var gw = await TestGateway.StartAsync();
        // the seed's 'ws://localhost:2559?apikey=your_api_key_here', with this gateway's address and key
        var url = $"ws://{gw.BaseUri.Authority}?apikey={TestGateway.Key}";
        await using var full = NodeClient.Start("seed000-websocket.mjs", url, "2");
        await using var simple = NodeClient.Start("seed000-websocket.mjs", url + "&format=simple", "4");
        await full.NextAsync(l => Log(l, 0) == "Connected to WebSocket");
        await simple.NextAsync(l => Log(l, 0) == "Connected to WebSocket");

        var message = """{"key":{"remoteJid":"5511999999999@s.whatsapp.net","fromMe":false,"id":"3EB0ABC"},"messageType":"conversation","message":{"conversation":"Hello from the seed"},"messageTimestamp":1621345678}""";
        await gw.IngestAsync($"[{TestGateway.Event("messages.upsert", "sales", message)},"
            + $"{TestGateway.Event("connection.update", "sales", """{"state":"open"}""")},"
            + $"{TestGateway.Event("qrcode.updated", "sales", QrData)},"
            + $"{TestGateway.Event("call", "sales", """{"id":"c1","from":"5511@s.whatsapp.net","status":"offer","isVideo":true}""")}]");

        var first = (await full.NextAsync(l => Log(l, 0) == "Received:"))["log"]![1]!.AsObject();
        Assert.Equal("messages.upsert", (string?)first["event"]);
        Assert.Equal("Hello from the seed", (string?)first["data"]!["message"]!["conversation"]);
        Assert.Equal("connection.update", (string?)(await full.NextAsync(l => Log(l, 0) == "Received:"))["log"]![1]!["event"]);
        Assert.Equal(0, await full.WaitForExitAsync());

        Assert.Equal("Hello from the seed", Log(await simple.NextAsync(l => Log(l, 0) == "New message:"), 1));
        Assert.Equal("connected", Log(await simple.NextAsync(l => Log(l, 0) == "Connection state:"), 1));
        Assert.Equal("qrcode", Log(await simple.NextAsync(l => Log(l, 0) == "Connection state:"), 1));
        Assert.Equal("offer", Log(await simple.NextAsync(l => Log(l, 0) == "Call status:"), 1));
        Assert.Equal(0, await simple.WaitForExitAsync());
    }

    [Fact]
    public async Task Seed003EventsExampleWithInstanceToken()
    {
        await using var gw = await TestGateway.StartAsync();
        var token = await gw.CreateInstanceAsync("sales");
        // the seed's url "ws://localhost:8084/ws/events" and its token, with this gateway's
        await using var node = NodeClient.Start("seed003-events.mjs", $"ws://{gw.BaseUri.Authority}/ws/events", token);
        for (var i = 0; i < 3; i++)
            await node.NextAsync(l => Log(l, 0) == "Connected to the server");

        await gw.IngestAsync($"[{TestGateway.Event("presence.update", "sales")},{TestGateway.Event("qrcode.updated", "other", QrData)},"
            + $"{TestGateway.Event("CONNECTION_UPDATE", "sales", """{"state":"open"}""")},{TestGateway.Event("messages-upsert", "sales")},"
            + $"{TestGateway.Event("qrcode.updated", "sales", QrData)}]");
        var seen = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var msg = (await node.NextAsync(l => l["log"]?[0] is JsonObject))["log"]![0]!.AsObject();
            Assert.Equal("sales", (string?)msg["instance"]);
            seen.Add((string)msg["event"]!);
        }
        Assert.Equal(["connection.update", "messages.upsert", "qrcode.updated"], seen.Order());
        Assert.Equal(0, await node.WaitForExitAsync());
    }

    /// <summary>Argument <paramref name="index"/> of a <c>{"log":[…]}</c> line as text (null when absent or not a string).</summary>
    private static string? Log(JsonObject line, int index) =>
        line["log"] is JsonArray args && args.Count > index && args[index] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}

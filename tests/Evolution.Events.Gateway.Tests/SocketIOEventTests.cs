using System.Text.Json.Nodes;

namespace Evolution.Events.Gateway.Tests;

/// <summary>What Node socket.io-client 4.x sockets receive (tests/interop/gateway/client.mjs).</summary>
public class SocketIOEventTests
{
    private static readonly string[] EnvelopeKeys = ["data", "date_time", "event", "instance", "sender", "server_url"];

    [Fact]
    public async Task InstanceNamespaceFollowsItsSettingsAndGlobalNamespaceGetsEverything()
    {
        await using var gw = await TestGateway.StartAsync(new() { ["WEBSOCKET_GLOBAL_EVENTS"] = "true" });
        var sales = await gw.CreateInstanceAsync("sales");
        await gw.SetSettingsAsync("sales", true, "QRCODE_UPDATED", "CONNECTION_UPDATE");
        await using var scoped = await ConnectAsync(gw, "/sales", Auth(sales));
        await using var main = await ConnectAsync(gw, "/", Auth(TestGateway.Key));

        await gw.IngestAsync($"[{TestGateway.Event("messages.upsert", "sales")},{TestGateway.Event("qrcode.updated", "sales")},"
            + $"{TestGateway.Event("call", "other")},{TestGateway.Event("connection.update", "sales")}]");
        Assert.Equal("qrcode.updated", (string?)(await scoped.NextEventAsync())["event"]);
        Assert.Equal("connection.update", (string?)(await scoped.NextEventAsync())["event"]);
        foreach (var expected in new[] { "sales/messages.upsert", "sales/qrcode.updated", "other/call", "sales/connection.update" })
            Assert.Equal(expected, Describe(await main.NextEventAsync()));

        // enabled:false: nothing on /sales, the main namespace still gets it
        await gw.SetSettingsAsync("sales", false, "QRCODE_UPDATED");
        await gw.IngestAsync(TestGateway.Event("qrcode.updated", "sales", """{"n":1}"""));
        Assert.Equal("sales/qrcode.updated", Describe(await main.NextEventAsync()));
        // re-enabled with everything: the first event /sales sees is the marker, so n:1 never reached it
        await gw.SetSettingsAsync("sales", true);
        await gw.IngestAsync(TestGateway.Event("labels.edit", "sales", """{"marker":true}"""));
        var first = await scoped.NextEventAsync();
        Assert.Equal("labels.edit", (string?)first["event"]);
        Assert.True((bool)first["args"]![0]!["data"]!["marker"]!);
    }

    [Fact]
    public async Task WithTheMsgPackParserAMsgPackClientGetsEventsAndAcks()
    {
        // WEBSOCKET_PARSER=msgpack: the stock client with socket.io-msgpack-parser; without the option it could not connect
        await using var gw = await TestGateway.StartAsync(new() { ["WEBSOCKET_PARSER"] = "msgpack" });
        await gw.CreateInstanceAsync("sales");
        var options = Auth(TestGateway.Key);
        options["parser"] = "msgpack";
        await using var client = await ConnectAsync(gw, "/sales", options, "websocket");

        await gw.IngestAsync(TestGateway.Event("qrcode.updated", "sales", """{"n":7}"""));
        var e = await client.NextEventAsync();
        Assert.Equal("qrcode.updated", (string?)e["event"]);
        var args = e["args"]!.AsArray();
        Assert.Equal(7, (int)args[0]!["data"]!["n"]!);
        Assert.Equal(2, args.Count); // the recovery offset, as with the default parser
    }

    [Fact]
    public async Task MainNamespaceGetsNothingWithoutGlobalEvents()
    {
        await using var gw = await TestGateway.StartAsync(new() { ["WEBSOCKET_GLOBAL_EVENTS"] = "false" });
        await using var main = await ConnectAsync(gw, "/", Auth(TestGateway.Key));
        await using var scoped = await ConnectAsync(gw, "/sales", Auth(TestGateway.Key));
        await gw.IngestAsync(TestGateway.Event("messages.upsert", "sales"));
        // the global key opened /sales before the instance existed: its events arrive once it does
        Assert.Equal("sales/messages.upsert", Describe(await scoped.NextEventAsync()));
        await main.AssertNoEventAsync(TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public async Task EnvelopeHasSixKeysAndEventsKeepTheirOrderAndDottedNames()
    {
        await using var gw = await TestGateway.StartAsync(new() { ["SERVER_URL"] = "https://gw.example" });
        await using var client = await ConnectAsync(gw, "/sales", Auth(TestGateway.Key), "websocket");
        string[] forms = ["messages.upsert", "MESSAGES_UPSERT", "messages-upsert", "group-participants.update", "GROUP_PARTICIPANTS_UPDATE", "typebot-change-status"];
        var items = Enumerable.Range(0, 30).Select(i =>
            $$"""{"event":"{{forms[i % forms.Length]}}","instance":"sales","data":{"seq":{{i}}},"date_time":"2024-01-01T00:00:00Z","sender":"551199@s.whatsapp.net","apikey":"producer-secret","destination":"https://hook.example"}""");
        await gw.IngestAsync("[" + string.Join(',', items) + "]");
        long previousOffset = 0;
        for (var i = 0; i < 30; i++)
        {
            var e = await client.NextEventAsync();
            var args = e["args"]!.AsArray();
            // the envelope, then the connection state recovery offset (recovery is on by default): a string, increasing
            Assert.Equal(2, args.Count);
            var offset = long.Parse((string)args[1]!);
            Assert.True(offset > previousOffset);
            previousOffset = offset;
            var envelope = args[0]!.AsObject();
            Assert.Equal(EnvelopeKeys, envelope.Select(p => p.Key).Order());
            Assert.Equal(i, (int)envelope["data"]!["seq"]!);
            var dotted = (i % forms.Length) switch
            {
                < 3 => "messages.upsert",
                < 5 => "group-participants.update",
                _ => "typebot.change-status",
            };
            Assert.Equal(dotted, (string?)e["event"]);
            Assert.Equal(dotted, (string?)envelope["event"]);
            Assert.Equal("sales", (string?)envelope["instance"]);
            Assert.Equal("551199@s.whatsapp.net", (string?)envelope["sender"]);
            Assert.Equal("https://gw.example", (string?)envelope["server_url"]);
            Assert.DoesNotContain("producer-secret", e.ToJsonString(), StringComparison.Ordinal);
        }

        // the name taken from the URL (WEBHOOK_BY_EVENTS), fields the producer did not send are null
        await gw.IngestAsync("""{"instance":"sales","data":{"by":"url"}}""", "/webhook/qrcode-updated");
        var fromUrl = (await client.NextEventAsync())["args"]![0]!.AsObject();
        Assert.Equal("qrcode.updated", (string?)fromUrl["event"]);
        Assert.Equal(EnvelopeKeys, fromUrl.Select(p => p.Key).Order());
        Assert.Null(fromUrl["sender"]);
        Assert.Null(fromUrl["date_time"]);
    }

    [Fact]
    public async Task PollingWebSocketAndUpgradedClientsAllReceive()
    {
        await using var gw = await TestGateway.StartAsync();
        var token = await gw.CreateInstanceAsync("sales");
        var url = gw.BaseUri + "sales";
        var polling = new JsonObject { ["auth"] = new JsonObject { ["token"] = token }, ["transports"] = new JsonArray("polling") };
        var websocket = new JsonObject { ["auth"] = new JsonObject { ["token"] = token }, ["transports"] = new JsonArray("websocket") };
        await using var pollingOnly = NodeClient.Start("client.mjs", url, polling.ToJsonString());
        await using var websocketOnly = NodeClient.Start("client.mjs", url, websocket.ToJsonString());
        await using var upgraded = NodeClient.Start("client.mjs", url, Auth(token).ToJsonString());
        Assert.Equal("polling", (string?)(await pollingOnly.NextOfTypeAsync("connect"))["transport"]);
        Assert.Equal("websocket", (string?)(await websocketOnly.NextOfTypeAsync("connect"))["transport"]);
        Assert.Equal("polling", (string?)(await upgraded.NextOfTypeAsync("open"))["transport"]);
        // "connect" and "upgrade" may come in either order
        var upgradedSeen = new HashSet<string>();
        while (!upgradedSeen.Contains("connect") || !upgradedSeen.Contains("upgrade"))
        {
            var line = await upgraded.NextAsync(l => (string?)l["type"] is "connect" or "upgrade");
            upgradedSeen.Add((string)line["type"]!);
            if ((string?)line["type"] == "upgrade")
                Assert.Equal("websocket", (string?)line["transport"]);
        }

        var batch = string.Join(',', Enumerable.Range(0, 5).Select(i => TestGateway.Event("presence.update", "sales", $$"""{"i":{{i}}}""")));
        await gw.IngestAsync($"[{batch}]");
        foreach (var client in new[] { pollingOnly, websocketOnly, upgraded })
        {
            for (var i = 0; i < 5; i++)
                Assert.Equal(i, (int)(await client.NextEventAsync())["args"]![0]!["data"]!["i"]!);
        }
    }

    internal static JsonObject Auth(string key) => new() { ["auth"] = new JsonObject { ["apikey"] = key } };

    /// <summary>Starts client.mjs on <paramref name="nsp"/> and waits until it is connected (the connect line stays readable).</summary>
    internal static async Task<NodeClient> ConnectAsync(TestGateway gw, string nsp, JsonObject options, string? onlyTransport = null)
    {
        if (onlyTransport is not null)
            options["transports"] = new JsonArray(onlyTransport);
        var client = NodeClient.Start("client.mjs", gw.BaseUri.ToString().TrimEnd('/') + nsp, options.ToJsonString());
        var first = await client.NextAsync(l => (string?)l["type"] is "connect" or "connect_error");
        if ((string?)first["type"] != "connect")
        {
            await client.DisposeAsync();
            Assert.Fail($"{nsp}: {first.ToJsonString()}");
        }
        return client;
    }

    private static string Describe(JsonObject eventLine) =>
        $"{eventLine["args"]![0]!["instance"]}/{eventLine["event"]}";
}

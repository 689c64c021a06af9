using System.Text.Json.Nodes;

namespace Evolution.Events.Gateway.Tests;

/// <summary>
/// Older official clients against the gateway: socket.io-client 4.0.x … 4.7.x (the newest patch of each minor, npm
/// aliases <c>sio40</c> … <c>sio47</c> in tests/interop/package.json; 4.8 is the suite's everyday client), each driven by
/// tests/interop/gateway/versioned-client.mjs. One test per version; in each, one socket on polling only and one on
/// websocket only, on an instance namespace with the instance token: connect, receive an ingested event, emit with an
/// ack (relayed to a real upstream, the answer comes back), lose the connection, reconnect by itself, receive again.
/// </summary>
public class ClientMatrixTests
{
    [Theory]
    [InlineData("sio40", "4.0.")]
    [InlineData("sio41", "4.1.")]
    [InlineData("sio42", "4.2.")]
    [InlineData("sio43", "4.3.")]
    [InlineData("sio44", "4.4.")]
    [InlineData("sio45", "4.5.")]
    [InlineData("sio46", "4.6.")]
    [InlineData("sio47", "4.7.")]
    public async Task OlderClient_ConnectsReceivesAcksReconnects(string package, string versionPrefix)
    {
        await using var upstream = await SocketIORelayTests.Upstream.StartAsync();
        await using var gw = await TestGateway.StartAsync(new() { ["INBOUND_WEBHOOK_URL"] = upstream.Url("/ok") });
        var token = await gw.CreateInstanceAsync("sales");
        await using var polling = Start(package, gw, token, "polling");
        await using var websocket = Start(package, gw, token, "websocket");
        foreach (var (client, transport) in new[] { (polling, "polling"), (websocket, "websocket") })
        {
            Assert.StartsWith(versionPrefix, (string?)(await client.NextOfTypeAsync("version"))["version"], StringComparison.Ordinal);
            var connect = await client.NextAsync(l => (string?)l["type"] is "connect" or "connect_error");
            Assert.True((string?)connect["type"] == "connect", $"{package} over {transport}: {connect.ToJsonString()}");
            Assert.Equal(transport, (string?)connect["transport"]);
        }

        await gw.IngestAsync(TestGateway.Event("messages.upsert", "sales", """{"n":1}"""));
        var ackId = 0;
        foreach (var (client, transport) in new[] { (polling, "polling"), (websocket, "websocket") })
        {
            var e = await client.NextEventAsync();
            Assert.Equal("messages.upsert", (string?)e["event"]);
            Assert.Equal(1, (int)e["args"]![0]!["data"]!["n"]!);

            // client → server with an ack: relayed upstream, the upstream's JSON is the ack's argument
            await client.SendAsync(new JsonObject { ["cmd"] = "emit", ["event"] = "send.message", ["args"] = new JsonArray(new JsonObject { ["message"] = transport }), ["id"] = ++ackId });
            var ack = await client.NextAsync(l => (string?)l["type"] == "ack" && (int?)l["id"] == ackId);
            Assert.True((bool)ack["args"]![0]!["ok"]!, ack.ToJsonString());
            Assert.Equal(transport, (string?)ack["args"]![0]!["echo"]!["message"]);
            var relayed = await upstream.Requests.ReadAsync();
            Assert.Equal("send.message", (string?)relayed["event"]);
            Assert.Equal("sales", (string?)relayed["instance"]);

            // the connection goes away under the socket: the client reconnects by itself on the same transport
            Assert.Equal(transport, (string?)(await Reconnect(client))["transport"]);
        }

        await gw.IngestAsync(TestGateway.Event("messages.upsert", "sales", """{"n":2}"""));
        foreach (var client in new[] { polling, websocket })
        {
            var e = await client.NextEventAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(2, (int)e["args"]![0]!["data"]!["n"]!);
        }
    }

    private static NodeClient Start(string package, TestGateway gw, string token, string transport) =>
        NodeClient.Start("versioned-client.mjs", package, gw.BaseUri.ToString().TrimEnd('/') + "/sales",
            new JsonObject { ["auth"] = new JsonObject { ["apikey"] = token }, ["transports"] = new JsonArray(transport) }.ToJsonString());

    /// <summary>Drops the Engine.IO connection and returns the next connect line (after a disconnect line).</summary>
    private static async Task<JsonObject> Reconnect(NodeClient client)
    {
        await client.SendAsync(new JsonObject { ["cmd"] = "drop" });
        await client.NextOfTypeAsync("disconnect");
        return await client.NextOfTypeAsync("connect", TimeSpan.FromSeconds(20));
    }
}

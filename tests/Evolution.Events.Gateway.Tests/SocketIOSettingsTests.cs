using System.Net;
using System.Text.Json.Nodes;
using Evolution.Events.EngineIO;
using Evolution.Events.Gateway.Options;
using Evolution.Events.SocketIO;
using Microsoft.Extensions.DependencyInjection;

namespace Evolution.Events.Gateway.Tests;

/// <summary>
/// Socket.IO's own settings as environment variables (WEBSOCKET_PING_INTERVAL_MS, WEBSOCKET_PING_TIMEOUT_MS,
/// WEBSOCKET_SEND_QUEUE, WEBSOCKET_OVERFLOW_POLICY, WEBSOCKET_TRANSPORTS): what a client sees, and what the server runs with.
/// </summary>
public sealed class SocketIOSettingsTests
{
    [Fact]
    public async Task Defaults_AreSocketIOs_AndTheHandshakeSaysSo()
    {
        await using var gw = await TestGateway.StartAsync();
        var open = await HandshakeAsync(gw);
        Assert.Equal(25_000, (int)open["pingInterval"]!);
        Assert.Equal(20_000, (int)open["pingTimeout"]!);
        Assert.Equal(["websocket"], open["upgrades"]!.AsArray().Select(u => (string)u!));
        var engine = gw.App.Services.GetRequiredService<SocketIOServer>().Options.Engine;
        Assert.Equal(4096, engine.MaxQueuedPackets);
        Assert.Equal(OverflowPolicy.Disconnect, engine.OverflowPolicy);
    }

    [Fact]
    public async Task EachVariable_ReachesTheServer()
    {
        await using var gw = await TestGateway.StartAsync(new()
        {
            ["WEBSOCKET_PING_INTERVAL_MS"] = "1500",
            ["WEBSOCKET_PING_TIMEOUT_MS"] = "900",
            ["WEBSOCKET_SEND_QUEUE"] = "77",
            ["WEBSOCKET_OVERFLOW_POLICY"] = "drop-newest",
        });
        var open = await HandshakeAsync(gw);
        Assert.Equal(1500, (int)open["pingInterval"]!);
        Assert.Equal(900, (int)open["pingTimeout"]!);
        var engine = gw.App.Services.GetRequiredService<SocketIOServer>().Options.Engine;
        Assert.Equal(77, engine.MaxQueuedPackets);
        Assert.Equal(OverflowPolicy.DropNewest, engine.OverflowPolicy);
    }

    [Fact]
    public async Task WebSocketOnly_RefusesPolling_AndOffersNoUpgrade()
    {
        await using var gw = await TestGateway.StartAsync(new() { ["WEBSOCKET_TRANSPORTS"] = "websocket" });
        using var polling = await gw.Http.GetAsync(new Uri("/socket.io/?EIO=4&transport=polling", UriKind.Relative));
        Assert.Equal(HttpStatusCode.BadRequest, polling.StatusCode);
        Assert.Equal(0, (int)JsonNode.Parse(await polling.Content.ReadAsStringAsync())!["code"]!); // "Transport unknown"
    }

    [Fact]
    public async Task AllowEio3_ServesSocketIO2Clients_WhichAreRefusedByDefault()
    {
        await using (var plain = await TestGateway.StartAsync())
        {
            using var refused = await plain.Http.GetAsync(new Uri("/socket.io/?EIO=3&transport=polling&b64=1", UriKind.Relative));
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Equal(5, (int)JsonNode.Parse(await refused.Content.ReadAsStringAsync())!["code"]!); // "Unsupported protocol version"
        }

        await using var gw = await TestGateway.StartAsync(new() { ["WEBSOCKET_ALLOW_EIO3"] = "true" });
        using var response = await gw.Http.GetAsync(new Uri("/socket.io/?EIO=3&transport=polling&b64=1", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadAsStringAsync();
        Assert.Matches(@"^\d+:0\{""sid"":", body); // Engine.IO 3's payload: <length>:<open packet>
    }

    [Fact]
    public async Task PollingOnly_OffersNoUpgrade()
    {
        await using var gw = await TestGateway.StartAsync(new() { ["WEBSOCKET_TRANSPORTS"] = "polling" });
        var open = await HandshakeAsync(gw);
        Assert.Empty(open["upgrades"]!.AsArray());
    }

    [Theory]
    [InlineData("WEBSOCKET_OVERFLOW_POLICY", "drop-oldest")]
    [InlineData("WEBSOCKET_TRANSPORTS", "polling,carrier-pigeon")]
    [InlineData("WEBSOCKET_TRANSPORTS", ",")]
    [InlineData("WEBSOCKET_PING_INTERVAL_MS", "0")]
    [InlineData("WEBSOCKET_PING_TIMEOUT_MS", "soon")]
    public void ABadValue_StopsStartUp_NamingTheVariable(string variable, string value)
    {
        var error = Assert.Throws<GatewayConfigurationException>(() =>
            GatewayApp.Build([], new Dictionary<string, string?> { [variable] = value }, hermetic: true));
        Assert.StartsWith($"Invalid configuration: {variable} ", error.Message, StringComparison.Ordinal);
    }

    private static async Task<JsonNode> HandshakeAsync(TestGateway gw)
    {
        var body = await gw.Http.GetStringAsync(new Uri("/socket.io/?EIO=4&transport=polling", UriKind.Relative));
        Assert.StartsWith("0{", body, StringComparison.Ordinal);
        return JsonNode.Parse(body[1..])!;
    }
}

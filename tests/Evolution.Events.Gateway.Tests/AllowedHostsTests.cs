using System.Net;
using System.Net.WebSockets;
using System.Text.Json.Nodes;
using Evolution.Events.Gateway.Options;
using Microsoft.Extensions.Configuration;

namespace Evolution.Events.Gateway.Tests;

/// <summary>
/// WEBSOCKET_ALLOWED_HOSTS: a client from a listed address may open an existing instance's events without a key
/// (Socket.IO namespace, plain WebSocket with ?instance=), never <c>/</c> nor REST; the address is the TCP peer,
/// or the client named by X-Forwarded-For only when the peer is in TRUSTED_PROXIES.
/// </summary>
public class AllowedHostsTests
{
    private const string QrData = """{"qrcode":{"instance":"sales","pairingCode":null,"code":"2@abc","base64":"data:image/png;base64,iVBORw0KGgo="}}""";

    private static JsonObject ForwardedFor(string address) =>
        new() { ["extraHeaders"] = new JsonObject { ["x-forwarded-for"] = address }, ["transports"] = new JsonArray("websocket") };

    private static async Task<ClientWebSocket> ConnectAsync(TestGateway gw, string pathAndQuery, string? forwardedFor)
    {
        var ws = new ClientWebSocket();
        if (forwardedFor is not null)
            ws.Options.SetRequestHeader("X-Forwarded-For", forwardedFor);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await ws.ConnectAsync(gw.WsUri(pathAndQuery), timeout.Token);
        return ws;
    }

    [Fact]
    public async Task Seed001ExampleRunsUnchangedWithoutAKey_FromAnAllowedAddress()
    {
        await using var gw = await TestGateway.StartAsync(new() { ["WEBSOCKET_ALLOWED_HOSTS"] = "127.0.0.1" });
        await gw.CreateInstanceAsync("sales");
        // "" = the seed as written: no key at all
        await using var node = NodeClient.Start("seed001-nodejs.mjs", gw.BaseUri.ToString(), "sales", "");
        await node.NextAsync(l => (string?)l["log"]![0] == "Connected to the WebSocket server successfully");
        await gw.IngestAsync($"[{TestGateway.Event("qrcode.updated", "sales", QrData)},"
            + $"{TestGateway.Event("connection.update", "sales", """{"state":"open"}""")}]");
        await node.NextAsync(l => (string?)l["log"]![0] == "qrcode");
        await node.NextAsync(l => (string?)l["log"]![0] == "Successfully connected...");
        Assert.Equal(0, await node.WaitForExitAsync());
    }

    [Fact]
    public async Task KeylessClientGetsOnlyWhatAnInstanceNamespaceAllows()
    {
        await using var gw = await TestGateway.StartAsync(new()
        {
            ["WEBSOCKET_ALLOWED_HOSTS"] = "localhost",
            ["WEBSOCKET_GLOBAL_EVENTS"] = "true",
        });
        await gw.CreateInstanceAsync("sales");

        // the main namespace / (global events): refused
        await using var main = NodeClient.Start("client.mjs", gw.BaseUri.ToString(), "{}");
        Assert.Equal("Invalid API key", (string?)(await main.NextOfTypeAsync("connect_error"))["message"]);
        // an instance that does not exist: refused (a keyless client creates nothing)
        await using var unknown = NodeClient.Start("client.mjs", gw.BaseUri + "nobody", "{}");
        Assert.Equal("Invalid API key", (string?)(await unknown.NextOfTypeAsync("connect_error"))["message"]);
        // a wrong key is still a wrong key
        await using var wrong = NodeClient.Start("client.mjs", gw.BaseUri + "sales", SocketIOEventTests.Auth("wrong").ToJsonString());
        Assert.Equal("Invalid API key", (string?)(await wrong.NextOfTypeAsync("connect_error"))["message"]);
        // the instance namespace: allowed, with its events
        await using var scoped = NodeClient.Start("client.mjs", gw.BaseUri + "sales", "{}");
        await scoped.NextOfTypeAsync("connect");

        // REST: refused, whatever the address
        await TestGateway.AssertErrorAsync(await gw.SendAsync(HttpMethod.Get, "/instance/fetchInstances", key: null), 401);
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/webhook", TestGateway.Event("messages.upsert", "sales"), key: null), 401);
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/instance/create", """{"instanceName":"x"}""", key: null), 401);
        await TestGateway.AssertErrorAsync(await gw.SendAsync(HttpMethod.Get, "/dashboard/stats", key: null), 401);

        // plain WebSocket: scoped to an instance only
        await TestGateway.AssertErrorAsync(await gw.RawUpgradeAsync("/ws/events"), 401);
        await TestGateway.AssertErrorAsync(await gw.RawUpgradeAsync("/"), 401);
        await TestGateway.AssertErrorAsync(await gw.RawUpgradeAsync("/ws/events?instance=nobody"), 401);
        using var plain = await gw.ConnectAsync("/ws/events?instance=sales");

        await gw.IngestAsync($"[{TestGateway.Event("messages.upsert", "other")},{TestGateway.Event("messages.upsert", "sales")}]");
        var ev = await scoped.NextEventAsync();
        Assert.Equal("messages.upsert", (string?)ev["event"]);
        Assert.Equal("sales", (string?)ev["args"]![0]!["instance"]);
        Assert.Equal("sales", (await TestGateway.ReceiveJsonAsync(plain))["instance"]!.GetValue<string>());
        await scoped.AssertNoEventAsync(TimeSpan.FromMilliseconds(300)); // not the "other" instance's event
    }

    [Fact]
    public async Task OffByDefault_AndAnUnlistedAddressNeedsAKey()
    {
        await using (var off = await TestGateway.StartAsync())
        {
            await off.CreateInstanceAsync("sales");
            await TestGateway.AssertErrorAsync(await off.RawUpgradeAsync("/ws/events?instance=sales"), 401);
            await using var client = NodeClient.Start("client.mjs", off.BaseUri + "sales", "{}");
            Assert.Equal("Invalid API key", (string?)(await client.NextOfTypeAsync("connect_error"))["message"]);
        }
        await using var gw = await TestGateway.StartAsync(new() { ["WEBSOCKET_ALLOWED_HOSTS"] = "10.0.0.0/8, 192.168.1.7" });
        await gw.CreateInstanceAsync("sales");
        await TestGateway.AssertErrorAsync(await gw.RawUpgradeAsync("/ws/events?instance=sales"), 401);
        await using var refused = NodeClient.Start("client.mjs", gw.BaseUri + "sales", "{}");
        Assert.Equal("Invalid API key", (string?)(await refused.NextOfTypeAsync("connect_error"))["message"]);
    }

    [Fact]
    public async Task SpoofedForwardedForFromAnUntrustedPeerIsIgnored()
    {
        // 127.0.0.1 (the test) is not a trusted proxy: its X-Forwarded-For naming a listed address counts for nothing
        await using var gw = await TestGateway.StartAsync(new() { ["WEBSOCKET_ALLOWED_HOSTS"] = "10.20.0.0/16" });
        await gw.CreateInstanceAsync("sales");
        await TestGateway.AssertErrorAsync(await gw.RawUpgradeAsync("/ws/events?instance=sales", forwardedFor: "10.20.30.40"), 401);
        await using var client = NodeClient.Start("client.mjs", gw.BaseUri + "sales", ForwardedFor("10.20.30.40").ToJsonString());
        Assert.Equal("Invalid API key", (string?)(await client.NextOfTypeAsync("connect_error"))["message"]);
    }

    [Fact]
    public async Task ForwardedForFromATrustedProxyIsHonoured_AndTheProxyItselfIsNotAllowed()
    {
        // a reverse proxy on this host (127.0.0.1) forwards for clients: only the listed client range gets in keyless
        await using var gw = await TestGateway.StartAsync(new()
        {
            ["TRUSTED_PROXIES"] = "127.0.0.1",
            ["WEBSOCKET_ALLOWED_HOSTS"] = "10.20.0.0/16",
        });
        await gw.CreateInstanceAsync("sales");

        using var plain = await ConnectAsync(gw, "/ws/events?instance=sales", "10.20.30.40");
        await using var socketIO = NodeClient.Start("client.mjs", gw.BaseUri + "sales", ForwardedFor("10.20.30.40").ToJsonString());
        await socketIO.NextOfTypeAsync("connect");

        // another client behind the same proxy, and the proxy's own address: a key is needed
        await TestGateway.AssertErrorAsync(await gw.RawUpgradeAsync("/ws/events?instance=sales", forwardedFor: "10.99.0.1"), 401);
        await TestGateway.AssertErrorAsync(await gw.RawUpgradeAsync("/ws/events?instance=sales"), 401);
        await using var other = NodeClient.Start("client.mjs", gw.BaseUri + "sales", ForwardedFor("10.99.0.1").ToJsonString());
        Assert.Equal("Invalid API key", (string?)(await other.NextOfTypeAsync("connect_error"))["message"]);

        await gw.IngestAsync(TestGateway.Event("connection.update", "sales", """{"state":"open"}"""));
        Assert.Equal("connection.update", (string?)(await socketIO.NextEventAsync())["event"]);
        Assert.Equal("connection.update", (await TestGateway.ReceiveJsonAsync(plain))["event"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("10.0.0.1, 192.168.0.0/16, ::1, localhost", 5)]
    [InlineData("", 0)]
    public void ParsesAddressesRangesAndLocalhost(string value, int networks)
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["WEBSOCKET_ALLOWED_HOSTS"] = value }).Build();
        Assert.Equal(networks, GatewayOptionsBinder.Bind(config).AllowedHosts.Count);
    }

    [Fact]
    public void AnInvalidEntryNamesTheVariable()
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["WEBSOCKET_ALLOWED_HOSTS"] = "127.0.0.1, example.com" }).Build();
        var ex = Assert.Throws<GatewayConfigurationException>(() => GatewayOptionsBinder.Bind(config));
        Assert.Contains("WEBSOCKET_ALLOWED_HOSTS", ex.Message, StringComparison.Ordinal);
        Assert.Contains("example.com", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AMappedIPv4AddressMatchesItsIPv4Range()
    {
        List<IPNetwork> networks = [IPNetwork.Parse("127.0.0.0/8")];
        Assert.True(Auth.GatewayAuthorizer.IsInList(networks, IPAddress.Parse("::ffff:127.0.0.1")));
        Assert.False(Auth.GatewayAuthorizer.IsInList(networks, IPAddress.Parse("::ffff:10.0.0.1")));
        Assert.False(Auth.GatewayAuthorizer.IsInList(networks, null));
    }
}

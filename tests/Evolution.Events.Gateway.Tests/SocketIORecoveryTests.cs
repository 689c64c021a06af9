using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Evolution.Events.SocketIO;
using Microsoft.Extensions.DependencyInjection;

namespace Evolution.Events.Gateway.Tests;

/// <summary>
/// Connection state recovery through the gateway, with the stock socket.io-client behind a TCP proxy the
/// test cuts (tests/interop/gateway/recovery-client.mjs): events ingested during the cut arrive after the
/// client reconnects by itself, also when it had received only the last-state replay (no offset); a token deleted during the cut does not recover; WEBSOCKET_RECOVERY_SECONDS=0
/// turns it off.
/// </summary>
public class SocketIORecoveryTests
{
    [Theory]
    [InlineData("websocket")]
    [InlineData("polling")]
    public async Task AnInstanceTokenClientRecoversTheEventsIngestedDuringACut(string transport)
    {
        await using var gw = await TestGateway.StartAsync(PollingFriendly(transport));
        var sales = await gw.CreateInstanceAsync("sales");
        await using var client = Start(gw, "/sales", sales, transport);
        var connect = await client.NextOfTypeAsync("connect");
        Assert.False((bool)connect["recovered"]!);
        Assert.NotNull((string?)connect["pid"]);

        await gw.IngestAsync(TestGateway.Event("messages.upsert", "sales", """{"seq":1}"""));
        Assert.Equal(1, Seq(await client.NextEventAsync()));

        await CutAsync(gw, client);
        await gw.IngestAsync($"[{TestGateway.Event("messages.upsert", "sales", """{"seq":2}""")},"
            + $"{TestGateway.Event("qrcode.updated", "sales", """{"seq":3}""")}]");
        await gw.IngestAsync(TestGateway.Event("messages.upsert", "other", """{"seq":-1}"""));
        await client.SendAsync(new JsonObject { ["cmd"] = "heal" });

        var again = await client.NextOfTypeAsync("connect", TimeSpan.FromSeconds(15));
        Assert.True((bool)again["recovered"]!, again.ToJsonString());
        Assert.Equal((string?)connect["id"], (string?)again["id"]);
        var two = await client.NextEventAsync();
        Assert.Equal(2, Seq(two));
        Assert.Equal("messages.upsert", (string?)two["event"]);
        var three = await client.NextEventAsync();
        Assert.Equal(3, Seq(three));
        Assert.Equal("qrcode.updated", (string?)three["event"]);
        await gw.IngestAsync(TestGateway.Event("messages.upsert", "sales", """{"seq":4}"""));
        Assert.Equal(4, Seq(await client.NextEventAsync()));
        await client.AssertNoEventAsync(TimeSpan.FromMilliseconds(300));

        var metrics = await gw.MetricsAsync();
        Assert.Equal(1, Sample(metrics, "evolution_socketio_recoveries_total", "outcome=\"recovered\""));
        Assert.Equal(0, Sample(metrics, "evolution_socketio_recoveries_total", "outcome=\"refused\""));
        Assert.Equal(0, Sample(metrics, "evolution_socketio_recovery_sessions", null));
        Assert.True(Sample(metrics, "evolution_socketio_recovery_packets", null) >= 4);
        Assert.True(Sample(metrics, "evolution_socketio_recovery_bytes", null) > 0);
    }

    [Fact]
    public async Task AClientThatGotOnlyTheLastStateReplayRecoversEverythingIngestedDuringACutWithNoSecondReplay()
    {
        await using var gw = await TestGateway.StartAsync();
        var sales = await gw.CreateInstanceAsync("sales");
        await gw.IngestAsync(TestGateway.Event("connection.update", "sales", """{"instance":"sales","state":"open","seq":0}"""));
        await using var client = Start(gw, "/sales", sales, "websocket");
        var connect = await client.NextOfTypeAsync("connect");
        var state = await client.NextEventAsync();
        Assert.Equal("connection.update", (string?)state["event"]);
        Assert.Single(state["args"]!.AsArray()); // the replay is sent to this socket alone: no offset

        // no live event before the cut: socket.io-client reconnects with {pid} alone
        await CutAsync(gw, client);
        await gw.IngestAsync(TestGateway.Event("messages.upsert", "sales", """{"seq":1}"""));
        await gw.IngestAsync(TestGateway.Event("connection.update", "sales", """{"instance":"sales","state":"open","seq":2}"""));
        await gw.IngestAsync(TestGateway.Event("messages.upsert", "sales", """{"seq":3}"""));
        await client.SendAsync(new JsonObject { ["cmd"] = "heal" });

        var again = await client.NextOfTypeAsync("connect", TimeSpan.FromSeconds(15));
        Assert.True((bool)again["recovered"]!, again.ToJsonString());
        Assert.Equal((string?)connect["id"], (string?)again["id"]);
        for (var seq = 1; seq <= 3; seq++)
        {
            Assert.Equal(seq, Seq(await client.NextEventAsync()));
        }

        await client.AssertNoEventAsync(TimeSpan.FromMilliseconds(300)); // no second last-state replay
        var io = gw.App.Services.GetRequiredService<SocketIOServer>();
        Assert.Equal(1, io.Recovery.Recovered);
    }

    [Fact]
    public async Task ATokenDeletedDuringTheCutDoesNotRecover()
    {
        await using var gw = await TestGateway.StartAsync();
        var sales = await gw.CreateInstanceAsync("sales");
        await using var client = Start(gw, "/sales", sales, "websocket");
        var connect = await client.NextOfTypeAsync("connect");
        await gw.IngestAsync(TestGateway.Event("messages.upsert", "sales", """{"seq":1}"""));
        Assert.Equal(1, Seq(await client.NextEventAsync()));

        await CutAsync(gw, client);
        Assert.Equal(200, (int)(await gw.SendAsync(HttpMethod.Delete, "/instance/delete/sales")).StatusCode);
        await gw.IngestAsync(TestGateway.Event("messages.upsert", "sales", """{"seq":2}"""));
        await client.SendAsync(new JsonObject { ["cmd"] = "heal" });

        var refused = await client.NextAsync(l => (string?)l["type"] is "connect" or "connect_error", TimeSpan.FromSeconds(15));
        Assert.Equal("connect_error", (string?)refused["type"]);
        Assert.Equal("Invalid API key", (string?)refused["message"]);
        await client.AssertNoEventAsync(TimeSpan.FromMilliseconds(300));

        var io = gw.App.Services.GetRequiredService<SocketIOServer>();
        Assert.Equal(1, io.Recovery.Refused);
        Assert.Equal(0, io.Recovery.Recovered);
        Assert.Equal(0, io.Recovery.Sessions);
        Assert.False(io.TryGetNamespace("/sales", out var nsp) && nsp.SocketsById.ContainsKey((string)connect["id"]!));
        var metrics = await gw.MetricsAsync();
        Assert.Equal(1, Sample(metrics, "evolution_socketio_recoveries_total", "outcome=\"refused\""));
    }

    [Fact]
    public async Task RecoverySecondsZeroTurnsItOff()
    {
        await using var gw = await TestGateway.StartAsync(new() { ["WEBSOCKET_RECOVERY_SECONDS"] = "0" });
        var sales = await gw.CreateInstanceAsync("sales");
        await using var client = Start(gw, "/sales", sales, "websocket");
        var connect = await client.NextOfTypeAsync("connect");
        Assert.Null((string?)connect["pid"]);
        await gw.IngestAsync(TestGateway.Event("messages.upsert", "sales", """{"seq":1}"""));
        var e = await client.NextEventAsync();
        Assert.Single(e["args"]!.AsArray()); // the envelope only: no offset

        await CutAsync(gw, client, expectSession: false);
        await gw.IngestAsync(TestGateway.Event("messages.upsert", "sales", """{"seq":2}"""));
        await client.SendAsync(new JsonObject { ["cmd"] = "heal" });
        var again = await client.NextOfTypeAsync("connect", TimeSpan.FromSeconds(15));
        Assert.False((bool)again["recovered"]!);
        Assert.NotEqual((string?)connect["id"], (string?)again["id"]);
        await client.AssertNoEventAsync(TimeSpan.FromMilliseconds(300)); // seq 2 is lost, as before recovery existed
    }

    /// <summary>
    /// On polling, a cut that falls between two polls is only noticed by the heartbeat: a short one
    /// (through the library's "SocketIO" configuration section) keeps the test quick.
    /// </summary>
    private static Dictionary<string, string?> PollingFriendly(string transport) => transport == "polling"
        ? new() { ["SocketIO:Engine:PingInterval"] = "300", ["SocketIO:Engine:PingTimeout"] = "700" }
        : [];

    private static NodeClient Start(TestGateway gw, string nsp, string token, string transport)
    {
        var options = new JsonObject { ["auth"] = new JsonObject { ["token"] = token }, ["transports"] = new JsonArray(transport) };
        return NodeClient.Start("recovery-client.mjs", gw.BaseUri.ToString().TrimEnd('/') + nsp, options.ToJsonString());
    }

    /// <summary>Cuts the proxy and waits until the client saw the disconnect and the server kept its session (or closed it).</summary>
    private static async Task CutAsync(TestGateway gw, NodeClient client, bool expectSession = true)
    {
        var io = gw.App.Services.GetRequiredService<SocketIOServer>();
        var sessions = io.Recovery.Sessions;
        await client.SendAsync(new JsonObject { ["cmd"] = "cut" });
        await client.NextOfTypeAsync("disconnect");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (expectSession ? io.Recovery.Sessions <= sessions : io.Engine.SessionCount > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the server did not notice the cut");
            await Task.Delay(20);
        }
    }

    private static int Seq(JsonObject e) => (int)e["args"]![0]!["data"]!["seq"]!;

    private static double Sample(string metrics, string name, string? labels)
    {
        var series = labels is null ? name : name + "{" + labels + "}";
        var match = Regex.Match(metrics, "^" + Regex.Escape(series) + @" (\S+)$", RegexOptions.Multiline);
        Assert.True(match.Success, $"no sample {series} in:\n{metrics}");
        return double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
    }
}

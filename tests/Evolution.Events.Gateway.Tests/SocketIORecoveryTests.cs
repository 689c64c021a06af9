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
        await gw.IngestAsync(TestGateway.Event("connection.update", "sales", """{"instance":"sales","state":"connecting","seq":0}"""));
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

        // the attempts made while the proxy was cut fail in the transport ("websocket error"): the answer is the first
        // connect, or connect_error from the server, after them
        var refused = await client.NextAsync(
            l => (string?)l["type"] is "connect" || ((string?)l["type"] is "connect_error" && (string?)l["message"] is not "websocket error"),
            TimeSpan.FromSeconds(15));
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
    /// WEBSOCKET_REPLAY_LAST_STATE with recovery: the replay runs in a join interceptor, which the library does
    /// not run for a recovered socket. So a client that got the replayed state and QR, then recovers after a cut,
    /// gets exactly the events it missed (a new state and QR among them), not the last state once more.
    /// </summary>
    [Fact]
    public async Task ARecoveredSocketGetsTheMissedEventsAndNoReplay()
    {
        await using var gw = await TestGateway.StartAsync();
        var sales = await gw.CreateInstanceAsync("sales");
        await gw.IngestAsync(Connection("connecting", 1));
        await gw.IngestAsync(Qr("first", 2));
        await using var client = Start(gw, "/sales", sales, "websocket");
        var connect = await client.NextOfTypeAsync("connect");
        Assert.False((bool)connect["recovered"]!);
        AssertEvent(await client.NextEventAsync(), "connection.update", 1); // the replay
        AssertEvent(await client.NextEventAsync(), "qrcode.updated", 2);
        // the replay is emitted to the socket alone and carries no offset; as with socket.io, a client recovers
        // only once it got one broadcast (its offset), so one live event comes before the cut
        await gw.IngestAsync(TestGateway.Event("messages.upsert", "sales", """{"seq":0}"""));
        AssertEvent(await client.NextEventAsync(), "messages.upsert", 0);

        await CutAsync(gw, client);
        await gw.IngestAsync(Qr("second", 3));
        await gw.IngestAsync(TestGateway.Event("messages.upsert", "sales", """{"seq":4}"""));
        await gw.IngestAsync(Connection("close", 5));
        await client.SendAsync(new JsonObject { ["cmd"] = "heal" });

        var again = await client.NextOfTypeAsync("connect", TimeSpan.FromSeconds(15));
        Assert.True((bool)again["recovered"]!, again.ToJsonString());
        Assert.Equal((string?)connect["id"], (string?)again["id"]);
        AssertEvent(await client.NextEventAsync(), "qrcode.updated", 3);
        AssertEvent(await client.NextEventAsync(), "messages.upsert", 4);
        AssertEvent(await client.NextEventAsync(), "connection.update", 5);
        // the next event is the live one: no replayed connection.update (5) or qrcode.updated (3) in between
        await gw.IngestAsync(TestGateway.Event("messages.upsert", "sales", """{"seq":6}"""));
        AssertEvent(await client.NextEventAsync(), "messages.upsert", 6);
        await client.AssertNoEventAsync(TimeSpan.FromMilliseconds(300));
        Assert.Equal(1, gw.App.Services.GetRequiredService<SocketIOServer>().Recovery.Recovered);
    }

    /// <summary>
    /// A drop longer than WEBSOCKET_RECOVERY_SECONDS: the client gets a fresh session (new id, not recovered)
    /// and, as any new subscriber, the instance's last state first: the last connection.update, then the last QR.
    /// </summary>
    [Fact]
    public async Task ADropLongerThanTheWindowGetsAFreshSessionAndTheLastStateReplay()
    {
        await using var gw = await TestGateway.StartAsync(new() { ["WEBSOCKET_RECOVERY_SECONDS"] = "1" });
        var sales = await gw.CreateInstanceAsync("sales");
        await gw.IngestAsync(Connection("connecting", 1));
        await using var client = Start(gw, "/sales", sales, "websocket");
        var connect = await client.NextOfTypeAsync("connect");
        AssertEvent(await client.NextEventAsync(), "connection.update", 1);

        await CutAsync(gw, client);
        var cut = DateTime.UtcNow;
        await gw.IngestAsync(Qr("first", 2));
        await gw.IngestAsync(TestGateway.Event("messages.upsert", "sales", """{"seq":3}"""));
        await gw.IngestAsync(Connection("connecting", 4));
        await gw.IngestAsync(Qr("second", 5));
        // the cut lasts 3 s, three times the window (this wait is the scenario, not a guess at an outcome)
        await Task.Delay(TimeSpan.FromSeconds(3) - (DateTime.UtcNow - cut) is { Ticks: > 0 } rest ? rest : TimeSpan.Zero);
        await client.SendAsync(new JsonObject { ["cmd"] = "heal" });

        var again = await client.NextOfTypeAsync("connect", TimeSpan.FromSeconds(15));
        Assert.False((bool)again["recovered"]!, again.ToJsonString());
        Assert.NotEqual((string?)connect["id"], (string?)again["id"]);
        Assert.NotEqual((string?)connect["pid"], (string?)again["pid"]);
        AssertEvent(await client.NextEventAsync(), "connection.update", 4); // the last state, then the last QR
        AssertEvent(await client.NextEventAsync(), "qrcode.updated", 5);
        await gw.IngestAsync(TestGateway.Event("messages.upsert", "sales", """{"seq":6}"""));
        AssertEvent(await client.NextEventAsync(), "messages.upsert", 6); // nothing else of the cut (seq 2, 3)
        await client.AssertNoEventAsync(TimeSpan.FromMilliseconds(300));
        var io = gw.App.Services.GetRequiredService<SocketIOServer>();
        Assert.Equal(0, io.Recovery.Recovered);
    }

    /// <summary>
    /// A token goes only with its instance (the API has no call that changes or revokes one). An instance deleted
    /// during the cut and created again under the same name gets a new token: the namespace exists again, yet the
    /// old token does not recover; a client with the new token connects and gets no event of the old session.
    /// </summary>
    [Fact]
    public async Task TheOldTokenOfAnInstanceCreatedAgainDoesNotRecover()
    {
        await using var gw = await TestGateway.StartAsync();
        var old = await gw.CreateInstanceAsync("sales");
        await using var client = Start(gw, "/sales", old, "websocket");
        await client.NextOfTypeAsync("connect");
        await gw.IngestAsync(TestGateway.Event("messages.upsert", "sales", """{"seq":1}"""));
        Assert.Equal(1, Seq(await client.NextEventAsync()));

        await CutAsync(gw, client);
        Assert.Equal(200, (int)(await gw.SendAsync(HttpMethod.Delete, "/instance/delete/sales")).StatusCode);
        var renewed = await gw.CreateInstanceAsync("sales");
        Assert.NotEqual(old, renewed);
        await gw.IngestAsync(TestGateway.Event("messages.upsert", "sales", """{"seq":2}"""));
        await client.SendAsync(new JsonObject { ["cmd"] = "heal" });

        // attempts refused by the proxy during the cut end as "websocket error": the answer of the gateway is the other one
        var refused = await client.NextAsync(l => (string?)l["type"] is "connect"
            || ((string?)l["type"] == "connect_error" && (string?)l["message"] != "websocket error"), TimeSpan.FromSeconds(15));
        Assert.Equal("connect_error", (string?)refused["type"]);
        Assert.Equal("Invalid API key", (string?)refused["message"]);
        await client.AssertNoEventAsync(TimeSpan.FromMilliseconds(300));
        var io = gw.App.Services.GetRequiredService<SocketIOServer>();
        Assert.Equal(1, io.Recovery.Refused);
        Assert.Equal(0, io.Recovery.Recovered);

        await using var fresh = Start(gw, "/sales", renewed, "websocket");
        Assert.False((bool)(await fresh.NextOfTypeAsync("connect"))["recovered"]!);
        await gw.IngestAsync(TestGateway.Event("messages.upsert", "sales", """{"seq":3}"""));
        Assert.Equal(3, Seq(await fresh.NextEventAsync()));
    }

    private static string Connection(string state, int seq) =>
        TestGateway.Event("connection.update", "sales", $$"""{"instance":"sales","state":"{{state}}","seq":{{seq}}}""");

    private static string Qr(string code, int seq) =>
        TestGateway.Event("qrcode.updated", "sales", $$"""{"qrcode":{"code":"{{code}}","base64":"data:image/png;base64,AAAA"},"seq":{{seq}}}""");

    private static void AssertEvent(JsonObject e, string name, int seq)
    {
        Assert.True((string?)e["event"] == name && Seq(e) == seq, $"expected {name} seq {seq}, got {e.ToJsonString()}");
    }

    /// <summary>
    /// On polling, a cut that falls between two polls is only noticed by the heartbeat: a short one
    /// (WEBSOCKET_PING_INTERVAL_MS / WEBSOCKET_PING_TIMEOUT_MS) keeps the test quick. The timeout is what a
    /// client's poll and pong get before the session is closed: 2 s, so that a Node client slowed down by a
    /// loaded machine is not dropped before the cut (an extra recovery), while the cut is still noticed in
    /// about 2.3 s (<see cref="CutAsync"/> waits for that up to 60 s).
    /// </summary>
    private static Dictionary<string, string?> PollingFriendly(string transport) => transport == "polling"
        ? new() { ["WEBSOCKET_PING_INTERVAL_MS"] = "300", ["WEBSOCKET_PING_TIMEOUT_MS"] = "2000" }
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

using System.Net.WebSockets;
using System.Text.Json.Nodes;
using Evolution.Events.Gateway.Fanout;
using Microsoft.Extensions.DependencyInjection;

namespace Evolution.Events.Gateway.Tests;

/// <summary>
/// WEBSOCKET_REPLAY_LAST_STATE: a subscriber scoped to an instance gets its last <c>connection.update</c>, then
/// its last <c>qrcode.updated</c>, right after joining and before any live event (Node socket.io-client and
/// plain WebSocket clients against the real gateway).
/// </summary>
public class ReplayTests
{
    private static string Connection(string state, int seq = 0) =>
        TestGateway.Event("connection.update", "sales", $$"""{"instance":"sales","state":"{{state}}","seq":{{seq}}}""");

    private static string Qr(string code, int seq = 0) =>
        TestGateway.Event("qrcode.updated", "sales", $$"""{"qrcode":{"code":"{{code}}","base64":"data:image/png;base64,AAAA"},"seq":{{seq}}}""");

    private static readonly string Marker = TestGateway.Event("labels.edit", "sales", """{"marker":true}""");

    [Fact]
    public async Task LateSocketIOClientGetsTheLastStateThenLiveEvents()
    {
        await using var gw = await TestGateway.StartAsync();
        var token = await gw.CreateInstanceAsync("sales");
        await gw.IngestAsync(Connection("connecting"));
        await gw.IngestAsync(Qr("first"));
        await gw.IngestAsync(Qr("second"));

        await using var client = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(token));
        var state = await client.NextEventAsync();
        Assert.Equal("connection.update", (string?)state["event"]);
        Assert.Equal("connecting", (string?)state["args"]![0]!["data"]!["state"]);
        var qr = await client.NextEventAsync();
        Assert.Equal("qrcode.updated", (string?)qr["event"]);
        // the envelope as ingested: the last QR, all six keys
        Assert.Equal("second", (string?)qr["args"]![0]!["data"]!["qrcode"]!["code"]);
        Assert.Equal("sales", (string?)qr["args"]![0]!["instance"]);
        await gw.IngestAsync(Marker);
        Assert.Equal("labels.edit", (string?)(await client.NextEventAsync())["event"]);
    }

    [Fact]
    public async Task AfterOpenNothingIsReplayed_NeitherTheQrNorTheOpenState()
    {
        // seed 001's page reloads itself on open: replaying open to each load would reload it forever
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateInstanceAsync("sales");
        await gw.IngestAsync(Connection("connecting"));
        await gw.IngestAsync(Qr("scan-me"));
        await gw.IngestAsync(Connection("open"));

        await using var client = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(TestGateway.Key), "websocket");
        using var plain = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}&instance=sales");
        await gw.IngestAsync(Marker);
        // the first event is the marker: neither the QR nor the open state was replayed
        Assert.Equal("labels.edit", (string?)(await client.NextEventAsync())["event"]);
        Assert.Equal("labels.edit", (string?)(await TestGateway.ReceiveJsonAsync(plain))["event"]);

        // a new QR after open (the phone logged out) is remembered again, after the last state
        await gw.IngestAsync(Connection("close"));
        await gw.IngestAsync(Qr("again"));
        await using var late = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(TestGateway.Key));
        Assert.Equal("close", (string?)(await late.NextEventAsync())["args"]![0]!["data"]!["state"]);
        Assert.Equal("again", (string?)(await late.NextEventAsync())["args"]![0]!["data"]!["qrcode"]!["code"]);
    }

    [Fact]
    public async Task TheInstanceSettingsFilterTheReplay()
    {
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateInstanceAsync("sales");
        await gw.SetSettingsAsync("sales", true, "CONNECTION_UPDATE", "LABELS_EDIT");
        await gw.IngestAsync(Connection("connecting"));
        await gw.IngestAsync(Qr("hidden"));

        await using var client = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(TestGateway.Key));
        using var plain = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}&instance=sales");
        Assert.Equal("connection.update", (string?)(await client.NextEventAsync())["event"]);
        Assert.Equal("connection.update", (string?)(await TestGateway.ReceiveJsonAsync(plain))["event"]);
        await gw.IngestAsync(Marker);
        Assert.Equal("labels.edit", (string?)(await client.NextEventAsync())["event"]);
        Assert.Equal("labels.edit", (string?)(await TestGateway.ReceiveJsonAsync(plain))["event"]);

        // enabled: false replays nothing; the plain client's own ?event= filter applies too
        await gw.SetSettingsAsync("sales", true, "QRCODE_UPDATED", "LABELS_EDIT");
        using var onlyLabels = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}&instance=sales&event=LABELS_EDIT");
        await gw.SetSettingsAsync("sales", false);
        await using var disabled = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(TestGateway.Key));
        await gw.SetSettingsAsync("sales", true);
        await gw.IngestAsync(Marker);
        Assert.Equal("labels.edit", (string?)(await disabled.NextEventAsync())["event"]);
        Assert.Equal("labels.edit", (string?)(await TestGateway.ReceiveJsonAsync(onlyLabels))["event"]);
    }

    [Fact]
    public async Task SwitchedOffNothingIsReplayed()
    {
        await using var gw = await TestGateway.StartAsync(new() { ["WEBSOCKET_REPLAY_LAST_STATE"] = "false" });
        await gw.CreateInstanceAsync("sales");
        await gw.IngestAsync(Connection("connecting"));
        await gw.IngestAsync(Qr("not-replayed"));

        await using var client = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(TestGateway.Key));
        using var plain = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}&instance=sales");
        await gw.IngestAsync(Marker);
        Assert.Equal("labels.edit", (string?)(await client.NextEventAsync())["event"]);
        Assert.Equal("labels.edit", (string?)(await TestGateway.ReceiveJsonAsync(plain))["event"]);
        Assert.Equal(0, gw.App.Services.GetRequiredService<LastStateReplay>().Count);
    }

    private static int ReplayedCount(LastStateReplay replay, string instance)
    {
        lock (replay.LockFor(instance))
            return replay.Replay(instance).Count;
    }

    [Fact]
    public async Task ADeletedInstanceIsForgotten()
    {
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateInstanceAsync("sales");
        await gw.IngestAsync(Connection("connecting"));
        await gw.IngestAsync(Qr("gone"));
        var replay = gw.App.Services.GetRequiredService<LastStateReplay>();
        // a 202 is accepted, not yet fanned out: the state is recorded by the fan-out loop. Both events must be
        // recorded before the delete (an event still on the bus would be recorded after it, for the new instance)
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (ReplayedCount(replay, "sales") != 2 && DateTime.UtcNow < deadline)
            await Task.Delay(20);
        Assert.Equal(2, ReplayedCount(replay, "sales"));
        Assert.Equal(1, replay.Count);

        Assert.Equal(200, (int)(await gw.SendAsync(HttpMethod.Delete, "/instance/delete/sales")).StatusCode);
        Assert.Equal(0, replay.Count);
        await gw.CreateInstanceAsync("sales");
        await using var client = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(TestGateway.Key));
        await gw.IngestAsync(Marker);
        Assert.Equal("labels.edit", (string?)(await client.NextEventAsync())["event"]);
    }

    [Fact]
    public async Task PlainScopedClientsGetTheReplayGlobalSubscribersDoNot()
    {
        await using var gw = await TestGateway.StartAsync(new() { ["WEBSOCKET_GLOBAL_EVENTS"] = "true" });
        var token = await gw.CreateInstanceAsync("sales");
        // a 202 means accepted, not yet delivered: global probes connected beforehand see the QR go by, so the
        // global clients below connect after the fan-out passed it (anything they got then would be a replay)
        using var plainProbe = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}");
        await using var mainProbe = await SocketIOEventTests.ConnectAsync(gw, "/", SocketIOEventTests.Auth(TestGateway.Key));
        await gw.IngestAsync(Connection("connecting"));
        await gw.IngestAsync(Qr("plain"));
        Assert.Equal("connection.update", (string?)(await TestGateway.ReceiveJsonAsync(plainProbe))["event"]);
        Assert.Equal("qrcode.updated", (string?)(await TestGateway.ReceiveJsonAsync(plainProbe))["event"]);
        Assert.Equal("connection.update", (string?)(await mainProbe.NextEventAsync())["event"]);
        Assert.Equal("qrcode.updated", (string?)(await mainProbe.NextEventAsync())["event"]);

        using var byToken = await gw.ConnectAsync($"/ws/events?token={token}");
        using var simple = await gw.ConnectAsync($"/?apikey={TestGateway.Key}&instance=sales&format=simple");
        using var global = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}");
        await using var main = await SocketIOEventTests.ConnectAsync(gw, "/", SocketIOEventTests.Auth(TestGateway.Key));

        Assert.Equal("connection.update", (string?)(await TestGateway.ReceiveJsonAsync(byToken))["event"]);
        var qr = await TestGateway.ReceiveJsonAsync(byToken);
        Assert.Equal("qrcode.updated", (string?)qr["event"]);
        Assert.Equal("plain", (string?)qr["data"]!["qrcode"]!["code"]);
        // format=simple: the replay goes through the same mapping as live events
        foreach (var _ in new[] { "state", "qr" })
        {
            var frame = await TestGateway.ReceiveJsonAsync(simple);
            Assert.Equal("connection", (string?)frame["event"]);
            Assert.Equal("sales", (string?)frame["instance"]);
        }

        await gw.IngestAsync(Marker);
        Assert.Equal("labels.edit", (string?)(await TestGateway.ReceiveJsonAsync(global))["event"]);
        Assert.Equal("labels.edit", (string?)(await main.NextEventAsync())["event"]);
        Assert.Equal("labels.edit", (string?)(await TestGateway.ReceiveJsonAsync(byToken))["event"]);
    }

    /// <summary>
    /// Live connection.update / qrcode.updated events are posted in a loop (seq 0, 1, 2, …; even = connection,
    /// odd = QR) while Socket.IO (both transports) and plain WebSocket clients join. Each client must see the
    /// replay first — connection.update(c), qrcode.updated(q) with {c, q} = {m − 1, m} — then exactly
    /// m + 1, m + 2, … up to the last: no live event before the replay, none duplicated, none missing.
    /// </summary>
    [Fact]
    public async Task ClientsJoiningDuringLiveEventsSeeTheReplayFirstAndNoDuplicate()
    {
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateInstanceAsync("sales");
        const int SocketIOClients = 16;
        const int PlainClients = 8;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var posted = -1;
        var joinersDone = new TaskCompletionSource();
        // Paced (about one event per millisecond) and bounded by time, not by a count: how many events the joiners
        // take depends on how fast Node starts on a loaded machine, and the test only needs events in flight while
        // they join.
        var producer = Task.Run(async () =>
        {
            var extra = 40;
            for (var seq = 0; !stop.IsCancellationRequested; seq++)
            {
                await gw.IngestAsync(seq % 2 == 0 ? Connection("connecting", seq) : Qr("c" + seq, seq));
                Volatile.Write(ref posted, seq);
                if (joinersDone.Task.IsCompleted && --extra == 0)
                    return seq;
                await Task.Delay(1);
            }
            throw new TimeoutException($"the joiners did not finish within 60 s; posted up to {posted}");
        });
        await WaitUntilAsync(() => Volatile.Read(ref posted) >= 1);

        await using var node = NodeClient.Start("joiners.mjs", gw.BaseUri.ToString().TrimEnd('/') + "/sales",
            TestGateway.Key, SocketIOClients.ToString(), "30");
        var plain = new List<ClientWebSocket>();
        var plainEvents = new List<List<(string Event, int Seq)>>();
        var plainReaders = new List<Task>();
        for (var i = 0; i < PlainClients; i++)
        {
            var ws = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}&instance=sales");
            plain.Add(ws);
            var seen = new List<(string, int)>();
            plainEvents.Add(seen);
            plainReaders.Add(ReadPlainAsync(ws, seen, stop.Token));
            await Task.Delay(40);
        }

        var nodeEvents = Enumerable.Range(0, SocketIOClients).Select(_ => new List<(string Event, int Seq)>()).ToArray();
        var connected = 0;
        while (connected < SocketIOClients)
            connected += Collect(await node.NextAsync(timeout: TimeSpan.FromSeconds(30)), nodeEvents) == "connect" ? 1 : 0;
        joinersDone.SetResult();
        var last = await producer;

        while (nodeEvents.Any(e => e.Count == 0 || e[^1].Seq != last))
            Collect(await node.NextAsync(timeout: TimeSpan.FromSeconds(30)), nodeEvents);
        await WaitUntilAsync(() => plainEvents.All(e => { lock (e) return e.Count > 0 && e[^1].Seq == last; }));

        foreach (var (events, i) in nodeEvents.Select((e, i) => (e, i)))
            AssertConsistent($"socket.io client {i}", events, last);
        foreach (var (events, i) in plainEvents.Select((e, i) => (e, i)))
        {
            lock (events)
                AssertConsistent($"plain client {i}", events, last);
        }
        foreach (var ws in plain)
            ws.Abort();
        await stop.CancelAsync();
        await Task.WhenAll(plainReaders);
    }

    private static void AssertConsistent(string who, List<(string Event, int Seq)> events, int last)
    {
        var text = string.Join(' ', events.Take(12).Select(e => $"{e.Event}:{e.Seq}")) + (events.Count > 12 ? " …" : "");
        Assert.True(events.Count >= 2, $"{who}: {text}");
        var (c, q) = (events[0], events[1]);
        Assert.True(c.Event == "connection.update" && c.Seq % 2 == 0, $"{who} did not start with the replayed state: {text}");
        Assert.True(q.Event == "qrcode.updated" && q.Seq % 2 == 1, $"{who}'s second event is not the replayed QR: {text}");
        Assert.True(Math.Abs(c.Seq - q.Seq) == 1, $"{who}: the replay is not the last state: {text}");
        var m = Math.Max(c.Seq, q.Seq);
        Assert.Equal(Enumerable.Range(m + 1, last - m), events.Skip(2).Select(e => e.Seq));
        foreach (var (e, seq) in events.Skip(2))
            Assert.Equal(seq % 2 == 0 ? "connection.update" : "qrcode.updated", e);
    }

    private static string? Collect(JsonObject line, List<(string Event, int Seq)>[] perClient)
    {
        var type = (string?)line["type"];
        if (type == "connect_error")
            Assert.Fail(line.ToJsonString());
        if (type == "event")
            perClient[(int)line["client"]!].Add(((string)line["event"]!, (int)line["seq"]!));
        return type;
    }

    private static async Task ReadPlainAsync(ClientWebSocket ws, List<(string, int)> seen, CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var result = await ws.ReceiveAsync(buffer, ct);
                if (result.MessageType == WebSocketMessageType.Close)
                    return;
                Assert.True(result.EndOfMessage);
                var json = JsonNode.Parse(buffer.AsSpan(0, result.Count))!;
                lock (seen)
                    seen.Add(((string)json["event"]!, (int)json["data"]!["seq"]!));
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or WebSocketException)
        {
        }
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        for (var i = 0; i < 600 && !condition(); i++)
            await Task.Delay(50);
        Assert.True(condition(), "condition not met within 30 s");
    }
}

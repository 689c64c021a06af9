using System.Text.Json;

namespace Evolution.Events.Gateway.Tests;

/// <summary>Logs: client text cannot forge lines, and a stalled stdout never blocks requests or shutdown.</summary>
public class LogSafetyTests
{
    [Fact]
    public async Task ANameWithANewlineIsRefusedOnCreateAndOnWebhook()
    {
        await using var gw = await TestGateway.StartAsync();
        foreach (var name in new[] { "sales\n", "sales\r\n", "sales\nFORGED" })
        {
            var json = JsonSerializer.Serialize(name);
            await TestGateway.AssertErrorAsync(await gw.PostAsync("/instance/create", $$"""{"instanceName":{{json}}}"""), 400, "instanceName: must be 1-64");
            await TestGateway.AssertErrorAsync(await gw.PostAsync("/webhook", $$"""{"event":"call","instance":{{json}}}"""), 400, "items[0].instance: must be 1-64");
        }
        await TestGateway.AssertErrorAsync(await gw.RawUpgradeAsync("/ws/events?apikey=" + TestGateway.Key + "&instance=sales%0A"), 400, "instance: must be 1-64");
        using var list = await gw.SendAsync(HttpMethod.Get, "/instance/fetchInstances");
        Assert.Equal("[]", await list.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task ClientTextInTheLogIsEscapedAndBounded()
    {
        await using var gateway = GatewayProcess.Start(new() { ["LOG_LEVEL"] = "Information" }, readStdout: true);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };
        await gateway.WaitReadyAsync(http);

        // a refused plain WebSocket logs its reason, which quotes the client's ?format=
        var forged = "x\n[12:00:00 INF] FORGED-LINE admin logged in";
        var request = new HttpRequestMessage(HttpMethod.Get, new Uri(gateway.BaseUri,
            $"/ws/events?apikey={TestGateway.Key}&format={Uri.EscapeDataString(forged)}"));
        request.Headers.Connection.Add("Upgrade");
        request.Headers.Upgrade.Add(new System.Net.Http.Headers.ProductHeaderValue("websocket"));
        request.Headers.Add("Sec-WebSocket-Version", "13");
        request.Headers.Add("Sec-WebSocket-Key", Convert.ToBase64String(Guid.NewGuid().ToByteArray()));
        using (var response = await http.SendAsync(request))
            Assert.Equal(400, (int)response.StatusCode);

        var line = await LineAsync(gateway, "Plain WebSocket refused");
        Assert.Contains(@"(got 'x\n[12:00:00 INF] FORGED-LINE adm')", line, StringComparison.Ordinal);

        // a Socket.IO CONNECT to an invalid namespace logs the namespace as sent: escaped and cut
        var open = await http.GetStringAsync(new Uri(gateway.BaseUri, "/socket.io/?EIO=4&transport=polling"));
        var sid = (string)System.Text.Json.Nodes.JsonNode.Parse(open[1..])!["sid"]!;
        var name = "/a\n[12:00:00 INF] FORGED-LINE root logged in\r\u2028" + new string('y', 200);
        using (var post = await http.PostAsync(new Uri(gateway.BaseUri, $"/socket.io/?EIO=4&transport=polling&sid={sid}"),
            new StringContent("40" + name + ",")))
            Assert.Equal(200, (int)post.StatusCode);
        var refused = await LineAsync(gateway, "refused: Invalid namespace");
        Assert.Contains(@"/a\n[12:00:00 INF] FORGED-LINE root logged in\r\u2028yyy", refused, StringComparison.Ordinal);
        Assert.Contains("…(+", refused, StringComparison.Ordinal);
        Assert.True(refused.Length < 1000, $"a log line of {refused.Length} characters");

        Assert.DoesNotContain(gateway.StdoutLines(), l => l.Contains("FORGED-LINE", StringComparison.Ordinal)
            && !l.Contains("Plain WebSocket refused", StringComparison.Ordinal) && !l.Contains("Invalid namespace", StringComparison.Ordinal));
    }

    private static async Task<string> LineAsync(GatewayProcess gateway, string fragment)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (DateTime.UtcNow < deadline)
        {
            if (gateway.StdoutLines().FirstOrDefault(l => l.Contains(fragment, StringComparison.Ordinal)) is { } line)
                return line;
            await Task.Delay(50);
        }
        Assert.Fail($"no log line with '{fragment}': {string.Join("\n", gateway.StdoutLines())}");
        return "";
    }

    [Fact]
    public async Task AStalledStdoutNeverBlocksShutdown()
    {
        // stdout goes to a pipe nobody reads (a blocked log driver): it is full after 64 KiB
        await using var gateway = GatewayProcess.Start(new() { ["LOG_LEVEL"] = "Verbose", ["LOG_QUEUE_SIZE"] = "100" }, readStdout: false);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };
        await gateway.WaitReadyAsync(http);

        // traffic that logs (each Engine.IO handshake logs a line at Debug): far more than 64 KiB of log
        var started = DateTime.UtcNow;
        for (var i = 0; i < 1000 && DateTime.UtcNow - started < TimeSpan.FromSeconds(60); i++)
        {
            using var response = await http.GetAsync(new Uri(gateway.BaseUri, $"/socket.io/?EIO=4&transport=polling&i={i}"));
            Assert.Equal(200, (int)response.StatusCode);
        }

        // requests are still served while the log is stalled
        using (var live = await http.GetAsync(new Uri(gateway.BaseUri, "/health/live")))
            Assert.Equal(200, (int)live.StatusCode);

        // the dropped lines are counted
        using (var scrape = new HttpRequestMessage(HttpMethod.Get, new Uri(gateway.BaseUri, "/metrics")))
        {
            scrape.Headers.Authorization = new("Bearer", TestGateway.Key);
            using var metrics = await http.SendAsync(scrape);
            var text = await metrics.Content.ReadAsStringAsync();
            var sample = text.Split('\n').FirstOrDefault(l => l.StartsWith("evolution_log_events_dropped_total ", StringComparison.Ordinal));
            Assert.NotNull(sample);
            Assert.True(double.Parse(sample.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture) > 0, sample);
        }

        await gateway.TerminateAsync();
        var code = await gateway.WaitForExitAsync(TimeSpan.FromSeconds(15));
        Assert.True(code is not null, "the gateway did not exit within 15 s of SIGTERM with its stdout stalled");
        Assert.Equal(0, code);
    }
}

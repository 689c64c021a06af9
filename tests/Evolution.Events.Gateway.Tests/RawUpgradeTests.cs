using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Evolution.Events.EngineIO.Hosting;
using Evolution.Events.SocketIO;
using Evolution.Events.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Evolution.Events.Gateway.Tests;

/// <summary>
/// WEBSOCKET_RAW_UPGRADE: upgrades served on the raw Kestrel connection (default) and, with false, by Kestrel's HTTP/1.1
/// upgrade. Both modes must behave the same to clients: the same sockets, the same refusals byte for byte.
/// </summary>
public class RawUpgradeTests
{
    private const string Upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

    private static Dictionary<string, string?> Mode(bool raw, Dictionary<string, string?>? more = null)
    {
        var settings = new Dictionary<string, string?> { ["WEBSOCKET_RAW_UPGRADE"] = raw ? "true" : "false" };
        foreach (var (k, v) in more ?? [])
            settings[k] = v;
        return settings;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SocketIOAndPlainWebSocketsWorkInBothModesAndTheRawPathTakesTheUpgrades(bool raw)
    {
        await using var gw = await TestGateway.StartAsync(Mode(raw));
        var dispatcher = gw.App.Services.GetService<RawUpgradeDispatcher>();
        Assert.Equal(raw, dispatcher is not null);
        var sales = await gw.CreateInstanceAsync("sales");
        using var plain = await gw.ConnectAsync($"/ws/events?token={sales}");
        using var root = await gw.ConnectAsync($"/?apikey={TestGateway.Key}&instance=sales");
        await using var websocket = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(sales), "websocket");
        await using var upgraded = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(TestGateway.Key));
        var io = gw.App.Services.GetRequiredService<SocketIOServer>();
        await WaitUntilAsync(() => io.Engine.WebSocketSessionCount == 2); // the polling one upgraded

        await gw.IngestAsync(TestGateway.Event("call", "sales"));
        Assert.Equal("call", (await TestGateway.ReceiveJsonAsync(plain))["event"]!.GetValue<string>());
        Assert.Equal("call", (await TestGateway.ReceiveJsonAsync(root))["event"]!.GetValue<string>());
        Assert.Equal("call", (string?)(await websocket.NextEventAsync())["event"]);
        Assert.Equal("call", (string?)(await upgraded.NextEventAsync())["event"]);
        if (dispatcher is not null)
            Assert.Equal(4, dispatcher.Upgrades);

        // REST, polling and keep-alive on the same listener are Kestrel's either way
        var replies = await ExchangeAsync(gw.BaseUri,
            "GET /health/live HTTP/1.1\r\nHost: x\r\n\r\nGET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        Assert.Equal(["HTTP/1.1 200 OK", "HTTP/1.1 200 OK"], StatusLines(replies));
        if (dispatcher is not null)
            Assert.Equal(4, dispatcher.Requests);

        // /metrics says how many went the raw way (the series exists only in that mode)
        var metrics = await gw.MetricsAsync();
        Assert.Equal(raw, metrics.Contains("evolution_websocket_raw_upgrades_total 4", StringComparison.Ordinal));
        Assert.Equal(raw, metrics.Contains("evolution_websocket_raw_requests_total 4", StringComparison.Ordinal));
        Assert.Equal(raw, metrics.Contains("evolution_websocket_raw_", StringComparison.Ordinal));
    }

    /// <summary>Every refusal of an upgrade, run in both modes: the same status, headers that matter, JSON body, metrics and log lines.</summary>
    [Fact]
    public async Task RefusalsAreTheSameOnTheRawPathAsOnTheHttpPath()
    {
        var raw = await RefusalsAsync(raw: true);
        var http = await RefusalsAsync(raw: false);
        Assert.Equal(http, raw);
        Assert.Equal(
            ["401", "403", "101", "503", "101", "101", "429", "503", "503", "429", "metrics", "404", "404"],
            raw.Where(r => !r.StartsWith("log ", StringComparison.Ordinal)).Select(r => r.Split(' ')[0]));
        // the refusals are logged, with the client's (forwarded) address, on both paths
        Assert.Contains(raw, r => r.StartsWith("log Information Plain WebSocket refused 401 for \"10.0.0.1\"", StringComparison.Ordinal));
        Assert.Contains(raw, r => r.StartsWith("log Information Engine.IO handshake refused with 429", StringComparison.Ordinal));
    }

    private static async Task<List<string>> RefusalsAsync(bool raw)
    {
        var seen = new List<string>();
        var open = new List<TcpClient>();
        try
        {
            var settings = Mode(raw, new()
            {
                ["WEBSOCKET_MAX_CONNECTIONS"] = "1",
                ["WEBSOCKET_CONNECT_RATE"] = "2",
                ["TRUSTED_PROXIES"] = "127.0.0.1/32",
                ["LOG_LEVEL"] = "Information",
            });
            var log = new CapturedLog();
            await using (var gw = await TestGateway.StartAsync(settings, logs: log))
            {
                var sales = await gw.CreateInstanceAsync("sales");
                // each check from its own address (X-Forwarded-For from a trusted proxy): the rate is counted per address
                seen.Add(await RefuseAsync(gw, $"/ws/events?apikey=wrong", "10.0.0.1"));
                seen.Add(await RefuseAsync(gw, $"/ws/events?token={sales}&instance=support", "10.0.0.2"));
                seen.Add(await UpgradeAsync(gw, $"/ws/events?token={sales}", "10.0.0.3", open)); // takes the only slot
                seen.Add(await RefuseAsync(gw, $"/?apikey={TestGateway.Key}", "10.0.0.4"));
                // Socket.IO: the handshake counts against the rate (429); the slot is taken at the namespace join
                seen.Add(await UpgradeAsync(gw, "/socket.io/?EIO=4&transport=websocket", "10.0.0.5", open));
                seen.Add(await UpgradeAsync(gw, "/socket.io/?EIO=4&transport=websocket", "10.0.0.5", open));
                seen.Add(await RefuseAsync(gw, "/socket.io/?EIO=4&transport=websocket", "10.0.0.5"));
                seen.Add(await RefuseAsync(gw, $"/ws/events?apikey={TestGateway.Key}", "10.0.0.6"));
                seen.Add(await RefuseAsync(gw, $"/ws/events?apikey={TestGateway.Key}", "10.0.0.6"));
                seen.Add(await RefuseAsync(gw, $"/ws/events?apikey={TestGateway.Key}", "10.0.0.6"));
                var metrics = (await gw.MetricsAsync()).Split('\n')
                    .Where(l => l.StartsWith("evolution_refusals_total{", StringComparison.Ordinal));
                seen.Add("metrics " + string.Join(" ", metrics.Order(StringComparer.Ordinal)));
                var dispatcher = gw.App.Services.GetService<RawUpgradeDispatcher>();
                Assert.Equal(raw ? 10 : null, dispatcher?.Requests);
                Assert.Equal(raw ? 3 : null, dispatcher?.Upgrades);
            }

            // the same log lines (their order may differ: a connection logs from its own task; durations vary)
            foreach (var line in log.Lines.Select(l => Regex.Replace(l, "[0-9]+ ms", "N ms")).Order(StringComparer.Ordinal))
                seen.Add("log " + line);

            await using (var disabled = await TestGateway.StartAsync(Mode(raw, new() { ["WEBSOCKET_ENABLED"] = "false" })))
            {
                seen.Add(await RefuseAsync(disabled, $"/ws/events?apikey={TestGateway.Key}", null));
                seen.Add(await RefuseAsync(disabled, "/socket.io/?EIO=4&transport=websocket", null));
                Assert.Equal(raw ? 2 : null, disabled.App.Services.GetService<RawUpgradeDispatcher>()?.Requests);
            }
        }
        finally
        {
            foreach (var client in open)
                client.Dispose();
        }

        return seen;
    }

    /// <summary>"status content-type body" of an upgrade request's answer.</summary>
    private static async Task<string> RefuseAsync(TestGateway gw, string target, string? forwardedFor)
    {
        using var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(gw.BaseUri.Host, gw.BaseUri.Port);
        var reply = await SendAsync(client, Head(target, forwardedFor), untilHead: true);
        var split = reply.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        var head = reply[..split].Split("\r\n");
        string? Header(string name) =>
            head.FirstOrDefault(h => h.StartsWith(name + ":", StringComparison.OrdinalIgnoreCase))?[(name.Length + 1)..].Trim();
        // the body as sent: by Content-Length, or de-chunked (the HTTP path keeps the connection, the raw path closes it)
        var rest = new StringBuilder(reply[(split + 4)..]);
        var stream = client.GetStream();
        var buffer = new byte[16 * 1024];
        bool Complete() => Header("Content-Length") is { } length
            ? rest.Length >= int.Parse(length, System.Globalization.CultureInfo.InvariantCulture)
            : rest.ToString().EndsWith("0\r\n\r\n", StringComparison.Ordinal);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (!Complete())
        {
            var n = await stream.ReadAsync(buffer, timeout.Token);
            Assert.True(n > 0, reply + rest);
            rest.Append(Encoding.Latin1.GetString(buffer, 0, n));
        }

        var body = Header("Content-Length") is null ? Dechunk(rest.ToString()) : rest.ToString();
        return $"{head[0].Split(' ')[1]} {Header("Content-Type")} {body}";
    }

    private static string Dechunk(string chunked)
    {
        var body = new StringBuilder();
        var at = 0;
        while (true)
        {
            var line = chunked.IndexOf("\r\n", at, StringComparison.Ordinal);
            var size = Convert.ToInt32(chunked[at..line], 16);
            if (size == 0)
                return body.ToString();
            body.Append(chunked, line + 2, size);
            at = line + 2 + size + 2;
        }
    }

    /// <summary>Upgrades and keeps the connection open; "101".</summary>
    private static async Task<string> UpgradeAsync(TestGateway gw, string target, string forwardedFor, List<TcpClient> open)
    {
        var client = new TcpClient { NoDelay = true };
        open.Add(client);
        await client.ConnectAsync(gw.BaseUri.Host, gw.BaseUri.Port);
        var reply = await SendAsync(client, Head(target, forwardedFor), untilHead: true);
        Assert.StartsWith("HTTP/1.1 101 ", reply);
        return "101";
    }

    private static string Head(string target, string? forwardedFor) =>
        $"GET {target} HTTP/1.1\r\nHost: localhost\r\n{Upgrade}"
        + (forwardedFor is null ? "" : $"X-Forwarded-For: {forwardedFor}\r\n") + "\r\n";

    [Fact]
    public async Task AnUpgradeHeadSplitAcrossManyWritesIsStillTakenAndOtherBytesAreKestrels()
    {
        await using var gw = await TestGateway.StartAsync(Mode(true));
        var dispatcher = gw.App.Services.GetRequiredService<RawUpgradeDispatcher>();
        using (var client = new TcpClient { NoDelay = true })
        {
            await client.ConnectAsync(gw.BaseUri.Host, gw.BaseUri.Port);
            var reply = await SendAsync(client, Head($"/ws/events?apikey={TestGateway.Key}", null), untilHead: true, chunk: 7);
            Assert.StartsWith("HTTP/1.1 101 ", reply);
        }
        Assert.Equal(1, dispatcher.Upgrades);

        // a split REST request, garbage, an oversized upgrade head: answered by Kestrel as always
        Assert.Equal(["HTTP/1.1 200 OK"], StatusLines(await ExchangeAsync(gw.BaseUri,
            "GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", chunk: 5)));
        Assert.StartsWith("HTTP/1.1 400 ", await ExchangeAsync(gw.BaseUri, "GARBAGE\r\n\r\n"));
        var big = Head($"/ws/events?apikey={TestGateway.Key}", null).Replace("\r\n\r\n", $"\r\nX-Big: {new string('a', 40_000)}\r\n\r\n", StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 431 ", await ExchangeAsync(gw.BaseUri, big));
        Assert.Equal(1, dispatcher.Requests);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (!condition())
            await Task.Delay(50, timeout.Token);
    }

    private static List<string> StatusLines(string reply) =>
        Regex.Matches(reply, "HTTP/1\\.[01] [0-9]{3} [^\r]*").Select(m => m.Value).ToList();

    private static async Task<string> ExchangeAsync(Uri server, string request, int chunk = 0)
    {
        using var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(server.Host, server.Port);
        return await SendAsync(client, request, untilHead: false, chunk);
    }

    /// <summary>Sends (in writes of <paramref name="chunk"/> bytes; 0: one write), reads until closed or, with <paramref name="untilHead"/>, a head.</summary>
    private static Task<string> SendAsync(TcpClient client, string request, bool untilHead, int chunk = 0) =>
        RawHttp.SendAsync(client.GetStream(), request, chunk, untilHead ? RawHttp.HasHead : null);
}

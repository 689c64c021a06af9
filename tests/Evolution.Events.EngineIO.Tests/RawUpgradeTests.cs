using System.Net.Sockets;
using System.Net.WebSockets;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Evolution.Events.EngineIO.Hosting;
using Evolution.Events.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Evolution.Events.EngineIO.Tests;

public sealed class RawEngineWebSocketFixture : EngineWebSocketFixture
{
    protected override bool RawUpgrade => true;
}

/// <summary>Every WebSocket test of <see cref="EngineWebSocketTests"/> again, with upgrades served on the raw connection.</summary>
public sealed class RawEngineWebSocketTests(RawEngineWebSocketFixture fixture)
    : EngineWebSocketTests(fixture), IClassFixture<RawEngineWebSocketFixture>
{
    [Fact]
    public async Task The_raw_path_serves_the_upgrades()
    {
        var dispatcher = fixture.Host.App.Services.GetRequiredService<RawUpgradeDispatcher>();
        var before = dispatcher.Upgrades;
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(fixture.Host.WebSocketUri("EIO=4&transport=websocket"), CancellationToken.None);
        Assert.StartsWith("0{", (await ReceiveAsync(ws)).Text);
        Assert.Equal(before + 1, dispatcher.Upgrades);
        // not an upgrade: Kestrel's, untouched
        using var poll = await fixture.Host.Http.GetAsync(EngineHost.Path + "?EIO=4&transport=polling");
        Assert.Equal(200, (int)poll.StatusCode);
        Assert.Equal(before + 1, dispatcher.Upgrades);
    }
}

/// <summary>An <c>Origin</c> check (socket.io's way: <c>allowRequest</c>) holds for upgrades on either path.</summary>
public sealed class RawUpgradeOriginTests
{
    private const string Allowed = "https://allowed.example";

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task An_origin_check_in_AllowRequest_refuses_on_either_path(bool raw)
    {
        await using var host = await EngineHost.StartAsync(o => o.AllowRequest = context => ValueTask.FromResult(
            context.Request.Headers.Origin is [var origin] && origin != Allowed ? new HandshakeRefusal(403, "origin not allowed") : null),
            rawUpgrade: raw);
        var dispatcher = host.App.Services.GetService<RawUpgradeDispatcher>();

        async Task<int> UpgradeAsync(string? origin)
        {
            using var ws = new ClientWebSocket();
            ws.Options.CollectHttpResponseDetails = true;
            if (origin is not null)
                ws.Options.SetRequestHeader("Origin", origin);
            try
            {
                await ws.ConnectAsync(host.WebSocketUri("EIO=4&transport=websocket"), CancellationToken.None);
            }
            catch (WebSocketException)
            {
            }

            return (int)ws.HttpStatusCode;
        }

        Assert.Equal(403, await UpgradeAsync("https://evil.example"));
        Assert.Equal(101, await UpgradeAsync(Allowed));
        Assert.Equal(101, await UpgradeAsync(null)); // not a browser: no Origin
        Assert.Equal(raw ? 3 : null, dispatcher?.Requests);
        Assert.Equal(raw ? 2 : null, dispatcher?.Upgrades);
    }
}

/// <summary>What the raw path lets go of: the request's objects, once a WebSocket is detached.</summary>
public sealed class RawUpgradeDetachTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_detached_websocket_keeps_no_HttpContext_alive(bool raw)
    {
        var contexts = new List<WeakReference>();
        await using var host = await EngineHost.StartAsync(o => o.PingInterval = 300, rawUpgrade: raw, first: app => app.Use((context, next) =>
        {
            if (context.Request.Query["transport"] == "websocket")
            {
                lock (contexts)
                    contexts.Add(new WeakReference(context));
            }

            return next(context);
        }));
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(host.WebSocketUri("EIO=4&transport=websocket"), CancellationToken.None);
        Assert.StartsWith("0{", (await EngineWebSocketTests.ReceiveAsync(ws)).Text);
        Assert.Single(contexts);

        // the session is alive (it pings, we answer), its request object is not: on the HTTP path it is
        for (var i = 0; i < 3; i++)
        {
            Collect();
            Assert.Equal("2", (await EngineWebSocketTests.ReceiveAsync(ws)).Text);
            await EngineWebSocketTests.SendTextAsync(ws, "3");
        }

        Collect();
        Assert.Equal(!raw, contexts[0].IsAlive);
        await EngineWebSocketTests.SendTextAsync(ws, "4still here");
        Assert.Equal("4still here", (await EngineWebSocketTests.ReceiveAsync(ws)).Text);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Collect()
    {
        for (var i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
    }

    [Fact]
    public async Task Bytes_the_raw_path_does_not_take_reach_Kestrel_untouched()
    {
        await using var host = await EngineHost.StartAsync(rawUpgrade: true);
        var dispatcher = host.App.Services.GetRequiredService<RawUpgradeDispatcher>();
        var upgrade = "GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

        // a head split across many writes is still taken
        var reply = await ExchangeAsync(host.BaseUri, upgrade, chunk: 3, untilHead: true);
        Assert.StartsWith("HTTP/1.1 101 ", reply);
        Assert.Equal(1, dispatcher.Upgrades);

        // keep-alive and pipelined requests, split or not, after an upgrade-looking path: Kestrel's
        var poll = "GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n";
        var last = "GET /engine.io/?EIO=3&transport=polling HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        var pipelined = await ExchangeAsync(host.BaseUri, poll + poll + last, chunk: 0);
        Assert.Equal(["HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 400 Bad Request"], StatusLines(pipelined));
        var split = await ExchangeAsync(host.BaseUri, poll + last, chunk: 5);
        Assert.Equal(["HTTP/1.1 200 OK", "HTTP/1.1 400 Bad Request"], StatusLines(split));

        // an upgrade after a first request on the same connection: Kestrel's (the HTTP path)
        var second = await ExchangeAsync(host.BaseUri, poll + upgrade, chunk: 0, untilHead: false, untilStatusLines: 2);
        Assert.Equal(["HTTP/1.1 200 OK", "HTTP/1.1 101 Switching Protocols"], StatusLines(second));

        // garbage, an oversized head, HTTP/1.0, HTTP/2's preface, a TLS hello: Kestrel answers as it always does
        Assert.StartsWith("HTTP/1.1 400 ", await ExchangeAsync(host.BaseUri, "HELLO\r\n\r\n", chunk: 0));
        var big = upgrade.Replace("Host: x\r\n", "Host: x\r\nX-Big: " + new string('a', 40_000) + "\r\n", StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 431 ", await ExchangeAsync(host.BaseUri, big, chunk: 0));
        var http10 = upgrade.Replace("HTTP/1.1\r\n", "HTTP/1.0\r\n", StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 ", await ExchangeAsync(host.BaseUri, http10, chunk: 0, untilHead: true));
        Assert.StartsWith("HTTP/1.1 400 ", await ExchangeAsync(host.BaseUri, "\u0016\u0003\u0001\u0000\u00a5\u0001\u0000\u0000\u00a1\u0003\u0003", chunk: 0));
        Assert.Equal(1, dispatcher.Upgrades);
        Assert.Equal(1, dispatcher.Requests);
    }

    internal static List<string> StatusLines(string reply) =>
        Regex.Matches(reply, "HTTP/1\\.[01] [0-9]{3} [^\r]*").Select(m => m.Value).ToList();

    /// <summary>
    /// Sends <paramref name="request"/> (in writes of <paramref name="chunk"/> bytes, 0: one write) and reads until the
    /// server closes, or until the first head when <paramref name="untilHead"/>.
    /// </summary>
    internal static async Task<string> ExchangeAsync(Uri server, string request, int chunk, bool untilHead = false, int untilStatusLines = 0)
    {
        using var client = new TcpClient { NoDelay = true };
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await client.ConnectAsync(server.Host, server.Port, timeout.Token);
        return await RawHttp.SendAsync(client.GetStream(), request, chunk, text =>
            (untilHead && RawHttp.HasHead(text))
            || (untilStatusLines > 0 && StatusLines(text).Count >= untilStatusLines
                && text.LastIndexOf("HTTP/1.", StringComparison.Ordinal) < text.LastIndexOf("\r\n\r\n", StringComparison.Ordinal)));
    }
}

using System.Text.Json.Nodes;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Evolution.Events.BrowserTests;

/// <summary>
/// Socket.IO under the gateway's own settings, as a browser page on another origin meets them: the stock client
/// with its default transports (HTTP long-polling first, then the upgrade), so <c>CORS_ORIGIN</c> decides whether
/// the page connects at all; and <c>WEBSOCKET_MAX_PAYLOAD</c> bounds what the page may send, on both transports.
/// </summary>
[Collection(ChromiumCollection.Name)]
public sealed class CrossOriginTests(ChromiumFixture chromium, ITestOutputHelper output)
{
    private static readonly string[] TransportEndReasons = ["transport close", "transport error"];

    [Fact]
    public async Task A_page_on_an_allowed_origin_connects_with_the_default_transports_and_receives_events()
    {
        await using var site = await PageServer.StartAsync();
        await using var gateway = await GatewayHost.StartAsync(new Dictionary<string, string?> { ["CORS_ORIGIN"] = "http://other.example, " + site.Origin });
        var token = await gateway.CreateInstanceAsync("shop");
        site.Html = Html(gateway.BaseUri, token, "{}");
        await WithPageAsync(site, async page =>
        {
            await page.WaitForFunctionAsync("() => window.connectedOver !== undefined");
            Assert.Equal("polling", await page.EvaluateAsync<string>("window.openedOver"));
            await gateway.IngestAsync("connection.update", "shop", new JsonObject { ["instance"] = "shop", ["state"] = "open" });
            await page.WaitForFunctionAsync("() => window.states.includes('open')");
            Assert.Empty(await page.EvaluateAsync<string[]>("window.errors"));
        });
    }

    [Fact]
    public async Task A_page_on_an_origin_not_listed_cannot_connect()
    {
        await using var site = await PageServer.StartAsync();
        await using var gateway = await GatewayHost.StartAsync(new Dictionary<string, string?> { ["CORS_ORIGIN"] = "http://other.example" });
        var token = await gateway.CreateInstanceAsync("shop");
        site.Html = Html(gateway.BaseUri, token, "{}");
        await WithPageAsync(site, async page =>
        {
            // the browser refuses the polling handshake's answer (no Access-Control-Allow-Origin for this origin)
            await page.WaitForFunctionAsync("() => window.errors.length > 0");
            Assert.Null(await page.EvaluateAsync<string?>("window.connectedOver ?? null"));
            Assert.Contains("xhr poll error", await page.EvaluateAsync<string[]>("window.errors"));
        });
    }

    [Theory]
    [InlineData("websocket")]
    [InlineData("polling")]
    public async Task A_message_over_WEBSOCKET_MAX_PAYLOAD_ends_the_session_and_one_under_it_does_not(string transport)
    {
        await using var site = await PageServer.StartAsync();
        await using var gateway = await GatewayHost.StartAsync(new Dictionary<string, string?> { ["WEBSOCKET_MAX_PAYLOAD"] = "4000" });
        var token = await gateway.CreateInstanceAsync("shop");
        site.Html = Html(gateway.BaseUri, token, $"{{ transports: ['{transport}'] }}");
        await WithPageAsync(site, async page =>
        {
            await page.WaitForFunctionAsync("() => window.connectedOver !== undefined");
            Assert.Equal(transport, await page.EvaluateAsync<string>("window.openedOver"));

            // under the bound: the gateway took the message (its ack comes back: no INBOUND_WEBHOOK_URL here, so an
            // error) and the session stays; waiting for the ack, not for a fixed time
            var ack = await page.EvaluateAsync<string>(
                "async () => JSON.stringify(await window.socket.timeout(20000).emitWithAck('note', 'x'.repeat(3000)))");
            Assert.Contains("INBOUND_WEBHOOK_URL", ack, StringComparison.Ordinal);
            Assert.True(await page.EvaluateAsync<bool>("window.socket.connected"));
            Assert.Null(await page.EvaluateAsync<string?>("window.disconnectReason ?? null"));

            // over it: the gateway ends the session (WebSocket close 1009; polling 413), the page sees a transport failure
            await page.EvaluateAsync("() => { window.socket.emit('note', 'x'.repeat(20000)); }");
            await page.WaitForFunctionAsync("() => window.disconnectReason !== undefined");
            Assert.Contains(await page.EvaluateAsync<string>("window.disconnectReason"), TransportEndReasons);
        });
    }

    private async Task WithPageAsync(PageServer site, Func<IPage, Task> body)
    {
        var console = new List<string>();
        var page = await chromium.NewPageAsync(console);
        try
        {
            await page.GotoAsync(site.Url.ToString());
            await body(page);
            ChromiumFixture.AssertNoPageErrors(console);
        }
        finally
        {
            foreach (var line in console)
                output.WriteLine(line);
            await chromium.ClosePageAsync(page, output);
        }
    }

    /// <summary>A page loading the stock client from the gateway at socket.io's standard path (serveClient); it records what happens in window globals.</summary>
    private static string Html(Uri gateway, string token, string options) => $$"""
        <!DOCTYPE html>
        <html lang="en">
          <head><meta charset="UTF-8" /><title>cross-origin</title><script src="{{gateway}}socket.io/socket.io.js"></script></head>
          <body>
            <script>
              window.states = []; window.errors = [];
              const socket = io('{{gateway}}shop', Object.assign({ auth: { apikey: '{{token}}' }, reconnection: false }, {{options}}));
              window.socket = socket;
              socket.io.on('open', () => { window.openedOver = socket.io.engine.transport.name; });
              socket.on('connect', () => { window.connectedOver = socket.io.engine.transport.name; });
              socket.on('connect_error', (e) => window.errors.push(String(e.message)));
              socket.on('disconnect', (reason) => { window.disconnectReason = reason; });
              socket.on('connection.update', (d) => window.states.push(d.data.state));
            </script>
          </body>
        </html>
        """;
}

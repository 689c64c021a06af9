using System.Text.Json.Nodes;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Evolution.Events.BrowserTests;

/// <summary>
/// WEBSOCKET_PER_MESSAGE_DEFLATE with a real browser: Chromium always offers permessage-deflate and compresses what it
/// sends, so with the option on the page's WebSocket reports the extension, a large event reaches it intact, and a large
/// message it sends (compressed by the browser) reaches the gateway; off (the default), the extension is declined.
/// </summary>
[Collection(ChromiumCollection.Name)]
public sealed class PerMessageDeflateTests(ChromiumFixture chromium, ITestOutputHelper output)
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task The_page_websocket_is_compressed_only_when_the_option_is_on(bool on)
    {
        await using var site = await PageServer.StartAsync();
        await using var gateway = await GatewayHost.StartAsync(new Dictionary<string, string?>
        {
            ["CORS_ORIGIN"] = site.Origin,
            ["WEBSOCKET_PER_MESSAGE_DEFLATE"] = on ? "true" : "false",
        });
        var token = await gateway.CreateInstanceAsync("shop");
        site.Html = Html(gateway.BaseUri, token);
        var console = new List<string>();
        var page = await chromium.NewPageAsync(console);
        try
        {
            await page.GotoAsync(site.Url.ToString());
            await page.WaitForFunctionAsync("() => window.connected === true");
            var extensions = await page.EvaluateAsync<string>("window.socket.io.engine.transport.ws.extensions");
            if (on)
                Assert.StartsWith("permessage-deflate", extensions, StringComparison.Ordinal);
            else
                Assert.Equal("", extensions);

            // gateway → page: a large event arrives whole
            var messages = new JsonArray();
            for (var i = 0; i < 500; i++)
                messages.Add(new JsonObject { ["id"] = "m" + (i % 25), ["text"] = "hello from the shop" });
            await gateway.IngestAsync("messages.upsert", "shop", new JsonObject { ["messages"] = messages });
            await page.WaitForFunctionAsync("() => window.received !== undefined");
            Assert.Equal(500, await page.EvaluateAsync<int>("window.received"));

            // page → gateway: a large message (the browser compresses it) is read whole; its ack comes back
            var ack = await page.EvaluateAsync<string>(
                "async () => JSON.stringify(await window.socket.timeout(20000).emitWithAck('note', 'abc'.repeat(20000)))");
            Assert.Contains("INBOUND_WEBHOOK_URL", ack, StringComparison.Ordinal);
            Assert.True(await page.EvaluateAsync<bool>("window.socket.connected"));
            ChromiumFixture.AssertNoPageErrors(console);
        }
        finally
        {
            foreach (var line in console)
                output.WriteLine(line);
            await chromium.ClosePageAsync(page, output);
        }
    }

    private static string Html(Uri gateway, string token) => $$"""
        <!DOCTYPE html>
        <html lang="en">
          <head><meta charset="UTF-8" /><title>deflate</title><script src="{{gateway}}socket.io/socket.io.js"></script></head>
          <body>
            <script>
              const socket = io('{{gateway}}shop', { auth: { apikey: '{{token}}' }, reconnection: false, transports: ['websocket'] });
              window.socket = socket;
              socket.on('connect', () => { window.connected = true; });
              socket.on('messages.upsert', (d) => { window.received = d.data.messages.length; });
            </script>
          </body>
        </html>
        """;
}

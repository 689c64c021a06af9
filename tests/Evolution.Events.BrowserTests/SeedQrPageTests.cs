using System.Text.Json.Nodes;
using Evolution.Events.Gateway;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Evolution.Events.BrowserTests;

/// <summary>
/// Seed 001's QR-code page (its PHP/jQuery example, here without jQuery and PHP), served from another origin
/// and using the stock socket.io client from the gateway with <c>transports: ['websocket']</c>. The seed's
/// page connects with no key; ours puts the instance token in the query (<c>?apikey=</c>), which the contract
/// accepts. The seed reloads the page 3.5 s after <c>open</c>; the test reads the text before that.
/// </summary>
[Collection(ChromiumCollection.Name)]
public sealed class SeedQrPageTests(ChromiumFixture chromium, ITestOutputHelper output)
{
    [Fact]
    public async Task SeedQrPage_ShowsQr_ThenSuccessfullyConnected()
    {
        await using var gateway = await GatewayHost.StartAsync();
        var token = await gateway.CreateInstanceAsync("shop");
        var console = new List<string>();
        var page = await chromium.NewPageAsync(console);
        try
        {
            // The page comes from a server of its own (the seed's PHP site), another origin than the gateway.
            await using var site = await PageServer.StartAsync(Html(gateway.BaseUri, token));
            await page.GotoAsync(site.Url.ToString());
            await page.WaitForFunctionAsync("() => document.getElementById('statusConnect').textContent === 'Scan the QRCode...'");
            Assert.Equal("websocket", await page.EvaluateAsync<string>("window.socket.io.engine.transport.name"));

            var raw = GatewayHost.QrPngBase64("2@seed-001");
            await gateway.IngestAsync("qrcode.updated", "shop", DashboardTests.QrData(raw));
            await page.WaitForFunctionAsync(
                "src => { const img = document.querySelector('#qrcode img'); return img.getAttribute('src') === src && img.style.display !== 'none'; }",
                "data:image/png;base64," + raw);
            Assert.Equal("Waiting for connection...", await page.TextContentAsync("#statusConnect"));

            await gateway.IngestAsync("connection.update", "shop", new JsonObject { ["instance"] = "shop", ["state"] = "connecting" });
            await page.WaitForFunctionAsync("() => document.getElementById('statusConnect').textContent === 'Attempting to connect...'");
            await gateway.IngestAsync("connection.update", "shop", new JsonObject { ["instance"] = "shop", ["state"] = "open" });
            await page.WaitForFunctionAsync("() => document.getElementById('statusConnect').textContent === 'Successfully connected...'");
            await page.ScreenshotAsync(new() { Path = ChromiumFixture.ArtifactPath("seed-001-qrcode-page.png") });

            var metrics = await gateway.MetricsAsync();
            Assert.Equal(1, DashboardTests.Sample(metrics, "evolution_socketio_connections", "transport=\"websocket\""));
            ChromiumFixture.AssertNoPageErrors(console);
        }
        finally
        {
            foreach (var line in console)
                output.WriteLine(line);
            await page.Context.CloseAsync();
        }
    }

    /// <summary>
    /// WEBSOCKET_REPLAY_LAST_STATE: the page opened after the QR was sent shows it at once (it used to say
    /// "Scan the QRCode..." with no image until the next QR). The replay is the state, then the QR.
    /// </summary>
    [Fact]
    public async Task SeedQrPage_OpenedAfterTheQrWasSent_ShowsIt()
    {
        await using var gateway = await GatewayHost.StartAsync();
        var token = await gateway.CreateInstanceAsync("shop");
        var raw = GatewayHost.QrPngBase64("2@seed-001-late");
        await gateway.IngestAsync("connection.update", "shop", new JsonObject { ["instance"] = "shop", ["state"] = "connecting" });
        await gateway.IngestAsync("qrcode.updated", "shop", DashboardTests.QrData(raw));
        var console = new List<string>();
        var page = await chromium.NewPageAsync(console);
        try
        {
            await using var site = await PageServer.StartAsync(Html(gateway.BaseUri, token));
            await page.GotoAsync(site.Url.ToString());
            await page.WaitForFunctionAsync(
                "src => { const img = document.querySelector('#qrcode img'); return img.getAttribute('src') === src && img.style.display !== 'none'; }",
                "data:image/png;base64," + raw);
            Assert.Equal("Waiting for connection...", await page.TextContentAsync("#statusConnect"));
            await page.ScreenshotAsync(new() { Path = ChromiumFixture.ArtifactPath("seed-001-qrcode-page-opened-late.png") });

            // once the phone connected, a page opened later shows the state and no QR
            await gateway.IngestAsync("connection.update", "shop", new JsonObject { ["instance"] = "shop", ["state"] = "open" });
            var later = await page.Context.NewPageAsync();
            await later.GotoAsync(site.Url.ToString());
            await later.WaitForFunctionAsync("() => document.getElementById('statusConnect').textContent === 'Successfully connected...'");
            Assert.Equal("none", await later.EvaluateAsync<string>("document.querySelector('#qrcode img').style.display"));
            ChromiumFixture.AssertNoPageErrors(console);
        }
        finally
        {
            foreach (var line in console)
                output.WriteLine(line);
            await page.Context.CloseAsync();
        }
    }

    private static string Html(Uri gateway, string token) => $$"""
        <!DOCTYPE html>
        <html lang="en">
          <head>
            <meta charset="UTF-8" />
            <title>QR Code WebSocket</title>
            <!-- Include Socket.IO: the stock client, served by the gateway itself -->
            <script src="{{gateway}}socket.io.min.js"></script>
          </head>
          <body>
            <div id="qrcode"><img src="" alt="QR Code" style="display:none;" /></div>
            <div id="statusConnect">Waiting for QRCode...</div>
            <script>
              document.addEventListener('DOMContentLoaded', () => {
                const img = document.querySelector('#qrcode img');
                const status = document.getElementById('statusConnect');
                // Establishes the WebSocket connection using Socket.IO
                const socket = io('ws://{{gateway.Authority}}/shop?apikey={{Uri.EscapeDataString(token)}}', {
                  transports: ['websocket']
                });
                window.socket = socket;

                socket.on('connect', () => {
                  status.textContent = 'Scan the QRCode...';
                });

                // Updates the QR Code when a new one is received
                socket.on('qrcode.updated', (data) => {
                  img.setAttribute('src', 'data:image/png;base64,' + data.data.qrcode.base64);
                  img.style.display = '';
                  status.textContent = 'Waiting for connection...';
                });

                // Updates connection status based on received events
                socket.on('connection.update', (data) => {
                  switch (data.data.state) {
                    case 'close': status.textContent = 'Recreating connection...'; break;
                    case 'connecting': status.textContent = 'Attempting to connect...'; break;
                    case 'open': status.textContent = 'Successfully connected...'; break;
                  }
                });
              });
            </script>
          </body>
        </html>
        """;
}

using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace Evolution.Events.BrowserTests;

/// <summary>
/// Seed 001's React component (its "React" tab), <c>Seeds/seed-001-QrCode.jsx</c>, a byte-for-byte copy of the seed's
/// code block, bundled with esbuild (npm) with React 18 and socket.io-client 4.2.0 from npm and run in Chromium against
/// the gateway. The only change is filling in the seed's placeholders (<c>api.yoursite.com/instance_name</c>, see
/// <see cref="SeedPages.BundleSeed001ReactAsync"/>). The component names <c>wss://</c> and sends no key: the gateway
/// listens with TLS and runs with <c>WEBSOCKET_ALLOWED_HOSTS=127.0.0.1</c>.
/// </summary>
[Collection(ChromiumCollection.Name)]
public sealed class SeedReactTests(ChromiumFixture chromium, ITestOutputHelper output)
{
    private const string Status = "document.querySelector('#root div > div').textContent";

    [Fact]
    public async Task SeedReactComponent_ShowsQrAndStates_ThenReloadsOnOpen()
    {
        using var certificate = GatewayHost.LoopbackCertificate();
        await using var gateway = await GatewayHost.StartAsync(
            new Dictionary<string, string?> { ["WEBSOCKET_ALLOWED_HOSTS"] = "127.0.0.1" }, certificate);
        await gateway.CreateInstanceAsync("shop");
        var bundle = await SeedPages.BundleSeed001ReactAsync($"127.0.0.1:{gateway.BaseUri.Port}", "shop");
        var first = "data:image/png;base64," + GatewayHost.QrPngBase64("2@seed-001-react-first");
        var html = $$"""
            <!DOCTYPE html>
            <html lang="en">
              <head><meta charset="UTF-8" /><title>QR Code (React)</title></head>
              <body>
                <div id="root"></div>
                <script>window.initialQr = {{JsonValue.Create(first).ToJsonString()}};</script>
                <script src="/app.js"></script>
              </body>
            </html>
            """;
        await using var site = await PageServer.StartAsync(html, new Dictionary<string, string> { ["/app.js"] = bundle });
        var console = new List<string>();
        var page = await chromium.NewPageAsync(console, ignoreHttpsErrors: true);
        try
        {
            await page.GotoAsync(site.Url.ToString());
            // connect: the component shows the QR it got as a prop
            await page.WaitForFunctionAsync($"() => {Status} === 'Scan the QRCode...'");
            await AssertQrAsync(page, first);
            var metrics = await gateway.MetricsAsync();
            Assert.Equal(1, DashboardTests.Sample(metrics, "evolution_socketio_connections", "transport=\"websocket\""));

            // Evolution API sends qrcode.base64 as a data URL, which the component uses as the image's src
            var next = "data:image/png;base64," + GatewayHost.QrPngBase64("2@seed-001-react-next");
            await gateway.IngestAsync("qrcode.updated", "shop", DashboardTests.QrData(next));
            await page.WaitForFunctionAsync($"() => {Status} === 'Waiting for connection...'");
            await AssertQrAsync(page, next);

            foreach (var (state, text) in new[] { ("close", "Recreating connection..."), ("connecting", "Attempting to connect..."), ("qr", "Unknown state...") })
            {
                await gateway.IngestAsync("connection.update", "shop", new JsonObject { ["instance"] = "shop", ["state"] = state });
                await page.WaitForFunctionAsync($"() => {Status} === '{text}'");
            }

            var before = site.Requests;
            await page.EvaluateAsync("() => { window.beforeReload = true; }");
            await gateway.IngestAsync("connection.update", "shop", new JsonObject { ["instance"] = "shop", ["state"] = "open" });
            await page.WaitForFunctionAsync($"() => {Status} === 'Successfully connected...'");
            await page.ScreenshotAsync(new() { Path = ChromiumFixture.ArtifactPath("seed-001-react-component.png") });
            // 3.5 s later the component reloads the page
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (site.Requests == before)
            {
                Assert.True(DateTime.UtcNow < deadline, "the page did not reload after open");
                await Task.Delay(20);
            }

            // the reloaded page (a new document) mounts the component, which connects again: the test ends on a
            // settled page, not in the middle of the navigation (where CI once saw the context close hang)
            await page.WaitForFunctionAsync($"() => window.beforeReload === undefined && document.readyState === 'complete' && {Status} === 'Scan the QRCode...'");
            ChromiumFixture.AssertNoPageErrors(console);
        }
        finally
        {
            foreach (var line in console)
                output.WriteLine(line);
            await chromium.ClosePageAsync(page, output);
        }
    }

    private static async Task AssertQrAsync(Microsoft.Playwright.IPage page, string src) =>
        await page.WaitForFunctionAsync("src => document.querySelector('#root img').getAttribute('src') === src", src);
}

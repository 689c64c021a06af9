using System.Text.Json.Nodes;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Evolution.Events.BrowserTests;

/// <summary>
/// Seed 001's QR-code page (its "PHP" tab) run in Chromium <b>as written</b>. The page is
/// <c>Seeds/seed-001-qrcode.php</c>, a byte-for-byte copy of the seed's code block; the only change the test makes is
/// what PHP would do: its three <c>&lt;?= htmlspecialchars(…); ?&gt;</c> values (the gateway's domain, the instance name,
/// the instance's first QR) are filled in by the test's page server (<see cref="SeedPages.Seed001QrPage"/>). The page's
/// CDN scripts, jQuery 3.5.1 and socket.io-client 4.2.0, are the npm packages of those versions (package.json here),
/// answered at the page's own URLs (<see cref="SeedPages.ServeCdnAsync"/>), so not even the CDN host is rewritten.
/// The page names <c>wss://</c>, so the gateway listens with TLS (a self-signed certificate the browser context
/// accepts), and the page sends no key: the gateway runs with <c>WEBSOCKET_ALLOWED_HOSTS=127.0.0.1</c>.
/// </summary>
[Collection(ChromiumCollection.Name)]
public sealed class SeedQrPageTests(ChromiumFixture chromium, ITestOutputHelper output)
{
    private const string Status = "document.getElementById('statusConnect').textContent";

    [Fact]
    public async Task SeedQrPage_AsWritten_ShowsQrAndStates_ThenReloadsOnOpen()
    {
        using var certificate = GatewayHost.LoopbackCertificate();
        await using var gateway = await StartGatewayAsync(certificate);
        await gateway.CreateInstanceAsync("shop");
        var first = GatewayHost.QrPngBase64("2@seed-001-first");
        await using var site = await PageServer.StartAsync(
            SeedPages.Seed001QrPage($"127.0.0.1:{gateway.BaseUri.Port}", "shop", first));
        var console = new List<string>();
        var page = await chromium.NewPageAsync(console, ignoreHttpsErrors: true);
        try
        {
            await SeedPages.ServeCdnAsync(page.Context);
            await page.GotoAsync(site.Url.ToString());
            Assert.Equal("3.5.1", await page.EvaluateAsync<string>("jQuery.fn.jquery"));

            // connect: the first QR (from PHP) is shown, "Scan the QRCode..."
            await page.WaitForFunctionAsync($"() => {Status} === 'Scan the QRCode...'");
            await AssertQrShownAsync(page, first);
            var metrics = await gateway.MetricsAsync();
            Assert.Equal(1, DashboardTests.Sample(metrics, "evolution_socketio_connections", "transport=\"websocket\""));

            var next = GatewayHost.QrPngBase64("2@seed-001-next");
            await gateway.IngestAsync("qrcode.updated", "shop", DashboardTests.QrData(next));
            await page.WaitForFunctionAsync($"() => {Status} === 'Waiting for connection...'");
            await AssertQrShownAsync(page, next);

            await gateway.IngestAsync("connection.update", "shop", State("close"));
            await page.WaitForFunctionAsync($"() => {Status} === 'Recreating connection...'");
            await gateway.IngestAsync("connection.update", "shop", State("connecting"));
            await page.WaitForFunctionAsync($"() => {Status} === 'Attempting to connect...'");

            // open: "Successfully connected...", and 3.5 s later the page reloads itself (a new GET of the page)
            var before = site.Requests;
            await page.EvaluateAsync("() => { window.beforeReload = true; }");
            await gateway.IngestAsync("connection.update", "shop", State("open"));
            await page.WaitForFunctionAsync($"() => {Status} === 'Successfully connected...'");
            await page.ScreenshotAsync(new() { Path = ChromiumFixture.ArtifactPath("seed-001-qrcode-page.png") });
            await WaitAsync(() => site.Requests > before, "the page did not reload after open");
            await page.WaitForFunctionAsync("() => window.beforeReload === undefined && document.readyState === 'complete'");
            // The reloaded page connects again. Nothing is replayed while the instance is open (WEBSOCKET_REPLAY_LAST_STATE
            // forgets the state on open), so it says what its connect handler says and does not reload again: replaying
            // "open" reloaded it forever. 6 s is more than the page's 3.5 s reload delay.
            await page.WaitForFunctionAsync($"() => {Status} === 'Scan the QRCode...'");
            var afterReload = site.Requests;
            await Task.Delay(TimeSpan.FromSeconds(6));
            Assert.Equal(afterReload, site.Requests);
            ChromiumFixture.AssertNoPageErrors(console);
        }
        finally
        {
            foreach (var line in console)
                output.WriteLine(line);
            await chromium.ClosePageAsync(page, output);
        }
    }

    /// <summary>
    /// WEBSOCKET_REPLAY_LAST_STATE: the seed page opened after the QR was sent shows that QR at once (the replay is the
    /// state, then the QR), not the stale first QR PHP printed.
    /// </summary>
    [Fact]
    public async Task SeedQrPage_OpenedAfterTheQrWasSent_ShowsIt()
    {
        using var certificate = GatewayHost.LoopbackCertificate();
        await using var gateway = await StartGatewayAsync(certificate);
        await gateway.CreateInstanceAsync("shop");
        var stale = GatewayHost.QrPngBase64("2@seed-001-stale");
        var late = GatewayHost.QrPngBase64("2@seed-001-late");
        await gateway.IngestAsync("connection.update", "shop", State("connecting"));
        await gateway.IngestAsync("qrcode.updated", "shop", DashboardTests.QrData(late));
        await using var site = await PageServer.StartAsync(
            SeedPages.Seed001QrPage($"127.0.0.1:{gateway.BaseUri.Port}", "shop", stale));
        var console = new List<string>();
        var page = await chromium.NewPageAsync(console, ignoreHttpsErrors: true);
        try
        {
            await SeedPages.ServeCdnAsync(page.Context);
            await page.GotoAsync(site.Url.ToString());
            await AssertQrShownAsync(page, late);
            await page.WaitForFunctionAsync($"() => {Status} === 'Waiting for connection...'");
            await page.ScreenshotAsync(new() { Path = ChromiumFixture.ArtifactPath("seed-001-qrcode-page-opened-late.png") });
            ChromiumFixture.AssertNoPageErrors(console);
        }
        finally
        {
            foreach (var line in console)
                output.WriteLine(line);
            await chromium.ClosePageAsync(page, output);
        }
    }

    private static async Task<GatewayHost> StartGatewayAsync(System.Security.Cryptography.X509Certificates.X509Certificate2 certificate) =>
        await GatewayHost.StartAsync(new Dictionary<string, string?> { ["WEBSOCKET_ALLOWED_HOSTS"] = "127.0.0.1" }, certificate);

    private static JsonObject State(string state) => new() { ["instance"] = "shop", ["state"] = state };

    private static async Task AssertQrShownAsync(IPage page, string base64) =>
        await page.WaitForFunctionAsync(
            "src => { const img = document.querySelector('#qrcode img'); return img.getAttribute('src') === src && img.style.display !== 'none'; }",
            "data:image/png;base64," + base64);

    private static async Task WaitAsync(Func<bool> condition, string message)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, message);
            await Task.Delay(20);
        }
    }
}

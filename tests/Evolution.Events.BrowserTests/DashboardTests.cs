using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Evolution.Events.BrowserTests;

/// <summary>The dashboard at <c>/</c> in Chromium: connect with key + instance, then events posted to /webhook.</summary>
[Collection(ChromiumCollection.Name)]
public sealed partial class DashboardTests(ChromiumFixture chromium, ITestOutputHelper output)
{
    [Fact]
    public async Task Dashboard_ShowsPostedQrCode_AndStateReachesOpen()
    {
        await using var gateway = await GatewayHost.StartAsync();
        var console = new List<string>();
        var page = await chromium.NewPageAsync(console);
        try
        {
            await page.GotoAsync(gateway.BaseUri.ToString());
            await page.FillAsync("#apikey", GatewayHost.Key);
            await page.FillAsync("#instance", "shop");
            await page.ClickAsync("#connect");
            await page.WaitForSelectorAsync("#socket-status[data-status=connected]");
            await page.WaitForSelectorAsync("#stats-card:not([hidden])"); // the global key sees the connections view

            // A data URL, as Evolution API sends it.
            var first = "data:image/png;base64," + GatewayHost.QrPngBase64("2@browser-test-first");
            await gateway.IngestAsync("qrcode.updated", "shop", QrData(first));
            await WaitForQrAsync(page, first);
            Assert.True(await page.EvaluateAsync<int>("document.getElementById('qr').naturalWidth") > 100, "the PNG was not decoded");

            // Raw base64, as some producers send it: the page adds the prefix.
            var raw = GatewayHost.QrPngBase64("2@browser-test-second");
            await gateway.IngestAsync("qrcode.updated", "shop", QrData(raw));
            await WaitForQrAsync(page, "data:image/png;base64," + raw);
            await page.ScreenshotAsync(new() { Path = ChromiumFixture.ArtifactPath("dashboard-qrcode.png"), FullPage = true });

            await gateway.IngestAsync("connection.update", "shop", new JsonObject { ["instance"] = "shop", ["state"] = "connecting", ["statusReason"] = 200 });
            await page.WaitForSelectorAsync("#state[data-state=connecting]");
            await gateway.IngestAsync("connection.update", "shop", new JsonObject
            {
                ["instance"] = "shop", ["wuid"] = "5511912345678@s.whatsapp.net", ["profileName"] = "Shop", ["state"] = "open", ["statusReason"] = 200,
            });
            await page.WaitForSelectorAsync("#state[data-state=open]");
            Assert.Equal("open", await page.TextContentAsync("#state"));
            Assert.Equal("Successfully connected...", await page.TextContentAsync("#state-message"));

            await gateway.IngestAsync("messages.upsert", "shop", Message("Olá! Vocês entregam no sábado?"));
            await page.WaitForSelectorAsync("#log tbody tr:has-text('entregam no sábado')");
            Assert.Equal(5, await page.Locator("#log tbody tr").CountAsync());

            // The filter hides what does not match.
            await page.FillAsync("#log-filter", "connection.update");
            await page.WaitForFunctionAsync("() => [...document.querySelectorAll('#log tbody tr')].filter(r => !r.hidden).length === 2");
            await page.FillAsync("#log-filter", "");

            // The connections view polls /dashboard/stats: one socket on /shop.
            await page.WaitForSelectorAsync("#stats-table tbody tr:has-text('shop') >> td:nth-child(2):text-is('1')");
            await page.ScreenshotAsync(new() { Path = ChromiumFixture.ArtifactPath("dashboard-open.png"), FullPage = true });

            var metrics = await gateway.MetricsAsync();
            Assert.True(Sample(metrics, "evolution_events_delivered_total", "transport=\"socketio\",event=\"qrcode.updated\"") >= 2, metrics);
            Assert.Equal(1, Sample(metrics, "evolution_socketio_sockets", "namespace=\"/shop\""));
            ChromiumFixture.AssertNoPageErrors(console);
        }
        finally
        {
            DumpConsole(console);
            await chromium.ClosePageAsync(page, output);
        }
    }

    [Fact]
    public async Task Dashboard_WithWrongKey_ShowsTheRefusal_AndInstanceTokenHasNoConnectionsView()
    {
        await using var gateway = await GatewayHost.StartAsync();
        var token = await gateway.CreateInstanceAsync("sales");
        var console = new List<string>();
        var page = await chromium.NewPageAsync(console);
        try
        {
            await page.GotoAsync(gateway.BaseUri + "#instance=sales&apikey=wrong-key");
            await page.WaitForSelectorAsync("#socket-status[data-status=error]");
            Assert.Equal("refused: Invalid API key", await page.TextContentAsync("#socket-status"));

            await page.FillAsync("#apikey", token);
            await page.ClickAsync("#disconnect");
            await page.ClickAsync("#connect");
            await page.WaitForSelectorAsync("#socket-status[data-status=connected]");
            await gateway.IngestAsync("connection.update", "sales", new JsonObject { ["state"] = "close", ["statusReason"] = 428 });
            await page.WaitForSelectorAsync("#state[data-state=close]");
            Assert.True(await page.IsHiddenAsync("#stats-card"));
            ChromiumFixture.AssertNoPageErrors(console);
        }
        finally
        {
            DumpConsole(console);
            await chromium.ClosePageAsync(page, output);
        }
    }

    internal static JsonObject QrData(string base64) => new()
    {
        ["qrcode"] = new JsonObject { ["instance"] = "shop", ["pairingCode"] = null, ["code"] = "2@browser-test", ["base64"] = base64 },
    };

    private static JsonObject Message(string text) => new()
    {
        ["key"] = new JsonObject { ["remoteJid"] = "5511987654321@s.whatsapp.net", ["fromMe"] = false, ["id"] = "3EB0C0FFEE" },
        ["pushName"] = "Maria",
        ["message"] = new JsonObject { ["conversation"] = text },
        ["messageType"] = "conversation",
        ["messageTimestamp"] = 1_764_000_000,
    };

    private static Task<IJSHandle> WaitForQrAsync(IPage page, string src) => page.WaitForFunctionAsync(
        "src => { const img = document.getElementById('qr'); return !img.hidden && img.getAttribute('src') === src && img.complete; }",
        src);

    /// <summary>The value of one sample of the Prometheus text output (0 when absent).</summary>
    internal static double Sample(string metrics, string name, string labels)
    {
        var match = Regex.Match(metrics, "^" + Regex.Escape(name + "{" + labels + "}") + @" (\S+)$", RegexOptions.Multiline);
        return match.Success ? double.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
    }

    private void DumpConsole(List<string> console)
    {
        foreach (var line in console)
            output.WriteLine(line);
    }
}

using Evolution.Events.Testing;
using Xunit.Abstractions;

namespace Evolution.Events.BrowserTests;

/// <summary>The dashboard of a cluster in Chromium: two gateways on one real redis-server; node A's page lists both nodes and the totals.</summary>
[Collection(ChromiumCollection.Name)]
public sealed class ClusterDashboardTests(ChromiumFixture chromium, ITestOutputHelper output)
{
    [Fact]
    public async Task Dashboard_ListsEveryNodeOfTheCluster()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var a = await GatewayHost.StartAsync(new Dictionary<string, string?>
        {
            ["REDIS_URI"] = redis.Uri(), ["NODE_ID"] = "node-a", ["NODE_HEARTBEAT_MS"] = "300",
        });
        await using var b = await GatewayHost.StartAsync(new Dictionary<string, string?>
        {
            ["REDIS_URI"] = redis.Uri(), ["NODE_ID"] = "node-b", ["NODE_HEARTBEAT_MS"] = "300",
        });
        var console = new List<string>();
        var page = await chromium.NewPageAsync(console);
        try
        {
            await page.GotoAsync(a.BaseUri.ToString());
            await page.FillAsync("#apikey", GatewayHost.Key);
            await page.FillAsync("#instance", "shop");
            await page.ClickAsync("#connect");
            await page.WaitForSelectorAsync("#socket-status[data-status=connected]");
            await page.WaitForSelectorAsync("#stats-nodes-table:not([hidden])");
            await page.WaitForSelectorAsync("#stats-nodes-table tbody tr:has-text('node-a (this node)')");
            await page.WaitForSelectorAsync("#stats-nodes-table tbody tr:has-text('node-b')");
            await page.WaitForFunctionAsync("() => document.getElementById('stats-nodes').textContent === '2'");
            // the page's own connection, on node A, once the next stats refresh has counted it
            await page.WaitForFunctionAsync("() => document.getElementById('stats-cluster-sio').textContent === '1'");
            await page.ScreenshotAsync(new() { Path = ChromiumFixture.ArtifactPath("dashboard-cluster.png"), FullPage = true });
            ChromiumFixture.AssertNoPageErrors(console);
        }
        finally
        {
            foreach (var line in console)
                output.WriteLine(line);
            await chromium.ClosePageAsync(page, output);
        }
    }
}

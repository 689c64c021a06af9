using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Evolution.Events.BrowserTests;

/// <summary>
/// The official Socket.IO Admin UI (ADMIN_UI_ENABLED), served by the gateway at <c>/admin-ui/</c>, in Chromium:
/// logs in with the global key, lists the gateway's sockets and disconnects one; a wrong password is refused.
/// </summary>
[Collection(ChromiumCollection.Name)]
public sealed class AdminUITests(ChromiumFixture chromium, ITestOutputHelper output)
{
    private static readonly Dictionary<string, string?> On = new() { ["ADMIN_UI_ENABLED"] = "true" };

    /// <summary>Two socket.io-client connections to <c>/shop</c> from a page of their own (the gateway's client bundle).</summary>
    private static async Task<(IPage Page, string[] Ids)> ConnectClientsAsync(ChromiumFixture chromium, GatewayHost gateway, string token, List<string> log)
    {
        var page = await chromium.NewPageAsync(log);
        var origin = gateway.BaseUri.GetLeftPart(UriPartial.Authority);
        await page.GotoAsync(origin + "/dashboard.js"); // any same-origin page will do: the client needs no CORS then
        await page.AddScriptTagAsync(new() { Url = origin + "/socket.io/socket.io.min.js" });
        var ids = await page.EvaluateAsync<string[]>(@"async ([origin, token]) => {
            const connect = () => new Promise((resolve, reject) => {
                const s = io(origin + '/shop', { auth: { apikey: token }, reconnection: false });
                s.on('connect', () => resolve(s));
                s.on('connect_error', reject);
            });
            window.clients = [await connect(), await connect()];
            window.disconnects = {};
            window.clients.forEach(s => { const id = s.id; s.on('disconnect', reason => window.disconnects[id] = reason); });
            return window.clients.map(s => s.id);
        }", new[] { origin, token });
        return (page, ids);
    }

    private static async Task LoginAsync(IPage page, GatewayHost gateway, string password)
    {
        await page.GotoAsync(gateway.BaseUri.GetLeftPart(UriPartial.Authority) + "/admin-ui/");
        var dialog = page.Locator(".v-dialog");
        await dialog.GetByLabel("Server URL").FillAsync(gateway.BaseUri.GetLeftPart(UriPartial.Authority));
        await dialog.GetByLabel("Username").FillAsync("operator");
        await dialog.GetByLabel("Password").FillAsync(password);
        await dialog.GetByRole(AriaRole.Button, new() { Name = "Connect" }).ClickAsync();
    }

    [Fact]
    public async Task Lists_the_gateways_sockets_and_disconnects_one()
    {
        await using var gateway = await GatewayHost.StartAsync(On);
        var token = await gateway.CreateInstanceAsync("shop");
        var log = new List<string>();
        var (clients, ids) = await ConnectClientsAsync(chromium, gateway, token, log);
        var page = await chromium.NewPageAsync(log);
        try
        {
            var missing = new List<string>();
            page.Response += (_, response) =>
            {
                if (response.Status >= 400)
                    lock (missing) missing.Add($"{response.Status} {response.Url}");
            };
            await LoginAsync(page, gateway, GatewayHost.Key);
            await page.Locator(".v-dialog").WaitForAsync(new() { State = WaitForSelectorState.Hidden });
            await page.Locator(".v-chip", new() { HasTextRegex = new System.Text.RegularExpressions.Regex(@"^\s*connected\s*$", System.Text.RegularExpressions.RegexOptions.IgnoreCase) }).First.WaitForAsync();

            // the fonts and icons came from the gateway, not from a CDN
            Assert.True(await page.EvaluateAsync<bool>("() => document.fonts.check('16px Roboto')"), "Roboto is not loaded");
            Assert.True(await page.EvaluateAsync<bool>("async () => (await document.fonts.load('24px \"Material Design Icons\"')).length > 0"), "the icon font is not loaded");

            await page.GetByRole(AriaRole.Link, new() { Name = "Sockets" }).ClickAsync();
            await page.Locator(".v-main .v-select .v-select__slot").First.ClickAsync();
            await page.Locator(".v-menu__content .v-list-item", new() { HasText = "/shop" }).ClickAsync();
            var rows = page.Locator("tbody tr");
            foreach (var id in ids)
                await rows.Filter(new() { HasText = id }).WaitForAsync();
            Assert.Equal(2, await rows.CountAsync());
            await page.ScreenshotAsync(new() { Path = ChromiumFixture.ArtifactPath("admin-ui-sockets.png"), FullPage = true });

            // the row's disconnect button: the client gets "io server disconnect", the row goes
            await rows.Filter(new() { HasText = ids[0] }).Locator("button").ClickAsync();
            await clients.WaitForFunctionAsync("id => window.disconnects[id] === 'io server disconnect'", ids[0]);
            // (the click reaches the row too: the UI opens that socket's details, where it is now disconnected)
            await page.Locator(".v-chip", new() { HasTextRegex = new System.Text.RegularExpressions.Regex(@"^\s*disconnected\s*$", System.Text.RegularExpressions.RegexOptions.IgnoreCase) }).First.WaitForAsync();
            await page.GetByRole(AriaRole.Link, new() { Name = "Sockets", Exact = true }).First.ClickAsync();
            if (await page.Locator(".v-main .v-select__selections", new() { HasText = "/shop" }).CountAsync() == 0)
            {
                await page.Locator(".v-main .v-select .v-select__slot").First.ClickAsync();
                await page.Locator(".v-menu__content .v-list-item", new() { HasText = "/shop" }).ClickAsync();
            }
            // the list shows the other socket only (once the page transition is over: one table)
            await page.WaitForFunctionAsync(@"([gone, kept]) => {
                const rows = [...document.querySelectorAll('.v-main tbody tr')].map(r => r.textContent);
                return document.querySelectorAll('.v-main table').length === 1
                    && rows.some(t => t.includes(kept)) && !rows.some(t => t.includes(gone));
            }", ids);
            Assert.Equal(1, await rows.CountAsync());
            Assert.False(await clients.EvaluateAsync<bool>("id => id in window.disconnects", ids[1]));
            lock (missing)
                Assert.DoesNotContain(missing, m => m.Contains("/admin-ui/", StringComparison.Ordinal));
        }
        finally
        {
            await page.ScreenshotAsync(new() { Path = ChromiumFixture.ArtifactPath("admin-ui-last.png"), FullPage = true });
            foreach (var line in log)
                output.WriteLine(line);
        }
        ChromiumFixture.AssertNoPageErrors(log);
    }

    [Fact]
    public async Task A_wrong_password_is_refused()
    {
        await using var gateway = await GatewayHost.StartAsync(On);
        var log = new List<string>();
        var page = await chromium.NewPageAsync(log);
        try
        {
            await LoginAsync(page, gateway, "not-the-key");
            await page.Locator(".v-dialog").GetByText("Invalid credentials").WaitForAsync();
            Assert.True(await page.Locator(".v-dialog").IsVisibleAsync());
            await page.ScreenshotAsync(new() { Path = ChromiumFixture.ArtifactPath("admin-ui-refused.png"), FullPage = true });
        }
        finally
        {
            foreach (var line in log)
                output.WriteLine(line);
        }
        ChromiumFixture.AssertNoPageErrors(log);
    }
}

using System.Net;
using System.Text.Json;
using Evolution.Events.Gateway.Options;
using SocketIOClient;
using SocketIOClient.Transport;

namespace Evolution.Events.Gateway.Tests;

/// <summary>ADMIN_UI_ENABLED: the Admin UI's files at /admin-ui/ and its namespace /admin behind the global key.</summary>
public class AdminUITests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private static readonly Dictionary<string, string?> On = new() { ["ADMIN_UI_ENABLED"] = "true" };

    private static SocketIOClient.SocketIO NewClient(TestGateway gw, string nsp, object auth) =>
        new(new Uri(gw.BaseUri, nsp), new SocketIOOptions
        {
            Transport = TransportProtocol.WebSocket,
            AutoUpgrade = false,
            Auth = auth,
            Reconnection = false,
            ConnectionTimeout = Timeout,
        });

    [Fact]
    public async Task Off_by_default_nothing_is_served()
    {
        await using var gw = await TestGateway.StartAsync();
        using var page = await gw.SendAsync(HttpMethod.Get, "/admin-ui/", key: null);
        Assert.Equal(HttpStatusCode.NotFound, page.StatusCode);
        using var admin = NewClient(gw, "/admin", new { username = "x", password = TestGateway.Key });
        var error = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        admin.OnError += (_, message) => error.TrySetResult(message);
        _ = admin.ConnectAsync();
        // without the Admin UI, /admin is an ordinary instance namespace: no instance of that name
        Assert.DoesNotContain("invalid credentials", await error.Task.WaitAsync(Timeout), StringComparison.Ordinal);
        Assert.Equal(201, (int)(await gw.SendAsync(HttpMethod.Post, "/instance/create", """{"instanceName":"admin"}""")).StatusCode);
    }

    [Fact]
    public async Task The_page_and_its_assets_are_served_locally_with_content_types_and_caching()
    {
        await using var gw = await TestGateway.StartAsync(On);
        using (var redirect = await new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = gw.BaseUri }.GetAsync("/admin-ui"))
        {
            Assert.Equal(HttpStatusCode.Found, redirect.StatusCode);
            Assert.Equal("/admin-ui/", redirect.Headers.Location!.OriginalString);
        }

        using var page = await gw.SendAsync(HttpMethod.Get, "/admin-ui/", key: null);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType!.MediaType);
        Assert.Equal("no-cache", page.Headers.CacheControl!.ToString());
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("<title>Socket.IO Admin UI</title>", html, StringComparison.Ordinal);
        Assert.DoesNotContain("://", html, StringComparison.Ordinal); // no CDN left
        var links = System.Text.RegularExpressions.Regex.Matches(html, "(?:href|src)=\"([^\"]+)\"").Select(m => m.Groups[1].Value).ToList();
        Assert.Contains("vendor/mdi/css/materialdesignicons.min.css", links);
        Assert.Contains("vendor/roboto/400.css", links);
        foreach (var link in links)
        {
            using var asset = await gw.SendAsync(HttpMethod.Get, "/admin-ui/" + link, key: null);
            Assert.True(asset.StatusCode == HttpStatusCode.OK, link + " " + asset.StatusCode);
            var type = asset.Content.Headers.ContentType!.MediaType;
            Assert.Equal(link.EndsWith(".css", StringComparison.Ordinal) ? "text/css" : link.EndsWith(".js", StringComparison.Ordinal) ? "text/javascript" : "image/png", type);
            var hashed = System.Text.RegularExpressions.Regex.IsMatch(link, @"\.[0-9a-f]{8}\.(js|css)$");
            Assert.Equal(hashed ? "public, max-age=31536000, immutable" : "no-cache", asset.Headers.CacheControl!.ToString());
        }

        // the fonts the stylesheets name are there too
        var mdi = await gw.Http.GetStringAsync("/admin-ui/vendor/mdi/css/materialdesignicons.min.css");
        Assert.Contains("../fonts/materialdesignicons-webfont.woff2?v=", mdi, StringComparison.Ordinal);
        using (var font = await gw.SendAsync(HttpMethod.Get, "/admin-ui/vendor/mdi/fonts/materialdesignicons-webfont.woff2?v=7.4.47", key: null))
            Assert.Equal("font/woff2", font.Content.Headers.ContentType!.MediaType);
        var roboto = await gw.Http.GetStringAsync("/admin-ui/vendor/roboto/400.css");
        foreach (var url in System.Text.RegularExpressions.Regex.Matches(roboto, @"url\(\./(files/[^)]+\.woff2)\)").Select(m => m.Groups[1].Value))
        {
            using var font = await gw.SendAsync(HttpMethod.Get, "/admin-ui/vendor/roboto/" + url, key: null);
            Assert.True(font.StatusCode == HttpStatusCode.OK, url);
        }
    }

    [Fact]
    public async Task The_global_key_logs_in_and_anything_else_is_refused()
    {
        await using var gw = await TestGateway.StartAsync(On);
        var token = await gw.CreateInstanceAsync("sales");
        foreach (var wrong in new[] { "wrong", token, "" })
        {
            using var refused = NewClient(gw, "/admin", new { username = "admin", password = wrong });
            var error = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            refused.OnError += (_, message) => error.TrySetResult(message);
            _ = refused.ConnectAsync();
            Assert.Contains("invalid credentials", await error.Task.WaitAsync(Timeout), StringComparison.Ordinal);
        }

        using var client = NewClient(gw, "/sales", new { apikey = token });
        var connected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.OnConnected += (_, _) => connected.TrySetResult();
        await client.ConnectAsync().WaitAsync(Timeout);
        await connected.Task.WaitAsync(Timeout);

        using var admin = NewClient(gw, "/admin", new { username = "anyone", password = TestGateway.Key });
        var all = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        var stats = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        admin.On("all_sockets", r => all.TrySetResult(r.GetValue<JsonElement>(0)));
        admin.On("server_stats", r => stats.TrySetResult(r.GetValue<JsonElement>(0)));
        await admin.ConnectAsync().WaitAsync(Timeout);
        var sockets = await all.Task.WaitAsync(Timeout);
        Assert.Contains(sockets.EnumerateArray(), s => s.GetProperty("nsp").GetString() == "/sales" && s.GetProperty("id").GetString() == client.Id);
        var serverId = (await stats.Task.WaitAsync(Timeout)).GetProperty("serverId").GetString();
        Assert.False(string.IsNullOrEmpty(serverId));

        var gone = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.OnDisconnected += (_, reason) => gone.TrySetResult(reason);
        await admin.EmitAsync("_disconnect", "/sales", false, client.Id);
        Assert.Equal("io server disconnect", await gone.Task.WaitAsync(Timeout));
    }

    [Fact]
    public async Task While_on_the_instance_admin_is_refused_and_gets_no_fanout()
    {
        var dir = Path.Combine(Path.GetTempPath(), "gw-tests-" + Guid.NewGuid().ToString("N"));
        string salesToken;
        // made while the Admin UI was off (stopped, not disposed: disposing deletes the folder)
        var off = await TestGateway.StartAsync(dir: dir);
        await off.CreateInstanceAsync("admin");
        salesToken = await off.CreateInstanceAsync("sales");
        await off.StopAsync();

        await using var gw = await TestGateway.StartAsync(On, dir);
        using var created = await gw.SendAsync(HttpMethod.Post, "/instance/create", """{"instanceName":"admin"}""");
        Assert.Equal(HttpStatusCode.BadRequest, created.StatusCode);
        Assert.Contains("ADMIN_UI_ENABLED", await created.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // the instance made before: its events never reach the admin namespace
        using var admin = NewClient(gw, "/admin", new { username = "a", password = TestGateway.Key });
        var adminEvents = new List<string>();
        admin.OnAny((name, _) => { lock (adminEvents) adminEvents.Add(name); });
        var config = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        admin.On("config", _ => config.TrySetResult());
        await admin.ConnectAsync().WaitAsync(Timeout);
        await config.Task.WaitAsync(Timeout);
        using var sales = NewClient(gw, "/sales", new { apikey = salesToken });
        var salesEvent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        sales.On("connection.update", _ => salesEvent.TrySetResult());
        var salesConnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        sales.OnConnected += (_, _) => salesConnected.TrySetResult();
        sales.OnError += (_, message) => salesConnected.TrySetException(new InvalidOperationException("sales refused: " + message));
        await sales.ConnectAsync().WaitAsync(Timeout);
        await salesConnected.Task.WaitAsync(Timeout);
        await gw.SetSettingsAsync("admin", true, "CONNECTION_UPDATE");
        await gw.SetSettingsAsync("sales", true, "CONNECTION_UPDATE");
        // one batch, fanned out in order: once sales has its event, admin's was handled
        await gw.IngestAsync($"[{TestGateway.Event("connection.update", "admin", """{"state":"open"}""")},{TestGateway.Event("connection.update", "sales", """{"state":"open"}""")}]");
        await salesEvent.Task.WaitAsync(Timeout);
        lock (adminEvents)
            Assert.DoesNotContain("connection.update", adminEvents);
    }

    [Fact]
    public void Settings_are_validated()
    {
        var error = Assert.Throws<GatewayConfigurationException>(() => GatewayApp.Build([], new Dictionary<string, string?>
        {
            ["ADMIN_UI_ENABLED"] = "true", ["WEBSOCKET_ENABLED"] = "false", ["AUTHENTICATION_API_KEY"] = "k",
        }, hermetic: true));
        Assert.Contains("ADMIN_UI_ENABLED", error.Message, StringComparison.Ordinal);
        var mode = Assert.Throws<GatewayConfigurationException>(() => GatewayApp.Build([], new Dictionary<string, string?>
        {
            ["ADMIN_UI_MODE"] = "verbose", ["AUTHENTICATION_API_KEY"] = "k",
        }, hermetic: true));
        Assert.Contains("ADMIN_UI_MODE", mode.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Readonly_and_production_mode_reach_the_ui()
    {
        await using var gw = await TestGateway.StartAsync(new() { ["ADMIN_UI_ENABLED"] = "true", ["ADMIN_UI_READONLY"] = "true", ["ADMIN_UI_MODE"] = "production" });
        using var admin = NewClient(gw, "/admin", new { username = "a", password = TestGateway.Key });
        var config = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        admin.On("config", r => config.TrySetResult(r.GetValue<JsonElement>(0)));
        await admin.ConnectAsync().WaitAsync(Timeout);
        Assert.Equal("[\"AGGREGATED_EVENTS\"]", (await config.Task.WaitAsync(Timeout)).GetProperty("supportedFeatures").GetRawText());
    }
}

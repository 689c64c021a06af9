using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Evolution.Events.Gateway.Tests;

/// <summary>
/// What a new user meets first: the start-up block, where it listens (SERVER_HOST, ASPNETCORE_URLS) and where the
/// database goes (through the real program), the JSON shape of early refusals, the OpenAPI document and API page.
/// </summary>
public class FirstRunTests
{
    private static async Task<List<string>> WaitForBlockAsync(GatewayProcess gateway)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            var lines = gateway.StdoutLines();
            var start = lines.FindIndex(l => l == "Evolution Events gateway is running");
            if (start >= 0 && lines.Skip(start).Any(l => l.StartsWith("  websocket", StringComparison.Ordinal)))
                return lines[start..];
            await Task.Delay(100);
        }
        Assert.Fail($"no start-up block: {string.Join("\n", gateway.StdoutLines())}\n{gateway.Stderr()}");
        return [];
    }

    private static string Line(List<string> block, string label) =>
        block.FirstOrDefault(l => l.StartsWith("  " + label, StringComparison.Ordinal))?[("  " + label).Length..].Trim()
        ?? throw new Xunit.Sdk.XunitException($"no '{label}' line: {string.Join("\n", block)}");

    private static async Task<bool> AcceptsOnAsync(IPAddress address, int port)
    {
        using var client = new TcpClient();
        try
        {
            await client.ConnectAsync(address, port).WaitAsync(TimeSpan.FromSeconds(5));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    [Fact]
    public async Task StartupBlock_DefaultDatabaseUnderTheWorkingDirectory_GeneratedKey_OptionalParts()
    {
        using var http = new HttpClient();
        await using var gateway = GatewayProcess.Start(new()
        {
            ["AUTHENTICATION_API_KEY"] = "", // unset: generated
            ["DATABASE_PATH"] = "", // unset: ./data/gateway.db
            ["INBOUND_WEBHOOK_URL"] = "http://127.0.0.1:9/inbound?secret=1",
        }, readStdout: true);
        await gateway.WaitReadyAsync(http);
        var block = await WaitForBlockAsync(gateway);
        var port = gateway.BaseUri.Port;

        Assert.Equal($"http://[::]:{port}", Line(block, "listening on"));
        Assert.Equal($"http://localhost:{port}/", Line(block, "dashboard"));
        Assert.StartsWith($"http://localhost:{port}/api ", Line(block, "API reference"), StringComparison.Ordinal);
        var database = Path.Combine(gateway.Directory, "data", "gateway.db");
        Assert.Equal($"{database} (SQLite, DATABASE_PATH)", Line(block, "database"));
        Assert.True(File.Exists(database), database);
        var key = Line(block, "global key").Split(' ')[0];
        Assert.Matches("^[0-9a-f]{48}$", key);
        Assert.Contains("GENERATED", Line(block, "global key"), StringComparison.Ordinal);
        Assert.StartsWith("off", Line(block, "Redis"), StringComparison.Ordinal);
        Assert.StartsWith("off", Line(block, "RabbitMQ"), StringComparison.Ordinal);
        Assert.Equal("on: client emits POSTed to http://127.0.0.1:9/inbound", Line(block, "relay")); // no query: it may hold a secret
        Assert.StartsWith("on", Line(block, "websocket"), StringComparison.Ordinal);

        // the printed key is the key
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(gateway.BaseUri, "/instance/fetchInstances"));
        request.Headers.Add("apikey", key);
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Demo_PrintsTheBlockThenEndsWithTheDashboardUrl_WhichShowsALiveQr()
    {
        using var http = new HttpClient();
        await using var gateway = GatewayProcess.Start(new() { ["AUTHENTICATION_API_KEY"] = "" }, readStdout: true, "demo");
        await gateway.WaitReadyAsync(http);
        var block = await WaitForBlockAsync(gateway);
        var key = Line(block, "global key").Split(' ')[0];
        string? url = null;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (url is null && DateTime.UtcNow < deadline)
        {
            var lines = gateway.StdoutLines();
            var demo = lines.FindIndex(l => l.StartsWith("Demo: producing events", StringComparison.Ordinal));
            // the demo's lines come after the start-up block, and the first of them is the dashboard URL
            if (demo >= 0 && demo + 1 < lines.Count)
            {
                Assert.True(demo > lines.IndexOf("Evolution Events gateway is running"), string.Join("\n", lines));
                url = lines[demo + 1].Trim();
            }
            else
                await Task.Delay(100);
        }
        Assert.Equal($"http://localhost:{gateway.BaseUri.Port}/#instance=demo&apikey={key}", url);

        // the page answers, and what it subscribes to (instance demo with that key) gets a QR code
        using var page = await http.GetAsync(gateway.BaseUri);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        using var ws = new System.Net.WebSockets.ClientWebSocket();
        await ws.ConnectAsync(new Uri($"ws://{gateway.BaseUri.Authority}/ws/events?instance=demo&apikey={key}"), CancellationToken.None);
        while (true)
        {
            var envelope = await TestGateway.ReceiveJsonAsync(ws);
            if ((string?)envelope["event"] != "qrcode.updated")
                continue;
            Assert.StartsWith("data:image/png;base64,", (string?)envelope["data"]!["qrcode"]!["base64"], StringComparison.Ordinal);
            break;
        }
    }

    [Fact]
    public async Task StartupBlock_ConfiguredKeyIsNotPrinted()
    {
        using var http = new HttpClient();
        await using var gateway = GatewayProcess.Start(new() { ["WEBSOCKET_ALLOWED_HOSTS"] = "127.0.0.1" }, readStdout: true);
        await gateway.WaitReadyAsync(http);
        var block = await WaitForBlockAsync(gateway);
        Assert.Equal("from AUTHENTICATION_API_KEY", Line(block, "global key"));
        Assert.DoesNotContain(gateway.StdoutLines(), l => l.Contains(TestGateway.Key, StringComparison.Ordinal));
        Assert.Equal(Path.Combine(gateway.Directory, "gateway.db") + " (SQLite, DATABASE_PATH)", Line(block, "database"));
        Assert.StartsWith("127.0.0.1/32", Line(block, "keyless hosts"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("SERVER_HOST", "127.0.0.1")]
    [InlineData("ASPNETCORE_URLS", "http://127.0.0.1:{port}")]
    public async Task ListensOnLoopbackOnly_WhenAsked(string variable, string value)
    {
        using var http = new HttpClient();
        // 127.0.0.2 is this host too (all of 127/8 is loopback), but not the address the server was told to use
        await using (var everywhere = GatewayProcess.Start([], readStdout: true))
        {
            await everywhere.WaitReadyAsync(http);
            Assert.True(await AcceptsOnAsync(IPAddress.Parse("127.0.0.2"), everywhere.BaseUri.Port), "the default listens on every interface");
        }
        await using var gateway = GatewayProcess.Start(new() { [variable] = value }, readStdout: true);
        await gateway.WaitReadyAsync(http);
        var block = await WaitForBlockAsync(gateway);
        Assert.Equal($"http://127.0.0.1:{gateway.BaseUri.Port}", Line(block, "listening on"));
        Assert.Equal($"http://127.0.0.1:{gateway.BaseUri.Port}/", Line(block, "dashboard"));
        Assert.False(await AcceptsOnAsync(IPAddress.Parse("127.0.0.2"), gateway.BaseUri.Port));
    }

    [Fact]
    public async Task AnInvalidServerHostStopsStartUpNamingIt()
    {
        await using var gateway = GatewayProcess.Start(new() { ["SERVER_HOST"] = "not a host" }, readStdout: true);
        Assert.Equal(2, await gateway.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("Invalid configuration: SERVER_HOST", gateway.Stderr(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("text/plain", 415, "content-type: must be application/json (got 'text/plain')")]
    [InlineData("application/x-www-form-urlencoded", 415, "content-type: must be application/json")]
    [InlineData(null, 401, "Invalid or missing API key")] // no content type: let through, then refused by auth
    public async Task WrongContentType_Gets415WithTheJsonErrorShape_BeforeAuth(string? contentType, int status, string message)
    {
        await using var gw = await TestGateway.StartAsync();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/instance/create")
        {
            Content = new ByteArrayContent(Encoding.UTF8.GetBytes("""{"instanceName":"sales"}""")),
        };
        if (contentType is not null)
            request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        using var response = await gw.Http.SendAsync(request);
        Assert.StartsWith("application/json", response.Content.Headers.ContentType?.ToString(), StringComparison.Ordinal);
        await TestGateway.AssertErrorAsync(response, status, message);
    }

    [Fact]
    public async Task UnknownRouteAndWrongMethod_GetTheJsonErrorShape()
    {
        await using var gw = await TestGateway.StartAsync();
        await TestGateway.AssertErrorAsync(await gw.SendAsync(HttpMethod.Get, "/no/such/thing"), 404, "GET /no/such/thing");
        await TestGateway.AssertErrorAsync(await gw.SendAsync(HttpMethod.Get, "/instance/create"), 405);
    }

    [Fact]
    public async Task OpenApiListsTheHealthEndpoints_AndTheApiPageAnswers()
    {
        await using var gw = await TestGateway.StartAsync();
        using var document = await gw.Http.GetAsync("/openapi/v1.json");
        Assert.Equal(HttpStatusCode.OK, document.StatusCode);
        var paths = (await TestGateway.ReadJsonAsync(document))!["paths"]!.AsObject();
        foreach (var path in new[] { "/health/live", "/health/ready", "/instance/{instanceName}/token/rotate", "/webhook" })
            Assert.True(paths.ContainsKey(path), $"{path} missing from {string.Join(", ", paths.Select(p => p.Key))}");
        Assert.NotNull(paths["/health/ready"]!["get"]!["responses"]!["503"]);

        // the health answers kept their shape
        using var ready = await gw.Http.GetAsync("/health/ready");
        var body = (await TestGateway.ReadJsonAsync(ready))!.AsObject();
        Assert.Equal("Healthy", (string?)body["status"]);
        Assert.True((bool)body["websocket"]!["enabled"]!);
        Assert.Equal("Healthy", (string?)body["checks"]!["store"]!["status"]);

        // the API page, and the script it loads, come from this server (no CDN)
        using var page = await gw.Http.GetAsync("/api");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("openapi/v1.json", html, StringComparison.Ordinal);
        Assert.Contains("\"telemetry\":false", html, StringComparison.Ordinal); // the page calls no third party
        Assert.Contains("\"agent\":{\"disabled\":true}", html, StringComparison.Ordinal);
        var scripts = System.Text.RegularExpressions.Regex.Matches(html, "<script[^>]+src=\"([^\"]+)\"").Select(m => m.Groups[1].Value).ToList();
        Assert.NotEmpty(scripts);
        foreach (var script in scripts)
        {
            Assert.False(script.StartsWith("http", StringComparison.Ordinal), script);
            using var js = await gw.Http.GetAsync(new Uri(page.RequestMessage!.RequestUri!, script));
            Assert.Equal(HttpStatusCode.OK, js.StatusCode);
        }
    }
}

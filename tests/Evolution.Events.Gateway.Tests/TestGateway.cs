using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Data.Sqlite;

namespace Evolution.Events.Gateway.Tests;

/// <summary>A real gateway on 127.0.0.1:0 with its own temp database, plus client helpers.</summary>
public sealed class TestGateway : IAsyncDisposable
{
    public const string Key = "test-global-key";
    private static readonly TimeSpan ReceiveTimeout = TimeSpan.FromSeconds(10);
    private bool _stopped;

    private readonly byte[]? _pinned;

    private TestGateway(WebApplication app, string dir, byte[]? pinned = null)
    {
        App = app;
        Dir = dir;
        BaseUri = GatewayApp.BoundAddress(app);
        // over https (a test's own self-signed certificate), the clients trust exactly that certificate
        _pinned = pinned;
        Http = IsTls
            ? new HttpClient(new SocketsHttpHandler { SslOptions = { RemoteCertificateValidationCallback = IsPinned } })
            {
                BaseAddress = BaseUri, Timeout = TimeSpan.FromSeconds(20),
            }
            : new HttpClient { BaseAddress = BaseUri, Timeout = TimeSpan.FromSeconds(20) };
    }

    public WebApplication App { get; }

    public string Dir { get; }

    public Uri BaseUri { get; }

    public HttpClient Http { get; }

    /// <summary>Whether the gateway listens on https (Kestrel terminating TLS).</summary>
    public bool IsTls => BaseUri.Scheme == Uri.UriSchemeHttps;

    /// <summary>Accepts the server's certificate when it is the one in the test's <c>Kestrel:Certificates:Default</c> file.</summary>
    public bool IsPinned(object sender, System.Security.Cryptography.X509Certificates.X509Certificate? certificate,
        System.Security.Cryptography.X509Certificates.X509Chain? chain, System.Net.Security.SslPolicyErrors errors) =>
        _pinned is not null && certificate is not null && certificate.GetRawCertData().AsSpan().SequenceEqual(_pinned);

    public static async Task<TestGateway> StartAsync(Dictionary<string, string?>? overrides = null, string? dir = null,
        Serilog.Core.ILogEventSink? logs = null)
    {
        dir ??= Path.Combine(Path.GetTempPath(), "gw-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var settings = new Dictionary<string, string?>
        {
            ["urls"] = "http://127.0.0.1:0",
            ["DATABASE_PATH"] = Path.Combine(dir, "gateway.db"),
            ["AUTHENTICATION_API_KEY"] = Key,
            ["LOG_LEVEL"] = "Warning",
        };
        foreach (var (k, v) in overrides ?? [])
            settings[k] = v;
        var app = GatewayApp.Build([], settings, hermetic: true, alsoLogTo: logs);
        await app.StartAsync();
        byte[]? pinned = null;
        if (settings.TryGetValue("Kestrel:Certificates:Default:Path", out var pfx) && pfx is not null)
        {
            using var certificate = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12FromFile(
                pfx, settings.GetValueOrDefault("Kestrel:Certificates:Default:Password"));
            pinned = certificate.RawData;
        }

        return new TestGateway(app, dir, pinned);
    }

    public async Task StopAsync()
    {
        if (_stopped)
            return;
        _stopped = true;
        Http.Dispose();
        var options = App.Services.GetService(typeof(Options.GatewayOptions)) as Options.GatewayOptions;
        await App.StopAsync();
        await App.DisposeAsync();
        ClearPool(options?.DatabaseConnectionString);
    }

    /// <summary>
    /// Closes the pooled connections of this gateway's database only (so that its directory can be deleted), never
    /// the process-wide pools: tests running in parallel keep theirs.
    /// </summary>
    public static void ClearPool(string? connectionString)
    {
        if (string.IsNullOrEmpty(connectionString))
            return;
        using var connection = new SqliteConnection(connectionString);
        SqliteConnection.ClearPool(connection);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        try
        {
            Directory.Delete(Dir, true);
        }
        catch (IOException)
        {
        }
    }

    public Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? json = null, string? key = Key)
    {
        var request = new HttpRequestMessage(method, path);
        if (json is not null)
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        if (key is not null)
            request.Headers.Add("apikey", key);
        return Http.SendAsync(request);
    }

    public Task<HttpResponseMessage> PostAsync(string path, string json, string? key = Key) =>
        SendAsync(HttpMethod.Post, path, json, key);

    /// <summary>Creates an instance with the global key and returns its token.</summary>
    public async Task<string> CreateInstanceAsync(string name, string? token = null)
    {
        var body = token is null ? $$"""{"instanceName":"{{name}}"}""" : $$"""{"instanceName":"{{name}}","token":"{{token}}"}""";
        using var response = await PostAsync("/instance/create", body);
        Assert.Equal(201, (int)response.StatusCode);
        return (await ReadJsonAsync(response))!["token"]!.GetValue<string>();
    }

    public async Task SetSettingsAsync(string name, bool enabled, params string[] events)
    {
        var json = JsonSerializer.Serialize(new { websocket = new { enabled, events } });
        using var response = await PostAsync($"/websocket/set/{name}", json);
        Assert.Equal(201, (int)response.StatusCode);
    }

    /// <summary>Ingests events with the global key and asserts 202.</summary>
    public async Task IngestAsync(string json, string path = "/webhook")
    {
        using var response = await PostAsync(path, json);
        Assert.Equal(202, (int)response.StatusCode);
    }

    /// <summary>GET /metrics with the global key as a Prometheus scrape sends it (Authorization: Bearer).</summary>
    public async Task<string> MetricsAsync()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Key);
        using var response = await Http.SendAsync(request);
        Assert.Equal(200, (int)response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    public static string Event(string eventName, string instance, string data = "{}") =>
        $$"""{"event":"{{eventName}}","instance":"{{instance}}","data":{{data}}}""";

    public Uri WsUri(string pathAndQuery) => new($"{(IsTls ? "wss" : "ws")}://{BaseUri.Authority}{pathAndQuery}");

    public async Task<ClientWebSocket> ConnectAsync(string pathAndQuery)
    {
        var ws = new ClientWebSocket();
        if (IsTls)
            ws.Options.RemoteCertificateValidationCallback = IsPinned;
        using var timeout = new CancellationTokenSource(ReceiveTimeout);
        await ws.ConnectAsync(WsUri(pathAndQuery), timeout.Token);
        return ws;
    }

    /// <summary>An upgrade request sent with HttpClient, to read the status and JSON body of a refusal.</summary>
    public Task<HttpResponseMessage> RawUpgradeAsync(string pathAndQuery, string? forwardedFor = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, pathAndQuery);
        request.Headers.Connection.Add("Upgrade");
        request.Headers.Upgrade.Add(new ProductHeaderValue("websocket"));
        request.Headers.Add("Sec-WebSocket-Version", "13");
        request.Headers.Add("Sec-WebSocket-Key", Convert.ToBase64String(Guid.NewGuid().ToByteArray()));
        if (forwardedFor is not null)
            request.Headers.Add("X-Forwarded-For", forwardedFor);
        return Http.SendAsync(request);
    }

    /// <summary>Receives one text message as JSON; fails the test after 10 s.</summary>
    public static async Task<JsonObject> ReceiveJsonAsync(ClientWebSocket ws)
    {
        var text = await ReceiveTextAsync(ws);
        Assert.NotNull(text);
        return JsonNode.Parse(text)!.AsObject();
    }

    /// <summary>Receives one text message; null when the server closed the connection.</summary>
    public static async Task<string?> ReceiveTextAsync(ClientWebSocket ws)
    {
        using var timeout = new CancellationTokenSource(ReceiveTimeout);
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        while (true)
        {
            var result = await ws.ReceiveAsync(buffer, timeout.Token);
            if (result.MessageType == WebSocketMessageType.Close)
                return null;
            message.Write(buffer, 0, result.Count);
            if (result.EndOfMessage)
                return Encoding.UTF8.GetString(message.ToArray());
        }
    }

    public static async Task<JsonNode?> ReadJsonAsync(HttpResponseMessage response) =>
        JsonNode.Parse(await response.Content.ReadAsStringAsync());

    /// <summary>Asserts the error shape and that some message contains <paramref name="fragment"/>.</summary>
    /// <summary>The response is exactly the JSON error <c>{ status, error: reasonPhrase, messages: [message] }</c>.</summary>
    public static async Task AssertExactErrorAsync(HttpResponseMessage response, int status, string reasonPhrase, string message)
    {
        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var body = (await ReadJsonAsync(response))!.AsObject();
        Assert.Equal(["error", "messages", "status"], body.Select(p => p.Key).Order(StringComparer.Ordinal));
        Assert.Equal(status, body["status"]!.GetValue<int>());
        Assert.Equal(reasonPhrase, body["error"]!.GetValue<string>());
        Assert.Equal([message], body["messages"]!.AsArray().Select(m => m!.GetValue<string>()));
    }

    public static async Task AssertErrorAsync(HttpResponseMessage response, int status, string fragment = "")
    {
        Assert.Equal(status, (int)response.StatusCode);
        var body = (await ReadJsonAsync(response))!.AsObject();
        Assert.Equal(status, body["status"]!.GetValue<int>());
        Assert.False(string.IsNullOrEmpty(body["error"]!.GetValue<string>()));
        var messages = body["messages"]!.AsArray().Select(m => m!.GetValue<string>()).ToList();
        Assert.NotEmpty(messages);
        Assert.True(messages.Any(m => m.Contains(fragment, StringComparison.Ordinal)),
            $"no message contains '{fragment}': {string.Join(" | ", messages)}");
    }
}

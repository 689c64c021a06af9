using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using Evolution.Events.Gateway;
using Microsoft.AspNetCore.Builder;
using Microsoft.Data.Sqlite;
using QRCoder;

namespace Evolution.Events.BrowserTests;

/// <summary>The real gateway in-process on 127.0.0.1:0 with a temporary database.</summary>
public sealed class GatewayHost : IAsyncDisposable
{
    public const string Key = "browser-test-key";
    private readonly string _dir;

    private GatewayHost(WebApplication app, string dir, X509Certificate2? certificate)
    {
        App = app;
        _dir = dir;
        BaseUri = GatewayApp.BoundAddress(app);
        // over TLS the test's own client trusts exactly the test's certificate, nothing else
        var handler = new HttpClientHandler();
        if (certificate is not null)
            handler.ServerCertificateCustomValidationCallback = (_, presented, _, _) => presented?.Thumbprint == certificate.Thumbprint;
        Http = new HttpClient(handler) { BaseAddress = BaseUri, Timeout = TimeSpan.FromSeconds(20) };
        Http.DefaultRequestHeaders.Add("apikey", Key);
    }

    public WebApplication App { get; }

    public Uri BaseUri { get; }

    public HttpClient Http { get; }

    /// <summary>Starts the gateway; with <paramref name="certificate"/> it listens on <c>https://127.0.0.1:0</c> (Kestrel's default certificate).</summary>
    public static async Task<GatewayHost> StartAsync(IReadOnlyDictionary<string, string?>? settings = null, X509Certificate2? certificate = null)
    {
        var dir = Path.Combine(Path.GetTempPath(), "gw-browser-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var config = new Dictionary<string, string?>
        {
            ["urls"] = certificate is null ? "http://127.0.0.1:0" : "https://127.0.0.1:0",
            ["DATABASE_PATH"] = Path.Combine(dir, "gateway.db"),
            ["AUTHENTICATION_API_KEY"] = Key,
            ["LOG_LEVEL"] = "Warning",
        };
        if (certificate is not null)
        {
            var pfx = Path.Combine(dir, "gateway.pfx");
            await File.WriteAllBytesAsync(pfx, certificate.Export(X509ContentType.Pfx, "test"));
            config["Kestrel:Certificates:Default:Path"] = pfx;
            config["Kestrel:Certificates:Default:Password"] = "test";
        }
        foreach (var (name, value) in settings ?? new Dictionary<string, string?>())
        {
            config[name] = value;
        }

        var app = GatewayApp.Build([], config, hermetic: true);
        using (var start = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
            await app.StartAsync(start.Token); // a start that hangs fails after 60 s instead of holding the run
        return new GatewayHost(app, dir, certificate);
    }

    /// <summary>Creates an instance and returns its token.</summary>
    public async Task<string> CreateInstanceAsync(string name)
    {
        using var response = await PostJsonAsync("/instance/create", new JsonObject { ["instanceName"] = name });
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!["token"]!.GetValue<string>();
    }

    /// <summary>Ingests one event with the global key; asserts 202.</summary>
    public async Task IngestAsync(string eventName, string instance, JsonObject data)
    {
        using var response = await PostJsonAsync("/webhook", new JsonObject
        {
            ["event"] = eventName,
            ["instance"] = instance,
            ["data"] = data,
            ["date_time"] = DateTimeOffset.UtcNow.ToString("O"),
            ["sender"] = "5511912345678@s.whatsapp.net",
        });
        Assert.Equal(202, (int)response.StatusCode);
    }

    public async Task<string> MetricsAsync() => await Http.GetStringAsync(new Uri("/metrics", UriKind.Relative));

    /// <summary>A self-signed certificate for <c>127.0.0.1</c> (a page that names <c>wss://</c> needs a TLS gateway).</summary>
    public static X509Certificate2 LoopbackCertificate()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pfx, "test"), "test", X509KeyStorageFlags.Exportable);
    }

    /// <summary>A real QR code PNG (base64, no data-URL prefix) of <paramref name="text"/>.</summary>
    public static string QrPngBase64(string text)
    {
        using var generator = new QRCodeGenerator();
        using var data = generator.CreateQrCode(text, QRCodeGenerator.ECCLevel.M);
        return Convert.ToBase64String(new PngByteQRCode(data).GetGraphic(5));
    }

    private async Task<HttpResponseMessage> PostJsonAsync(string path, JsonObject body)
    {
        var response = await Http.PostAsync(new Uri(path, UriKind.Relative),
            new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        Assert.True(response.IsSuccessStatusCode, $"{path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        return response;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        var options = App.Services.GetService(typeof(Evolution.Events.Gateway.Options.GatewayOptions)) as Evolution.Events.Gateway.Options.GatewayOptions;
        using (var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
            await App.StopAsync(stop.Token); // connections still open after 30 s are aborted
        await App.DisposeAsync();
        // only this gateway's pool (so that its directory can be deleted), not the other tests' pools
        if (!string.IsNullOrEmpty(options?.DatabaseConnectionString))
        {
            using var connection = new SqliteConnection(options.DatabaseConnectionString);
            SqliteConnection.ClearPool(connection);
        }
        try
        {
            Directory.Delete(_dir, true);
        }
        catch (IOException)
        {
        }
    }
}

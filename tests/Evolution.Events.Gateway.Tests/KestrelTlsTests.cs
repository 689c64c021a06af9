using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Evolution.Events.EngineIO.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace Evolution.Events.Gateway.Tests;

/// <summary>
/// TLS terminated by Kestrel itself (an https URL and ASP.NET Core's <c>Kestrel:Certificates:Default</c> settings), with
/// <c>WEBSOCKET_RAW_UPGRADE</c> on: the raw-connection middleware sees encrypted bytes and hands them to Kestrel
/// untouched, so upgrades take the HTTP path, as docs/configuration.md says, with every check of that path.
/// </summary>
public class KestrelTlsTests
{
    [Fact]
    public async Task UpgradesOverKestrelTlsWorkTakeTheHttpPathAndAreCheckedThere()
    {
        var dir = Path.Combine(Path.GetTempPath(), "gw-tls-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var pfx = Path.Combine(dir, "gateway.pfx");
        using (var rsa = RSA.Create(2048))
        {
            var request = new CertificateRequest("CN=127.0.0.1", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            var names = new SubjectAlternativeNameBuilder();
            names.AddIpAddress(System.Net.IPAddress.Loopback);
            request.CertificateExtensions.Add(names.Build());
            using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
            await File.WriteAllBytesAsync(pfx, certificate.Export(X509ContentType.Pfx, "test"));
        }

        await using var gw = await TestGateway.StartAsync(new Dictionary<string, string?>
        {
            ["urls"] = "https://127.0.0.1:0",
            ["Kestrel:Certificates:Default:Path"] = pfx,
            ["Kestrel:Certificates:Default:Password"] = "test",
            ["WEBSOCKET_RAW_UPGRADE"] = "true",
        }, dir);
        Assert.True(gw.IsTls);
        var dispatcher = gw.App.Services.GetRequiredService<RawUpgradeDispatcher>();
        var sales = await gw.CreateInstanceAsync("sales");

        // plain WebSocket and Engine.IO over wss, served
        using var plain = await gw.ConnectAsync($"/ws/events?token={sales}");
        using var engine = await gw.ConnectAsync("/socket.io/?EIO=4&transport=websocket");
        Assert.StartsWith("0{", await TestGateway.ReceiveTextAsync(engine), StringComparison.Ordinal);
        await gw.IngestAsync(TestGateway.Event("call", "sales"));
        Assert.Equal("call", (await TestGateway.ReceiveJsonAsync(plain))["event"]!.GetValue<string>());

        // a wrong token is refused there as on plain http, and counted
        using var refused = new ClientWebSocket();
        refused.Options.RemoteCertificateValidationCallback = gw.IsPinned;
        refused.Options.CollectHttpResponseDetails = true;
        await Assert.ThrowsAsync<WebSocketException>(() => refused.ConnectAsync(gw.WsUri("/ws/events?token=wrong"), CancellationToken.None));
        Assert.Equal(401, (int)refused.HttpStatusCode);
        var metrics = await gw.MetricsAsync();
        Assert.Contains("evolution_refusals_total{transport=\"http\",reason=\"401\"} 1", metrics, StringComparison.Ordinal);

        // none of it went the raw way: the middleware saw TLS records, not a request head
        Assert.Equal(0, dispatcher.Requests);
        Assert.Equal(0, dispatcher.Upgrades);
        Assert.Contains("evolution_websocket_raw_upgrades_total 0", metrics, StringComparison.Ordinal);
        await plain.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
    }
}

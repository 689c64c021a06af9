using System.Net.Http.Headers;

namespace Evolution.Events.Gateway.Tests;

/// <summary>/metrics names instances (the namespace label): a stranger without a key must not read it.</summary>
public class MetricsAuthTests
{
    [Fact]
    public async Task WithoutAKeyNoInstanceNameLeaks()
    {
        await using var gw = await TestGateway.StartAsync(new() { ["METRICS_API_KEY"] = "scrape-only" });
        await gw.CreateInstanceAsync("secret-sales");
        await using var client = await SocketIOEventTests.ConnectAsync(gw, "/secret-sales", SocketIOEventTests.Auth(TestGateway.Key), "websocket");
        Assert.Contains("namespace=\"/secret-sales\"", await gw.MetricsAsync(), StringComparison.Ordinal);

        foreach (var (scheme, key) in new (string?, string?)[] { (null, null), ("Bearer", "wrong"), (null, "wrong"), ("Basic", TestGateway.Key) })
        {
            using var response = await ScrapeAsync(gw, scheme, key);
            var body = await response.Content.ReadAsStringAsync();
            Assert.DoesNotContain("secret-sales", body, StringComparison.Ordinal);
            await TestGateway.AssertErrorAsync(response, 401, "METRICS_API_KEY");
        }

        // the global key (bearer or apikey header) and the scrape-only key read it
        foreach (var (scheme, key) in new (string?, string?)[] { ("Bearer", TestGateway.Key), (null, TestGateway.Key), ("Bearer", "scrape-only") })
        {
            using var response = await ScrapeAsync(gw, scheme, key);
            Assert.Equal(200, (int)response.StatusCode);
            Assert.Contains("namespace=\"/secret-sales\"", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // the scrape-only key opens nothing else
        using var list = await gw.SendAsync(HttpMethod.Get, "/instance/fetchInstances", key: "scrape-only");
        Assert.Equal(401, (int)list.StatusCode);
    }

    [Fact]
    public async Task MetricsPublicServesItToAnyone()
    {
        await using var gw = await TestGateway.StartAsync(new() { ["METRICS_PUBLIC"] = "true" });
        using var response = await ScrapeAsync(gw, null, null);
        Assert.Equal(200, (int)response.StatusCode);
        Assert.Contains("evolution_plain_websocket_connections", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    private static Task<HttpResponseMessage> ScrapeAsync(TestGateway gw, string? scheme, string? key)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        if (scheme is not null)
            request.Headers.Authorization = new AuthenticationHeaderValue(scheme, key);
        else if (key is not null)
            request.Headers.Add("apikey", key);
        return gw.Http.SendAsync(request);
    }
}

using Microsoft.Extensions.DependencyInjection;
using System.Globalization;
using System.Net;
using System.Net.WebSockets;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Evolution.Events.Gateway.Demo;

namespace Evolution.Events.Gateway.Tests;

/// <summary>Health, metrics, the dashboard's files and stats, the OpenAPI document, the demo producer's payloads.</summary>
public sealed class ObservabilityTests
{
    [Fact]
    public async Task Health_LiveAndReady_AreHealthy_AndReadySaysWebSocketEnabled()
    {
        await using var gw = await TestGateway.StartAsync();
        using var live = await gw.SendAsync(HttpMethod.Get, "/health/live", key: null);
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        using var ready = await gw.SendAsync(HttpMethod.Get, "/health/ready", key: null);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        var body = (await TestGateway.ReadJsonAsync(ready))!;
        Assert.Equal("Healthy", body["status"]!.GetValue<string>());
        Assert.True(body["websocket"]!["enabled"]!.GetValue<bool>());
        Assert.Equal("Healthy", body["checks"]!["store"]!["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task Health_Ready_SaysWebSocketDisabled()
    {
        await using var gw = await TestGateway.StartAsync(new() { ["WEBSOCKET_ENABLED"] = "false" });
        using var ready = await gw.SendAsync(HttpMethod.Get, "/health/ready", key: null);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.False((await TestGateway.ReadJsonAsync(ready))!["websocket"]!["enabled"]!.GetValue<bool>());
        Assert.Contains("evolution_plain_websocket_connections 0", await gw.MetricsAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Health_Ready_Is503_WhenTheStoreIsGone()
    {
        await using var gw = await TestGateway.StartAsync();
        var db = Path.Combine(gw.Dir, "gateway.db");
        TestGateway.ClearPool(gw.App.Services.GetRequiredService<Evolution.Events.Gateway.Options.GatewayOptions>().DatabaseConnectionString);
        foreach (var file in Directory.GetFiles(gw.Dir, "gateway.db*"))
            File.Delete(file);
        Directory.CreateDirectory(db); // a directory where the database file was: SQLite cannot open it
        using var ready = await gw.SendAsync(HttpMethod.Get, "/health/ready", key: null);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.Equal("Unhealthy", (await TestGateway.ReadJsonAsync(ready))!["checks"]!["store"]!["status"]!.GetValue<string>());
        using var live = await gw.SendAsync(HttpMethod.Get, "/health/live", key: null);
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
    }

    [Fact]
    public async Task Metrics_CountIngestionDeliveryRefusalsAndConnections()
    {
        await using var gw = await TestGateway.StartAsync();
        using var ws = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}&instance=sales");
        await gw.IngestAsync($"[{TestGateway.Event("MESSAGES_UPSERT", "sales")},{TestGateway.Event("messages.upsert", "sales")}]");
        await TestGateway.ReceiveJsonAsync(ws);
        await TestGateway.ReceiveJsonAsync(ws);
        using (var refused = await gw.PostAsync("/webhook", TestGateway.Event("call", "sales"), key: "wrong"))
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        using (var refused = await gw.RawUpgradeAsync("/ws/events?apikey=wrong"))
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);

        var metrics = await gw.MetricsAsync();
        Assert.Equal(2, Sample(metrics, "evolution_events_ingested_total", "event=\"messages.upsert\""));
        Assert.Equal(2, Sample(metrics, "evolution_events_delivered_total", "transport=\"websocket\",event=\"messages.upsert\""));
        Assert.Equal(2, Sample(metrics, "evolution_ingest_to_emit_seconds_count", "transport=\"websocket\""));
        Assert.Equal(2, Sample(metrics, "evolution_refusals_total", "transport=\"http\",reason=\"401\""));
        Assert.Equal(1, Sample(metrics, "evolution_plain_websocket_connections", null));
        Assert.Contains("evolution_socketio_connections{transport=\"websocket\"} 0", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Root_ServesTheDashboardToBrowsers_AndPlainWebSocketUpgradesStillWork()
    {
        await using var gw = await TestGateway.StartAsync();
        using var page = await gw.SendAsync(HttpMethod.Get, "/", key: null);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType!.MediaType);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("<script src=\"socket.io.min.js\"></script>", html, StringComparison.Ordinal);
        var bundle = await gw.Http.GetStringAsync("/socket.io.min.js");
        Assert.Contains("Socket.IO v4.8", bundle, StringComparison.Ordinal);
        Assert.Contains("\"use strict\"", await gw.Http.GetStringAsync("/dashboard.js"), StringComparison.Ordinal);

        using var ws = await gw.ConnectAsync($"/?apikey={TestGateway.Key}");
        await gw.IngestAsync(TestGateway.Event("connection.update", "sales", """{"state":"open"}"""));
        Assert.Equal("connection.update", (await TestGateway.ReceiveJsonAsync(ws))["event"]!.GetValue<string>());
        await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
    }

    [Fact]
    public async Task DashboardStats_GlobalKeyOnly_CountsSocketsAndEvents()
    {
        await using var gw = await TestGateway.StartAsync();
        var token = await gw.CreateInstanceAsync("sales");
        using (var none = await gw.SendAsync(HttpMethod.Get, "/dashboard/stats", key: null))
            await TestGateway.AssertErrorAsync(none, 401);
        using (var forbidden = await gw.SendAsync(HttpMethod.Get, "/dashboard/stats", key: token))
            await TestGateway.AssertErrorAsync(forbidden, 403);

        using var ws = await gw.ConnectAsync($"/ws/events?token={token}");
        await gw.IngestAsync(TestGateway.Event("presence.update", "sales"));
        await TestGateway.ReceiveJsonAsync(ws);
        using var ok = await gw.SendAsync(HttpMethod.Get, "/dashboard/stats");
        var stats = (await TestGateway.ReadJsonAsync(ok))!;
        Assert.Equal(1, stats["plainWebSockets"]!.GetValue<int>());
        var sales = stats["instances"]!.AsArray().Single(i => i!["instance"]!.GetValue<string>() == "sales")!;
        Assert.Equal(1, sales["plainWebSockets"]!.GetValue<int>());
        Assert.Equal(0, sales["socketIOSockets"]!.GetValue<int>());
        Assert.True(sales["eventsPerSecond"]!.GetValue<double>() > 0);
    }

    [Fact]
    public async Task OpenApi_DescribesTheRestAndIngestionApi()
    {
        await using var gw = await TestGateway.StartAsync();
        var doc = JsonNode.Parse(await gw.Http.GetStringAsync("/openapi/v1.json"))!;
        var paths = doc["paths"]!.AsObject();
        foreach (var path in new[] { "/instance/create", "/instance/fetchInstances", "/instance/delete/{instanceName}",
                     "/websocket/set/{instanceName}", "/websocket/find/{instanceName}", "/webhook", "/webhook/{eventName}",
                     "/dashboard/stats" })
            Assert.True(paths.ContainsKey(path), $"missing {path}");
        Assert.NotNull(doc["components"]!["securitySchemes"]!["apikey"]);
        Assert.NotNull(paths["/webhook"]!["post"]!["requestBody"]);
        Assert.NotNull(paths["/instance/create"]!["post"]!["requestBody"]);
    }

    [Fact]
    public async Task DemoPayloads_AreAcceptedByIngestion()
    {
        await using var gw = await TestGateway.StartAsync();
        var demo = new DemoEvents("demo", gw.BaseUri.ToString());
        var (id, from, video) = demo.NewCall();
        var batch = new JsonArray(demo.Connection("connecting"), demo.QrCode(1), demo.Connection("open"),
            demo.Message(fromMe: false), demo.Message(fromMe: true), demo.Presence(), demo.Call(id, from, "offer", video));
        using var ws = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}&instance=demo");
        await gw.IngestAsync(batch.ToJsonString());
        var qr = (await TestGateway.ReceiveJsonAsync(ws), await TestGateway.ReceiveJsonAsync(ws)).Item2;
        var base64 = qr["data"]!["qrcode"]!["base64"]!.GetValue<string>();
        Assert.StartsWith("data:image/png;base64,", base64, StringComparison.Ordinal);
        var png = Convert.FromBase64String(base64["data:image/png;base64,".Length..]);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]);
    }

    internal static double Sample(string metrics, string name, string? labels)
    {
        var series = labels is null ? name : name + "{" + labels + "}";
        var match = Regex.Match(metrics, "^" + Regex.Escape(series) + @" (\S+)$", RegexOptions.Multiline);
        Assert.True(match.Success, $"no sample {series} in:\n{metrics}");
        return double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
    }
}

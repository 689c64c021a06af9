using System.Text.Json.Nodes;
using Evolution.Events.Gateway.Fanout;
using Evolution.Events.Gateway.Relay;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Evolution.Events.Gateway.Tests;

public class RelayTests
{
    [Fact]
    public async Task WithoutUpstreamTheAnswerIsAnError()
    {
        await using var gw = await TestGateway.StartAsync();
        var relay = gw.App.Services.GetRequiredService<InboundRelay>();
        var answer = await relay.RelayAsync("sales", "send_message", new JsonObject { ["m"] = 1 }, "sid1", CancellationToken.None);
        Assert.Contains("INBOUND_WEBHOOK_URL", answer!["error"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task RelaysToTheUpstreamAndReturnsItsJson()
    {
        JsonNode? received = null;
        await using var upstream = await StartUpstreamAsync(async context =>
        {
            received = await JsonNode.ParseAsync(context.Request.Body);
            switch (context.Request.Path.Value)
            {
                case "/ok":
                    await context.Response.WriteAsJsonAsync(new { ok = true, echo = received!["data"] });
                    break;
                case "/fail":
                    context.Response.StatusCode = 500;
                    await context.Response.WriteAsync("boom");
                    break;
                default:
                    await context.Response.WriteAsync("plain text");
                    break;
            }
        });
        var baseUrl = GatewayApp.BoundAddress(upstream).ToString().TrimEnd('/');

        await using (var gw = await TestGateway.StartAsync(new() { ["INBOUND_WEBHOOK_URL"] = baseUrl + "/ok" }))
        {
            var relay = gw.App.Services.GetRequiredService<InboundRelay>();
            var answer = await relay.RelayAsync("sales", "send_message", new JsonObject { ["m"] = 1 }, "sid1", CancellationToken.None);
            Assert.True(answer!["ok"]!.GetValue<bool>());
            Assert.Equal(1, answer["echo"]!["m"]!.GetValue<int>());
            Assert.Equal(["data", "date_time", "event", "instance", "socket_id"], received!.AsObject().Select(p => p.Key).Order());
            Assert.Equal("send_message", received["event"]!.GetValue<string>());
            Assert.Equal("sales", received["instance"]!.GetValue<string>());
            Assert.Equal("sid1", received["socket_id"]!.GetValue<string>());
        }
        await using (var gw = await TestGateway.StartAsync(new() { ["INBOUND_WEBHOOK_URL"] = baseUrl + "/fail" }))
        {
            var answer = await gw.App.Services.GetRequiredService<InboundRelay>().RelayAsync("s", "e", null, "x", CancellationToken.None);
            Assert.Equal(500, answer!["status"]!.GetValue<int>());
            Assert.NotNull(answer["error"]);
        }
        await using (var gw = await TestGateway.StartAsync(new() { ["INBOUND_WEBHOOK_URL"] = baseUrl + "/text" }))
        {
            var answer = await gw.App.Services.GetRequiredService<InboundRelay>().RelayAsync("s", "e", null, "x", CancellationToken.None);
            Assert.Equal(200, answer!["status"]!.GetValue<int>());
            Assert.Contains("not JSON", answer["error"]!.GetValue<string>(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task UnreachableUpstreamIsAnError()
    {
        await using var gw = await TestGateway.StartAsync(new() { ["INBOUND_WEBHOOK_URL"] = "http://127.0.0.1:9/nothing" });
        var answer = await gw.App.Services.GetRequiredService<InboundRelay>().RelayAsync("s", "e", null, "x", CancellationToken.None);
        Assert.NotNull(answer!["error"]);
    }

    private static async Task<WebApplication> StartUpstreamAsync(RequestDelegate handler)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        app.Run(handler);
        await app.StartAsync();
        return app;
    }
}

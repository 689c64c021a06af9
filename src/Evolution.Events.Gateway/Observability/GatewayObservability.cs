using System.Text.Json;
using Evolution.Events.EngineIO;
using Evolution.Events.Gateway.Options;
using Evolution.Events.Gateway.PlainWebSockets;
using Evolution.Events.SocketIO;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Prometheus;

namespace Evolution.Events.Gateway.Observability;

/// <summary>
/// Health checks (<c>/health/live</c>, <c>/health/ready</c>) and Prometheus metrics (<c>/metrics</c>),
/// plus the hooks that feed the refusal and slow-consumer counters.
/// </summary>
public static class GatewayObservability
{
    private const string ReadyTag = "ready";

    public static IServiceCollection AddGatewayObservability(this IServiceCollection services, GatewayOptions options)
    {
        services.AddSingleton<GatewayMetrics>();
        services.AddHealthChecks()
            .AddCheck<StoreHealthCheck>("store", tags: [ReadyTag])
            .AddCheck("websocket", () => HealthCheckResult.Healthy(
                options.WebSocketEnabled ? "enabled" : "disabled (WEBSOCKET_ENABLED=false)",
                new Dictionary<string, object> { ["enabled"] = options.WebSocketEnabled }), tags: [ReadyTag]);
        return services;
    }

    /// <summary>First in the pipeline: counts HTTP refusals (401, 403, 429, 503) by status code.</summary>
    public static WebApplication UseGatewayRefusalMetrics(this WebApplication app)
    {
        var metrics = app.Services.GetRequiredService<GatewayMetrics>();
        app.Use(async (context, next) =>
        {
            await next(context);
            var status = context.Response.StatusCode;
            if (status is 401 or 403 or 429 or 503 && !context.Request.Path.StartsWithSegments("/health"))
                metrics.HttpRefused(status);
        });
        return app;
    }

    /// <summary>Maps <c>/health/live</c>, <c>/health/ready</c>, <c>/metrics</c> and hooks the servers' events.</summary>
    public static WebApplication MapGatewayObservability(this WebApplication app, GatewayOptions options)
    {
        var metrics = app.Services.GetRequiredService<GatewayMetrics>();
        var io = options.WebSocketEnabled ? app.Services.GetRequiredService<SocketIOServer>() : null;
        metrics.Gauges.Attach(io, app.Services.GetRequiredService<PlainWebSocketHub>());
        if (io is not null)
        {
            io.ConnectionRefused += (_, message) => metrics.SocketIORefused(message);
            io.Engine.SessionClosed += (_, reason) =>
            {
                if (reason == EngineCloseReason.SlowConsumer)
                    metrics.SlowConsumerDropped(GatewayMetrics.SocketIOTransport);
            };
        }

        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false, ResponseWriter = WriteAsync(options) })
            .WithTags("Operations").WithSummary("Liveness: the process serves HTTP (no dependency is checked).");
        app.MapHealthChecks("/health/ready", new HealthCheckOptions
        {
            Predicate = r => r.Tags.Contains(ReadyTag),
            ResponseWriter = WriteAsync(options),
        }).WithTags("Operations").WithSummary("Readiness: the instance store (SQLite, or Redis with REDIS_URI) answers; says whether WebSocket endpoints are enabled.");
        app.MapMetrics("/metrics", metrics.Registry).WithTags("Operations")
            .WithSummary("Prometheus metrics (text exposition format).");
        return app;
    }

    private static Func<HttpContext, HealthReport, Task> WriteAsync(GatewayOptions options) => (context, report) =>
    {
        context.Response.ContentType = "application/json; charset=utf-8";
        var body = new
        {
            status = report.Status.ToString(),
            websocket = new { enabled = options.WebSocketEnabled },
            checks = report.Entries.ToDictionary(e => e.Key, e => new
            {
                status = e.Value.Status.ToString(),
                description = e.Value.Description,
                durationMs = Math.Round(e.Value.Duration.TotalMilliseconds, 2),
            }),
        };
        return context.Response.WriteAsync(JsonSerializer.Serialize(body, Http.ApiError.Json));
    };
}

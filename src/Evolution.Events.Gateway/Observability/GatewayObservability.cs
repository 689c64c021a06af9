using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Evolution.Events.EngineIO;
using Evolution.Events.EngineIO.Hosting;
using Evolution.Events.Gateway.Auth;
using Evolution.Events.Gateway.Http;
using Evolution.Events.Gateway.Options;
using Evolution.Events.Gateway.PlainWebSockets;
using Evolution.Events.SocketIO;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Prometheus;

namespace Evolution.Events.Gateway.Observability;

/// <summary>
/// Health checks (<c>/health/live</c>, <c>/health/ready</c>) and Prometheus metrics (<c>/metrics</c>),
/// plus the hooks that feed the refusal and slow-consumer counters.
/// </summary>
public static class GatewayObservability
{
    /// <summary>The tag of the checks <c>/health/ready</c> runs.</summary>
    internal const string ReadyTag = "ready";

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
        metrics.Attach(app.Services.GetRequiredService<GatewayLog>());
        if (app.Services.GetService<RawUpgradeDispatcher>() is { } raw)
            metrics.Attach(raw);
        if (io is not null)
        {
            io.ConnectionRefused += (_, message) => metrics.SocketIORefused(message);
            io.RecoveryAttempted += (_, outcome) => metrics.RecoveryAttempted(outcome);
            io.Engine.SessionClosed += (_, reason) =>
            {
                if (reason == EngineCloseReason.SlowConsumer)
                    metrics.SlowConsumerDropped(GatewayMetrics.SocketIOTransport);
            };
        }

        // Minimal-API handlers over the health check service (not MapHealthChecks) so that the OpenAPI document lists them.
        app.MapGet("/health/live", (HttpContext context, HealthCheckService health) => HealthAsync(context, health, _ => false, options))
            .WithTags("Operations").WithSummary("Liveness: the process serves HTTP (no dependency is checked).")
            .Produces<HealthBody>().Produces<HealthBody>(StatusCodes.Status503ServiceUnavailable);
        app.MapGet("/health/ready", (HttpContext context, HealthCheckService health) => HealthAsync(context, health, r => r.Tags.Contains(ReadyTag), options))
            .WithTags("Operations").WithSummary("Readiness: the instance store (SQLite, or Redis with REDIS_URI) answers; says whether WebSocket endpoints are enabled.")
            .Produces<HealthBody>().Produces<HealthBody>(StatusCodes.Status503ServiceUnavailable);
        UseMetricsAuthorization(app, options);
        app.MapMetrics("/metrics", metrics.Registry).WithTags("Operations")
            .WithSummary("Prometheus metrics (text exposition format); the global key or METRICS_API_KEY unless METRICS_PUBLIC=true.");
        return app;
    }

    /// <summary>
    /// <c>/metrics</c> names instances, so it asks for a key (<c>Authorization: Bearer …</c>, as a Prometheus
    /// scrape config sends it, or the <c>apikey</c> header): the global key or METRICS_API_KEY.
    /// METRICS_PUBLIC=true serves it to anyone.
    /// </summary>
    private static void UseMetricsAuthorization(WebApplication app, GatewayOptions options)
    {
        if (options.MetricsPublic)
            return;
        var authorizer = app.Services.GetRequiredService<GatewayAuthorizer>();
        var metricsKeyHash = options.MetricsApiKey is { } k ? SHA256.HashData(Encoding.UTF8.GetBytes(k)) : null;
        app.UseWhen(context => context.Request.Path.StartsWithSegments("/metrics"), branch => branch.Use(async (context, next) =>
        {
            var key = ApiKeyReader.FromHeaders(context.Request);
            var allowed = key is not null
                && ((metricsKeyHash is not null
                        && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(key)), metricsKeyHash))
                    || authorizer.Authenticate(key).IsGlobal);
            if (allowed)
            {
                await next(context);
                return;
            }
            context.Response.Headers.WWWAuthenticate = "Bearer";
            await ApiError.WriteAsync(context.Response, StatusCodes.Status401Unauthorized,
                "/metrics needs the global key or METRICS_API_KEY (Authorization: Bearer …); METRICS_PUBLIC=true serves it to anyone");
        }));
    }

    private static async Task HealthAsync(HttpContext context, HealthCheckService health,
        Func<HealthCheckRegistration, bool> predicate, GatewayOptions options)
    {
        var report = await health.CheckHealthAsync(predicate, context.RequestAborted);
        context.Response.StatusCode = report.Status == HealthStatus.Unhealthy ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status200OK;
        context.Response.Headers.CacheControl = "no-store, no-cache";
        context.Response.ContentType = "application/json; charset=utf-8";
        var body = new HealthBody(
            report.Status.ToString(),
            new HealthWebSocket(options.WebSocketEnabled),
            report.Entries.ToDictionary(e => e.Key, e => new HealthCheckEntry(
                e.Value.Status.ToString(),
                e.Value.Description,
                Math.Round(e.Value.Duration.TotalMilliseconds, 2))));
        await context.Response.WriteAsync(JsonSerializer.Serialize(body, ApiError.Json));
    }
}

/// <summary>The body of <c>/health/live</c> and <c>/health/ready</c> (503 when a check is unhealthy).</summary>
/// <param name="Status"><c>Healthy</c>, <c>Degraded</c> or <c>Unhealthy</c>.</param>
/// <param name="Websocket">Whether the WebSocket endpoints are enabled (WEBSOCKET_ENABLED).</param>
/// <param name="Checks">Each check by name (none for liveness).</param>
public sealed record HealthBody(string Status, HealthWebSocket Websocket, IReadOnlyDictionary<string, HealthCheckEntry> Checks);

/// <summary>WEBSOCKET_ENABLED as the health body reports it.</summary>
public sealed record HealthWebSocket(bool Enabled);

/// <summary>One check of a health body.</summary>
public sealed record HealthCheckEntry(string Status, string? Description, double DurationMs);

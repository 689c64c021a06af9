using Evolution.Events.Gateway.Auth;
using Evolution.Events.Gateway.Connections;
using Evolution.Events.Gateway.Events;
using Evolution.Events.Gateway.Fanout;
using Evolution.Events.Gateway.Ingestion;
using Evolution.Events.Gateway.Instances;
using Evolution.Events.Gateway.Observability;
using Evolution.Events.Gateway.Options;
using Evolution.Events.Gateway.PlainWebSockets;
using Evolution.Events.Gateway.Relay;
using FluentValidation;
using Microsoft.AspNetCore.HttpOverrides;
using Serilog;

namespace Evolution.Events.Gateway;

/// <summary>Service registration and pipeline pieces, one method per concern; <see cref="GatewayApp"/> composes them.</summary>
public static class GatewayServices
{
    /// <summary>Registers options, auth, instances, events, fan-out, relay and the plain-WebSocket sink.</summary>
    public static IServiceCollection AddGateway(this IServiceCollection services, GatewayOptions options)
    {
        services.AddSingleton(options);
        services.AddSingleton(TimeProvider.System);
        services.AddInstanceStore(options);
        services.AddSingleton<InstanceRegistry>();
        services.AddHostedService<InstanceRegistryLoader>();
        services.AddSingleton<GatewayAuthorizer>();
        if (options.Redis is null)
        {
            services.AddSingleton<IEventBus, InProcessEventBus>();
        }
        else
        {
            // Started after the instance store connected (InstanceRegistryLoader) and before the fan-out.
            services.AddSingleton<RedisEventBus>();
            services.AddSingleton<IEventBus>(sp => sp.GetRequiredService<RedisEventBus>());
            services.AddHostedService(sp => sp.GetRequiredService<RedisEventBus>());
        }
        services.AddSingleton<LastStateReplay>();
        services.AddSingleton<ConnectionGate>();
        services.AddSingleton<PlainWebSocketHub>();
        services.AddSingleton<IEventSink>(sp => sp.GetRequiredService<PlainWebSocketHub>());
        services.AddSingleton<ClusterNodes>();
        services.AddHostedService(sp => sp.GetRequiredService<ClusterNodes>());
        services.AddSingleton<FanoutService>();
        services.AddHostedService(sp => sp.GetRequiredService<FanoutService>());
        services.AddHttpClient(InboundRelay.HttpClientName, c => c.Timeout = options.InboundWebhookTimeout + TimeSpan.FromSeconds(1));
        services.AddSingleton<InboundRelay>();
        services.AddRabbitMQIngestion(options); // RABBITMQ_URI only; started after the bus and the fan-out
        services.AddValidatorsFromAssemblyContaining<WebhookBatchValidator>(ServiceLifetime.Singleton);
        services.AddCors(cors => cors.AddDefaultPolicy(policy =>
        {
            if (options.CorsOrigins is ["*"])
                policy.AllowAnyOrigin();
            else
                policy.WithOrigins([.. options.CorsOrigins]);
            policy.AllowAnyHeader().AllowAnyMethod();
        }));
        return services;
    }

    /// <summary>
    /// Serilog to the console at LOG_LEVEL (ASP.NET Core's own chatter at Warning) through <see cref="GatewayLog"/>:
    /// a bounded background writer that never blocks the thread that logs nor shutdown, counts what it drops,
    /// and escapes client text. <paramref name="alsoLogTo"/> (tests) gets every event too, as the console would.
    /// </summary>
    public static IServiceCollection AddGatewayLogging(this IServiceCollection services, GatewayOptions options,
        Serilog.Core.ILogEventSink? alsoLogTo = null)
    {
        var log = new GatewayLog(options, alsoLogTo);
        // registered by factory so that the container disposes it (bounded flush) when the app is disposed
        services.AddSingleton(_ => log);
        services.AddSerilog(log.Logger, dispose: false);
        // Kestrel's per-connection scope is dropped (bytes per idle socket, see WithoutConnectionScopes)
        var serilog = services.Last(d => d.ServiceType == typeof(ILoggerFactory));
        services.Remove(serilog);
        services.AddSingleton<ILoggerFactory>(provider => new WithoutConnectionScopes((ILoggerFactory)(
            serilog.ImplementationInstance
            ?? serilog.ImplementationFactory?.Invoke(provider)
            ?? ActivatorUtilities.CreateInstance(provider, serilog.ImplementationType!))));
        return services;
    }

    /// <summary>Believes X-Forwarded-For / -Proto only from TRUSTED_PROXIES.</summary>
    public static WebApplication UseGatewayForwardedHeaders(this WebApplication app, GatewayOptions options)
    {
        if (options.TrustedProxies.Count == 0)
            return app;
        var forwarded = new ForwardedHeadersOptions
        {
            ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto,
            ForwardLimit = null,
        };
        forwarded.KnownIPNetworks.Clear();
        forwarded.KnownProxies.Clear();
        foreach (var network in options.TrustedProxies)
            forwarded.KnownIPNetworks.Add(network);
        app.UseForwardedHeaders(forwarded);
        return app;
    }
}

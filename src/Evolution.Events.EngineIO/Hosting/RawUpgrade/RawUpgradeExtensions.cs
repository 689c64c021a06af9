using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;

namespace Evolution.Events.EngineIO.Hosting;

/// <summary>
/// WebSocket upgrades served on the raw Kestrel connection (no HTTP/1.1 connection object, request headers or
/// <c>HttpContext</c> kept for the socket's life). Three calls:
/// <code>
/// builder.Services.AddRawWebSocketUpgrades();
/// builder.WebHost.ConfigureKestrel(k =&gt; k.UseRawWebSocketUpgrades());   // a connection middleware on every endpoint
/// var app = builder.Build();
/// app.UseRawWebSocketUpgrades("/ws");    // first in the pipeline: what the raw path runs; "/ws" besides MapSocketIO/MapEngineIO paths
/// </code>
/// A connection whose first request is a well-formed HTTP/1.1 WebSocket upgrade (GET, <c>Upgrade: websocket</c>) for
/// a registered path has its request head read by the middleware and run through the app's own pipeline (every
/// middleware, endpoint, check and refusal as on the HTTP path); everything else is handed to Kestrel untouched.
/// </summary>
public static class RawUpgradeExtensions
{
    /// <summary>Registers the <see cref="RawUpgradeDispatcher"/> singleton.</summary>
    public static IServiceCollection AddRawWebSocketUpgrades(this IServiceCollection services)
    {
        services.AddSingleton<RawUpgradeDispatcher>();
        return services;
    }

    /// <summary>Adds the raw-upgrade connection middleware to every endpoint Kestrel binds (URLs, configuration, Listen calls).</summary>
    public static KestrelServerOptions UseRawWebSocketUpgrades(this KestrelServerOptions kestrel)
    {
        kestrel.ConfigureEndpointDefaults(listen => listen.UseRawWebSocketUpgrades());
        return kestrel;
    }

    /// <summary>
    /// Adds the raw-upgrade connection middleware to one endpoint. It must see plaintext: on an endpoint where Kestrel
    /// terminates TLS, call it after <c>UseHttps</c> (endpoint defaults run before it, so there TLS bytes are simply
    /// handed on and upgrades take the HTTP path).
    /// </summary>
    public static ListenOptions UseRawWebSocketUpgrades(this ListenOptions listen)
    {
        var services = listen.ApplicationServices;
        RawUpgradeDispatcher? dispatcher = null;
        listen.Use(next => connection =>
        {
            dispatcher ??= services.GetRequiredService<RawUpgradeDispatcher>();
            return dispatcher.OnConnectionAsync(connection, next);
        });
        return listen;
    }

    /// <summary>
    /// Must be the first middleware: the rest of the pipeline (routing included, so call <c>UseRouting()</c> next when
    /// using WebApplication) is what the raw path runs; <paramref name="paths"/> are added to the served paths
    /// (MapSocketIO/MapEngineIO add theirs).
    /// </summary>
    public static IApplicationBuilder UseRawWebSocketUpgrades(this IApplicationBuilder app, params string[] paths)
    {
        var dispatcher = app.ApplicationServices.GetRequiredService<RawUpgradeDispatcher>();
        foreach (var path in paths)
        {
            dispatcher.AddPath(path, prefix: false);
        }

        app.Use(next =>
        {
            dispatcher.Pipeline = next;
            return next;
        });
        return app;
    }
}

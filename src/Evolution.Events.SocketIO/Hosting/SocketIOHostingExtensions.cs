using Evolution.Events.EngineIO.Hosting;
using Evolution.Events.SocketIO.Adapters;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Evolution.Events.SocketIO.Hosting;

/// <summary>Hosting a <see cref="SocketIOServer"/> in an ASP.NET Core app: register it (<see cref="AddSocketIO"/>), route it (<see cref="MapSocketIO"/>).</summary>
public static class SocketIOHostingExtensions
{
    /// <summary>
    /// Registers the <see cref="SocketIOServer"/> singleton. Options come from <paramref name="configuration"/>
    /// (e.g. the "SocketIO" section: ConnectTimeout, Engine:PingInterval, …) and then <paramref name="configure"/>.
    /// </summary>
    public static IServiceCollection AddSocketIO(
        this IServiceCollection services, IConfiguration? configuration = null, Action<SocketIOOptions>? configure = null)
    {
        services.TryAddSingleton<IAdapterFactory, InMemoryAdapterFactory>();
        services.AddSingleton(sp =>
        {
            var options = new SocketIOOptions();
            configuration?.Bind(options);
            configure?.Invoke(options);
            return new SocketIOServer(options, sp.GetService<ILoggerFactory>(), sp.GetRequiredService<IAdapterFactory>());
        });
        services.AddHostedService<SocketIOShutdown>();
        return services;
    }

    /// <summary>
    /// Serves Socket.IO at <paramref name="path"/> (default <c>/socket.io</c>) for every method.
    /// The WebSocket transport answers the upgrade itself (RFC 6455 handshake and framing on the request's
    /// upgraded stream): <c>UseWebSockets()</c> is not needed for it.
    /// </summary>
    public static IEndpointConventionBuilder MapSocketIO(this IEndpointRouteBuilder endpoints, string path = "/socket.io")
    {
        var server = endpoints.ServiceProvider.GetRequiredService<SocketIOServer>();
        var basePath = new PathString(path.TrimEnd('/'));
        endpoints.ServiceProvider.GetService<RawUpgradeDispatcher>()?.AddPath(basePath.Value!); // served on the raw connection too when set up
        return endpoints.Map(basePath + "/{**rest}", async context =>
        {
            if (server.Options.ClientBundle is { } bundle && await bundle.TryServeAsync(context, basePath))
            {
                return;
            }

            await server.HandleRequestAsync(context);
        });
    }

    /// <summary>
    /// Closes every session when the host starts stopping: in <see cref="IHostedLifecycleService.StoppingAsync"/>,
    /// which runs before any hosted service's StopAsync, so before Kestrel waits (up to its shutdown
    /// timeout) for open connections to drain.
    /// </summary>
    private sealed class SocketIOShutdown(SocketIOServer server) : IHostedLifecycleService
    {
        public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StoppingAsync(CancellationToken cancellationToken)
        {
            server.Close();
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}

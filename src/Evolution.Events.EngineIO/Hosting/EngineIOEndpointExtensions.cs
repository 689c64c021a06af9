using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Evolution.Events.EngineIO.Hosting;

/// <summary>Routes an <see cref="EngineIOServer"/> in an ASP.NET Core app (socket.io's <c>engine.attach</c>).</summary>
public static class EngineIOEndpointExtensions
{
    /// <summary>
    /// Serves a plain Engine.IO server at <paramref name="path"/> (e.g. <c>/engine.io</c>), for every method.
    /// The WebSocket transport answers the upgrade itself (RFC 6455 handshake and framing on the request's
    /// upgraded stream): <c>UseWebSockets()</c> is not needed for it.
    /// </summary>
    public static IEndpointConventionBuilder MapEngineIO(this IEndpointRouteBuilder endpoints, string path, EngineIOServer server)
    {
        var trimmed = path.TrimEnd('/');
        endpoints.ServiceProvider.GetService<RawUpgradeDispatcher>()?.AddPath(trimmed);
        return endpoints.Map(trimmed + "/{**rest}", server.HandleRequestAsync);
    }
}

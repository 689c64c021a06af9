using Evolution.Events.Gateway.Auth;
using Evolution.Events.Gateway.Http;
using Evolution.Events.Gateway.Instances;
using Evolution.Events.Gateway.Observability;
using Evolution.Events.Gateway.OpenApi;
using Evolution.Events.Gateway.Options;
using Evolution.Events.Gateway.PlainWebSockets;
using Evolution.Events.SocketIO;
using Microsoft.Extensions.FileProviders;

namespace Evolution.Events.Gateway.Dashboard;

/// <summary>
/// The browser dashboard: static files embedded in the assembly (<c>wwwroot/</c>, served at <c>/</c> for a
/// GET without upgrade; the plain-WebSocket middleware runs first and keeps the upgrades at <c>/</c>), and
/// <c>GET /dashboard/stats</c> for its connections view (global key only).
/// </summary>
public static class DashboardEndpoints
{
    /// <summary>After the plain-WebSocket middleware: <c>/</c> → <c>index.html</c>, then the embedded files.</summary>
    public static WebApplication UseGatewayDashboard(this WebApplication app)
    {
        var files = new EmbeddedFileProvider(typeof(DashboardEndpoints).Assembly, "Evolution.Events.Gateway.wwwroot");
        app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files });
        app.UseStaticFiles(new StaticFileOptions
        {
            FileProvider = files,
            OnPrepareResponse = context => context.Context.Response.Headers.CacheControl = "no-cache",
        });
        return app;
    }

    public static IEndpointRouteBuilder MapDashboardEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/dashboard/stats", Stats)
            .WithTags("Dashboard")
            .WithSummary("Connections view: instances, sockets per instance, events per second (global key only).")
            .Produces<DashboardStats>()
            .ProducesApiErrors(401, 403);
        return app;
    }

    private static async Task<IResult> Stats(HttpRequest request, GatewayAuthorizer authorizer, InstanceRegistry registry,
        GatewayMetrics metrics, PlainWebSocketHub hub, GatewayOptions options, ClusterNodes cluster, IServiceProvider services)
    {
        var decision = GatewayAuthorizer.RequireGlobal(authorizer.Authenticate(ApiKeyReader.FromQueryOrHeaders(request)));
        if (decision != AccessDecision.Allowed)
            return ApiError.Refused(decision, "Only the global API key may read the connections view");
        var io = options.WebSocketEnabled ? services.GetRequiredService<SocketIOServer>() : null;
        var plain = hub.CountByInstance();
        var instances = registry.List().Select(x => new InstanceStats(
            x.Info.Name,
            x.Settings.Enabled,
            io is not null && io.TryGetNamespace("/" + x.Info.Name, out var nsp) ? nsp.SocketCount : 0,
            plain.GetValueOrDefault(x.Info.Name),
            Math.Round(metrics.Rates.PerSecond(x.Info.Name), 2))).ToList();
        var (nodes, complete) = await cluster.ListAsync();
        var totals = new ClusterTotals(
            nodes.Count,
            complete,
            nodes.Sum(n => n.SocketIOConnections),
            nodes.Sum(n => n.PlainWebSockets),
            Math.Round(nodes.Sum(n => n.EventsPerSecond), 2));
        return Results.Json(new DashboardStats(
            options.WebSocketEnabled,
            io?.Engine.SessionCount ?? 0,
            io?.Engine.WebSocketSessionCount ?? 0,
            io?.Sockets.SocketCount ?? 0,
            hub.Count,
            Math.Round(metrics.Rates.TotalPerSecond(), 2),
            instances,
            cluster.Id,
            nodes,
            totals), ApiError.Json);
    }
}

/// <summary>One row of the connections view.</summary>
/// <param name="Instance">The instance name.</param>
/// <param name="WebsocketEnabled">Its websocket settings' <c>enabled</c>.</param>
/// <param name="SocketIOSockets">Sockets connected to its namespace <c>/{instance}</c>.</param>
/// <param name="PlainWebSockets">Plain WebSocket connections scoped to it.</param>
/// <param name="EventsPerSecond">Events ingested per second over the last 10 s.</param>
public sealed record InstanceStats(
    string Instance, bool WebsocketEnabled, int SocketIOSockets, int PlainWebSockets, double EventsPerSecond);

/// <summary>The body of <c>GET /dashboard/stats</c>.</summary>
/// <param name="WebsocketEnabled">WEBSOCKET_ENABLED.</param>
/// <param name="SocketIOConnections">Open Engine.IO sessions (all transports).</param>
/// <param name="SocketIOWebSocketConnections">Of those, sessions on the websocket transport.</param>
/// <param name="MainNamespaceSockets">Sockets on the main namespace <c>/</c>.</param>
/// <param name="PlainWebSockets">Open plain WebSocket connections.</param>
/// <param name="EventsPerSecond">Events ingested per second over the last 10 s, all instances.</param>
/// <param name="Instances">One row per instance (sockets and rates of this node).</param>
/// <param name="Node">The id of the node that answered (every figure above is this node's).</param>
/// <param name="Nodes">Every live node of the cluster (this one first); just this node without REDIS_URI.</param>
/// <param name="Cluster">The sums over <paramref name="Nodes"/>.</param>
public sealed record DashboardStats(
    bool WebsocketEnabled, int SocketIOConnections, int SocketIOWebSocketConnections, int MainNamespaceSockets,
    int PlainWebSockets, double EventsPerSecond, IReadOnlyList<InstanceStats> Instances,
    string Node, IReadOnlyList<NodeStats> Nodes, ClusterTotals Cluster);

/// <summary>The cluster's totals in <c>GET /dashboard/stats</c>.</summary>
/// <param name="Nodes">Live nodes.</param>
/// <param name="Complete">False when Redis could not be read: the view then holds this node only.</param>
/// <param name="SocketIOConnections">Engine.IO sessions on every node.</param>
/// <param name="PlainWebSockets">Plain WebSocket connections on every node.</param>
/// <param name="EventsPerSecond">Events ingested per second by every node together.</param>
public sealed record ClusterTotals(int Nodes, bool Complete, int SocketIOConnections, int PlainWebSockets, double EventsPerSecond);

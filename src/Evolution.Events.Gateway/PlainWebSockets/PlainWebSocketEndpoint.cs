using System.Collections.Frozen;
using Evolution.Events.EngineIO;
using Evolution.Events.EngineIO.Hosting;
using Evolution.Events.Gateway.Auth;
using Evolution.Events.Gateway.Connections;
using Evolution.Events.Gateway.Events;
using Evolution.Events.Gateway.Http;
using Evolution.Events.Gateway.Instances;
using Evolution.Events.Gateway.Options;
using Microsoft.AspNetCore.Http.Features;

namespace Evolution.Events.Gateway.PlainWebSockets;

/// <summary>
/// Plain WebSocket at <c>/ws/events</c> and at <c>/</c> (an upgrade without <c>EIO</c>). Every refusal
/// happens before the upgrade with a JSON body: 404 disabled, 429 rate, 401 key, 403 foreign instance,
/// 400 bad filter, 503 connection limit.
/// </summary>
public sealed class PlainWebSocketEndpoint(RequestDelegate next, GatewayOptions options, GatewayAuthorizer authorizer,
    ConnectionGate gate, PlainWebSocketHub hub, ILogger<PlainWebSocketEndpoint> logger)
{
    /// <summary>The plain WebSocket's own path (it also answers upgrades at <c>/</c>).</summary>
    public const string EventsPath = "/ws/events";

    public Task InvokeAsync(HttpContext context)
    {
        var path = context.Request.Path;
        var isEvents = path.Equals(EventsPath, StringComparison.OrdinalIgnoreCase)
            || path.Equals(EventsPath + "/", StringComparison.OrdinalIgnoreCase);
        var isRoot = path == "/" && context.WebSockets.IsWebSocketRequest && !context.Request.Query.ContainsKey("EIO");
        return isEvents || isRoot ? HandleAsync(context) : next(context);
    }

    private async Task HandleAsync(HttpContext context)
    {
        if (!options.WebSocketEnabled)
        {
            await RefuseAsync(context, 404, ApiError.WebSocketDisabledMessage);
            return;
        }
        if (!context.WebSockets.IsWebSocketRequest)
        {
            await RefuseAsync(context, 400, "Expected a WebSocket upgrade request");
            return;
        }
        if (!gate.CheckRate(context, out var status, out var reason)
            || !TryParseSubscription(context.Request, out var subscription, out status, out reason)
            || !gate.TryAcquire(out status, out reason))
        {
            await RefuseAsync(context, status, reason);
            return;
        }
        var detached = false;
        try
        {
            detached = await ServeAsync(context, subscription!);
        }
        finally
        {
            if (!detached)
                gate.Release();
        }
    }

    /// <summary>Serves the WebSocket; true when it was handed to the raw connection (which then releases the slot).</summary>
    private async Task<bool> ServeAsync(HttpContext context, PlainSubscription subscription)
    {
        var remote = ConnectionGate.RemoteAddress(context);
        var connection = new PlainWebSocketConnection(hub.NextId(), subscription, remote,
            options.SendQueueLimit, options.MaxPayload, options.SendQueueBytes);
        hub.Add(connection); // before the 101, so an event published right after the handshake is not missed
        var detached = false;
        try
        {
            // the engine's framing: every queued message up to a batch leaves in one write
            if (await QueuedWebSocket.AcceptAsync(context, options.MaxPayload, options.PerMessageDeflate) is not { } socket)
                return false;
            logger.LogInformation("Plain WebSocket {ConnectionId} connected from {RemoteAddress} ({Subscription})",
                connection.Id, remote, subscription.Describe());
            if (context.Features.Get<IConnectionDetachFeature>() is { } detach)
            {
                // the raw path: the connection middleware runs the socket, the request's objects are let go
                var closed = detach.ConnectionClosed; // the lambda holds the token, not the feature
                detach.Detach(() => RunDetachedAsync(connection, socket, remote, closed));
                detached = true;
                return true;
            }
            await RunAsync(connection, socket, remote, context.RequestAborted);
            return false;
        }
        finally
        {
            if (!detached)
                hub.Remove(connection);
        }
    }

    private async Task RunDetachedAsync(PlainWebSocketConnection connection, QueuedWebSocket socket, string remote, CancellationToken closed)
    {
        try
        {
            await RunAsync(connection, socket, remote, closed);
        }
        finally
        {
            hub.Remove(connection);
            gate.Release();
        }
    }

    private async Task RunAsync(PlainWebSocketConnection connection, QueuedWebSocket socket, string remote, CancellationToken aborted)
    {
        var reason = await connection.RunAsync(socket, aborted);
        logger.LogInformation("Plain WebSocket {ConnectionId} from {RemoteAddress} disconnected: {Reason}",
            connection.Id, remote, reason);
    }

    private bool TryParseSubscription(HttpRequest request, out PlainSubscription? subscription,
        out int status, out string reason)
    {
        subscription = null;
        (status, reason) = (200, "");
        var key = ApiKeyReader.FromQueryOrHeaders(request);
        var auth = authorizer.Authenticate(key);
        string? instance = request.Query["instance"];
        // WEBSOCKET_ALLOWED_HOSTS: no key, from a listed address, scoped to an existing instance (never global)
        var keyless = key is null && InstanceNames.IsValid(instance)
            && authorizer.AllowsKeyless(request.HttpContext.Connection.RemoteIpAddress, instance!);
        if (!auth.IsAuthenticated && !keyless)
        {
            (status, reason) = (401, "Invalid API key");
            return false;
        }
        if (!string.IsNullOrEmpty(instance) && !InstanceNames.IsValid(instance))
        {
            (status, reason) = (400, $"instance: {InstanceNames.Rule}");
            return false;
        }
        instance = string.IsNullOrEmpty(instance) ? auth.InstanceName : instance;
        if (!keyless && instance is not null && !GatewayAuthorizer.CanAccessInstance(auth, instance))
        {
            (status, reason) = (403, $"This token may not open the events of instance '{instance}'");
            return false;
        }
        if (!TryParseEvents(request, out var events, out reason) || !TryParseFormat(request, out var simple, out reason))
        {
            status = 400;
            return false;
        }
        subscription = new PlainSubscription(instance, events, simple) { Auth = keyless ? AuthKind.None : auth.Kind };
        return true;
    }

    private static bool TryParseEvents(HttpRequest request, out FrozenSet<string>? events, out string reason)
    {
        events = null;
        reason = "";
        var names = request.Query["event"].Concat(request.Query["events"])
            .SelectMany(v => (v ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .ToList();
        if (names.Count == 0)
            return true;
        var unknown = names.FirstOrDefault(n => !EventNames.TryParse(n, out _));
        if (unknown is not null)
        {
            reason = $"event: unknown event name '{(unknown.Length > 64 ? unknown[..64] : unknown)}'";
            return false;
        }
        events = names.Select(n => EventNames.Find(n)!.Setting).ToFrozenSet(StringComparer.Ordinal);
        return true;
    }

    private static bool TryParseFormat(HttpRequest request, out bool simple, out string reason)
    {
        string? format = request.Query["format"];
        simple = string.Equals(format, "simple", StringComparison.OrdinalIgnoreCase);
        reason = "";
        if (simple || string.IsNullOrEmpty(format) || string.Equals(format, "envelope", StringComparison.OrdinalIgnoreCase))
            return true;
        reason = $"format: must be 'simple' or 'envelope' (got '{(format.Length > 32 ? format[..32] : format)}')";
        return false;
    }

    private async Task RefuseAsync(HttpContext context, int status, string reason)
    {
        logger.LogInformation("Plain WebSocket refused {Status} for {RemoteAddress} on {Path}: {Reason}",
            status, ConnectionGate.RemoteAddress(context), context.Request.Path.Value, reason);
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await ApiError.WriteAsync(context.Response, status, reason);
    }
}

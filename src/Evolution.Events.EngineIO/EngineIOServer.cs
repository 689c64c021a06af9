using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;
using Evolution.Events.EngineIO.Hosting;
using Evolution.Events.EngineIO.Protocol;
using Evolution.Events.EngineIO.Transports;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Evolution.Events.EngineIO;

/// <summary>
/// The Engine.IO 4 server (and Engine.IO 3 with <see cref="EngineIOOptions.AllowEIO3"/>): verifies every request (EIO, transport, sid, method) before anything
/// else, creates sessions at the handshake, and routes polling and WebSocket requests to them.
/// Host it with <c>app.MapEngineIO(path, server)</c> or through the Socket.IO server.
/// </summary>
public sealed partial class EngineIOServer
{
    private readonly ConcurrentDictionary<string, EngineSocket> _sessions = new(StringComparer.Ordinal);
    private readonly ILogger _logger;
    private readonly ClosedPollTombstones _closedPolls;
    private readonly HeartbeatSweep _heartbeat;
    private int _webSocketCount;

    /// <summary>An Engine.IO server with validated <paramref name="options"/>; serve it with <see cref="Hosting.EngineIOEndpointExtensions.MapEngineIO"/> or <see cref="HandleRequestAsync"/>.</summary>
    public EngineIOServer(EngineIOOptions options, ILogger<EngineIOServer>? logger = null)
    {
        options.Validate();
        Options = options;
        _closedPolls = new ClosedPollTombstones(options.ClosedPollCapacity, options.ClosedPollGraceMs);
        _heartbeat = new HeartbeatSweep(_sessions, options);
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>The options the server was made with (validated; not to be changed once it serves).</summary>
    public EngineIOOptions Options { get; }

    /// <summary>Called for every new session, before any of its packets is read; returns its listener.</summary>
    public Func<EngineSocket, IEngineSocketListener>? OnConnection { get; set; }

    /// <summary>Raised once per session when it starts closing, with the reason (after the listener's OnClose). Must not block.</summary>
    public event Action<EngineSocket, EngineCloseReason>? SessionClosed;

    /// <summary>Open sessions.</summary>
    public int SessionCount => _sessions.Count;

    /// <summary>Open sessions whose transport is WebSocket (the rest poll).</summary>
    public int WebSocketSessionCount => Volatile.Read(ref _webSocketCount);

    /// <summary>The open session with this id (engine.io's <c>clients[sid]</c>), if any.</summary>
    public bool TryGetSession(string sid, out EngineSocket session) => _sessions.TryGetValue(sid, out session!);

    /// <summary>Closes every session (server shutting down).</summary>
    public void CloseAll()
    {
        foreach (var session in _sessions.Values)
        {
            session.Close(EngineCloseReason.ServerShuttingDown, null, discard: false);
        }
    }

    /// <summary>Serves one Engine.IO request (polling GET/POST, WebSocket, CORS preflight).</summary>
    public async Task HandleRequestAsync(HttpContext context)
    {
        var request = context.Request;
        ApplyCors(context);
        if (HttpMethods.IsOptions(request.Method))
        {
            WritePreflight(context);
            return;
        }

        var query = request.Query;
        var transport = query["transport"].ToString();
        var isWebSocket = WebSocketHandshake.IsWebSocketRequest(context);
        var protocol = EngineProtocol.For(query["EIO"].ToString(), Options.AllowEIO3, EngineProtocol.AsksBase64(request));
        var error = protocol is null ? EngineErrorCode.UnsupportedProtocolVersion : Verify(transport, isWebSocket);
        if (error is { } code)
        {
            LogRefused(code, context.Connection.RemoteIpAddress?.ToString());
            await EngineHttp.WriteErrorAsync(context, code);
            return;
        }

        var sid = query["sid"].ToString();
        if (sid.Length == 0)
        {
            await HandshakeAsync(context, isWebSocket, protocol!);
            return;
        }

        // a finished session may still be in the registry for a moment: it is gone all the same
        if (!_sessions.TryGetValue(sid, out var session) || session.ReadyState == EngineReadyState.Closed)
        {
            if (!isWebSocket && HttpMethods.IsGet(request.Method) && _closedPolls.TryTake(sid))
            {
                // this poll crossed the close packet that ended its session (sent together, served
                // after it): it gets what it would have had had it been waiting, once
                await PollingTransport.WriteDetachedNoopAsync(context, protocol!, Options);
                return;
            }

            await EngineHttp.WriteErrorAsync(context, EngineErrorCode.UnknownSid);
            return;
        }

        if (session.Protocol.Revision != protocol!.Revision)
        {
            // as engine.io: a request for a session must speak the session's revision (an upgrade included)
            await EngineHttp.WriteErrorAsync(context, EngineErrorCode.BadRequest);
            return;
        }

        if (session.ExpireIfPongOverdue())
        {
            await EngineHttp.WriteErrorAsync(context, EngineErrorCode.UnknownSid);
            return;
        }

        await RouteAsync(context, session, isWebSocket);
    }

    private EngineErrorCode? Verify(string transport, bool isWebSocket)
    {
        var known = transport switch
        {
            "polling" => Options.AllowPolling,
            "websocket" => Options.AllowWebSocket,
            _ => false,
        };
        if (!known)
        {
            return EngineErrorCode.UnknownTransport;
        }

        // a WebSocket handshake must ask for the websocket transport, and the websocket transport needs one
        return isWebSocket != (transport == "websocket") ? EngineErrorCode.BadRequest : null;
    }

    private async Task RouteAsync(HttpContext context, EngineSocket session, bool isWebSocket)
    {
        if (isWebSocket)
        {
            if (!Options.AllowUpgrades)
            {
                await EngineHttp.WriteErrorAsync(context, EngineErrorCode.BadRequest);
                return;
            }

            if (await WebSocketHandshake.AcceptAsync(context, Options.PerMessageDeflate) is not { } accepted)
            {
                return;
            }

            var (stream, deflate) = accepted;

            var detach = context.Features.Get<IConnectionDetachFeature>();
            var upgradeProtocol = session.Protocol.WithBase64(EngineProtocol.AsksBase64(context.Request));
            var transport = detach is null
                ? new WebSocketTransport(session, stream, Options.MaxPayload, context, protocol: upgradeProtocol, deflate: deflate)
                : new WebSocketTransport(session, stream, Options.MaxPayload, detach.AbortConnection,
                    EngineRequest.From(context, Options.MaxHandshakeHeaderChars), upgradeProtocol, deflate);
            if (!session.TryClaimUpgrade())
            {
                // as engine.io: a second WebSocket for the same session is accepted, then closed at once
                await transport.RefuseAsync();
                return;
            }

            if (detach is not null)
            {
                // the raw path: the connection middleware runs the WebSocket, the request's objects are let go
                var timeout = Options.UpgradeTimeout;
                detach.Detach(() => transport.RunProbeAsync(timeout));
                return;
            }

            await transport.RunProbeAsync(Options.UpgradeTimeout);
            return;
        }

        if (session.IsWebSocket || session.Polling is not { } polling)
        {
            await EngineHttp.WriteErrorAsync(context, EngineErrorCode.BadRequest);
            return;
        }

        await polling.HandleRequestAsync(context);
    }

    private async Task HandshakeAsync(HttpContext context, bool isWebSocket, EngineProtocol protocol)
    {
        if (!HttpMethods.IsGet(context.Request.Method))
        {
            await EngineHttp.WriteErrorAsync(context, EngineErrorCode.BadHandshakeMethod);
            return;
        }

        // JSONP polling (revision 3, engine.io's polling-jsonp) is chosen by the handshake's callback index j
        string? jsonpIndex = null;
        if (!isWebSocket)
        {
            jsonpIndex = PollingTransport.JsonpIndex(context.Request, protocol, out var validJsonp);
            if (!validJsonp)
            {
                await EngineHttp.WriteErrorAsync(context, EngineErrorCode.BadRequest);
                return;
            }

            if (jsonpIndex is not null)
            {
                // a JSONP response is JavaScript text: binary messages go as base64 whatever b64 says
                protocol = protocol.WithBase64(true);
            }
        }

        if (Options.AllowRequest is { } allow && await allow(context) is { } refusal)
        {
            LogHandshakeRefused(refusal.StatusCode, refusal.Message, context.Connection.RemoteIpAddress?.ToString());
            await EngineHttp.WriteErrorAsync(context, refusal.StatusCode, (int)EngineErrorCode.Forbidden, refusal.Message);
            return;
        }

        var session = new EngineSocket(this, NewId(), EngineRequest.From(context, Options.MaxHandshakeHeaderChars), isWebSocket, protocol, jsonpIndex);
        _sessions[session.Id] = session;
        _heartbeat.EnsureRunning();
        if (isWebSocket)
        {
            Interlocked.Increment(ref _webSocketCount);
        }

        session.Send(OutboundPacket.Text(EnginePacketType.Open, protocol.HandshakeJson(session.Id, OffersWebSocket(isWebSocket), Options)));
        LogOpened(session.Id, session.Transport, session.Request.RemoteAddress?.ToString());
        var listener = OnConnection?.Invoke(session);
        if (listener is not null)
        {
            session.SetListener(listener);
            try
            {
                listener.OnOpen(session);
            }
            catch (Exception ex)
            {
                LogListenerFailure(ex, session.Id);
                session.Close(EngineCloseReason.TransportError, "server error", discard: true);
            }
        }

        session.Start();
        if (isWebSocket)
        {
            if (await WebSocketHandshake.AcceptAsync(context, Options.PerMessageDeflate) is not { } accepted)
            {
                session.Close(EngineCloseReason.TransportError, "WebSocket handshake failed", discard: true);
                return;
            }

            var (stream, deflate) = accepted;

            if (!protocol.ServerPings)
            {
                // the open packet leaves a moment after the 101, never in the same read: a client that listens for
                // messages only once it has seen "open" (the official v3 suite does) would otherwise miss it, and
                // in revision 3 no server ping comes to unblock it (see docs/protocol.md)
                await Task.Delay(WebSocketOpenDelayMs, session.Aborted).ContinueWith(static _ => { }, TaskScheduler.Default);
            }

            if (context.Features.Get<IConnectionDetachFeature>() is { } detach)
            {
                // the raw path: the connection middleware runs the WebSocket, the request's objects are let go
                detach.Detach(new WebSocketTransport(session, stream, Options.MaxPayload, detach.AbortConnection, session.Request, protocol, deflate).RunAsync);
                return;
            }

            await new WebSocketTransport(session, stream, Options.MaxPayload, context, session.Request, protocol, deflate).RunAsync();
        }
        else
        {
            await session.Polling!.HandlePollAsync(context);
        }
    }

    /// <summary>How long an Engine.IO 3 session that begins on WebSocket waits after the 101 before its open packet.</summary>
    internal const int WebSocketOpenDelayMs = 20;

    private bool OffersWebSocket(bool isWebSocket) => !isWebSocket && Options.AllowUpgrades && Options.AllowWebSocket;

    internal void OnSessionClosing(EngineSocket session, EngineCloseReason reason, string? description)
    {
        try
        {
            LogClosed(session.Id, session.Transport, reason.ToWire(), LogText.Bound(description));
        }
        catch (Exception)
        {
            // a failing log provider must not keep the session from closing
        }
    }

    internal void OnSessionClosed(EngineSocket session, EngineCloseReason reason)
    {
        try
        {
            SessionClosed?.Invoke(session, reason);
        }
        catch (Exception ex)
        {
            LogListenerFailure(ex, session.Id);
        }
    }

    internal void Forget(EngineSocket session)
    {
        if (_sessions.TryRemove(new KeyValuePair<string, EngineSocket>(session.Id, session)) && session.IsWebSocket)
        {
            Interlocked.Decrement(ref _webSocketCount);
        }
    }

    /// <summary>The client closed this session with a close packet over polling: one crossing poll gets a noop.</summary>
    internal void RememberClosedPoll(string sid) => _closedPolls.Add(sid);

    /// <summary>The session's final poll was answered (it was waiting): later polls get 400.</summary>
    internal void ForgetClosedPoll(string sid) => _closedPolls.Remove(sid);

    /// <summary>Closed polling sessions remembered now (for tests).</summary>
    internal int ClosedPollCount => _closedPolls.Count;

    /// <summary>The heartbeat sweep (for tests).</summary>
    internal HeartbeatSweep Heartbeat => _heartbeat;

    internal void CountUpgrade() => Interlocked.Increment(ref _webSocketCount);

    /// <summary>A 20-character URL-safe random id (120 bits), like engine.io's base64id.</summary>
    internal static string NewId()
    {
        Span<byte> bytes = stackalloc byte[15];
        RandomNumberGenerator.Fill(bytes);
        return Convert.ToBase64String(bytes).Replace('+', '-').Replace('/', '_');
    }

    private void ApplyCors(HttpContext context)
    {
        var origins = Options.CorsOrigins;
        if (origins.Count == 0)
        {
            return;
        }

        var origin = context.Request.Headers.Origin.ToString();
        var headers = context.Response.Headers;
        var any = origins.Contains("*");
        if (any && !Options.CorsCredentials)
        {
            headers.AccessControlAllowOrigin = "*";
            return;
        }

        if (origin.Length > 0 && (any || origins.Contains(origin, StringComparer.OrdinalIgnoreCase)))
        {
            headers.AccessControlAllowOrigin = origin;
            headers.Vary = "Origin";
            if (Options.CorsCredentials)
            {
                headers.AccessControlAllowCredentials = "true";
            }
        }
    }

    private static void WritePreflight(HttpContext context)
    {
        var headers = context.Response.Headers;
        headers.AccessControlAllowMethods = "GET,POST";
        var requested = context.Request.Headers.AccessControlRequestHeaders.ToString();
        if (requested.Length > 0)
        {
            headers.AccessControlAllowHeaders = requested;
            headers.Append("Vary", "Access-Control-Request-Headers");
        }

        context.Response.StatusCode = StatusCodes.Status204NoContent;
    }
}

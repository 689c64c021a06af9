namespace Evolution.Events.EngineIO;

/// <summary>The closed set of handshake/request error codes of Engine.IO (same numbers as engine.io's Server.errors).</summary>
internal enum EngineErrorCode
{
    UnknownTransport = 0,
    UnknownSid = 1,
    BadHandshakeMethod = 2,
    BadRequest = 3,
    Forbidden = 4,
    UnsupportedProtocolVersion = 5,
}

internal static class EngineErrors
{
    public static string Message(EngineErrorCode code) => code switch
    {
        EngineErrorCode.UnknownTransport => "Transport unknown",
        EngineErrorCode.UnknownSid => "Session ID unknown",
        EngineErrorCode.BadHandshakeMethod => "Bad handshake method",
        EngineErrorCode.BadRequest => "Bad request",
        EngineErrorCode.Forbidden => "Forbidden",
        EngineErrorCode.UnsupportedProtocolVersion => "Unsupported protocol version",
        _ => "Bad request",
    };
}

/// <summary>Why a session closed: a closed set, named as engine.io names them.</summary>
public enum EngineCloseReason
{
    /// <summary>The client closed (close packet, WebSocket close, aborted poll).</summary>
    TransportClose,

    /// <summary>A transport failed (socket error, overlapping polls, oversized payload).</summary>
    TransportError,

    /// <summary>The client answered no ping within pingTimeout (revision 3: sent no ping within pingInterval + pingTimeout).</summary>
    PingTimeout,

    /// <summary>The client sent something that is not Engine.IO or not the upper protocol.</summary>
    ParseError,

    /// <summary>The server closed the session on purpose.</summary>
    ForcedClose,

    /// <summary>The server closed every session because it is stopping (<see cref="EngineIOServer.CloseAll"/>).</summary>
    ServerShuttingDown,

    /// <summary>The bounded outbound queue overflowed: the client does not read fast enough.</summary>
    SlowConsumer,
}

internal static class EngineCloseReasons
{
    public static string ToWire(this EngineCloseReason reason) => reason switch
    {
        EngineCloseReason.TransportClose => "transport close",
        EngineCloseReason.TransportError => "transport error",
        EngineCloseReason.PingTimeout => "ping timeout",
        EngineCloseReason.ParseError => "parse error",
        EngineCloseReason.ForcedClose => "forced close",
        EngineCloseReason.ServerShuttingDown => "server shutting down",
        EngineCloseReason.SlowConsumer => "slow consumer",
        _ => "transport error",
    };
}

using Evolution.Events.EngineIO;

namespace Evolution.Events.SocketIO;

/// <summary>The closed set of reasons a socket disconnects, worded as socket.io words them.</summary>
public static class DisconnectReason
{
    /// <summary>The server disconnected the socket (<see cref="Socket.Disconnect"/>).</summary>
    public const string ServerNamespaceDisconnect = "server namespace disconnect";

    /// <summary>The client disconnected the socket (<c>socket.disconnect()</c>).</summary>
    public const string ClientNamespaceDisconnect = "client namespace disconnect";

    /// <summary>The server is stopping.</summary>
    public const string ServerShuttingDown = "server shutting down";

    /// <summary>The client did not answer the heartbeat in time.</summary>
    public const string PingTimeout = "ping timeout";

    /// <summary>The client closed the connection (or the network did).</summary>
    public const string TransportClose = "transport close";

    /// <summary>The connection failed (an I/O error, overlapping polls, an oversized payload).</summary>
    public const string TransportError = "transport error";

    /// <summary>The client sent a packet that could not be decoded.</summary>
    public const string ParseError = "parse error";

    /// <summary>socket.io's <c>forced close</c>; this server reports its own closes as <see cref="ForcedServerClose"/>, it is in the set because socket.io's recoverable reasons name it.</summary>
    public const string ForcedClose = "forced close";

    /// <summary>The server closed the whole connection (<c>Disconnect(close: true)</c>, no namespace joined in time, <see cref="EngineSocket.Close()"/>).</summary>
    public const string ForcedServerClose = "forced server close";

    /// <summary>The connection's outbound queue overflowed: the client does not read fast enough.</summary>
    public const string SlowConsumer = "slow consumer";

    /// <summary>
    /// The reasons after which connection state recovery keeps the session (socket.io's
    /// <c>RECOVERABLE_DISCONNECT_REASONS</c>): never after a client or server namespace disconnect.
    /// </summary>
    public static bool IsRecoverable(string reason) => reason is TransportError or TransportClose or ForcedClose
        or PingTimeout or ServerShuttingDown or ForcedServerClose;

    /// <summary>The socket's disconnect reason for the way its Engine.IO session closed.</summary>
    public static string From(EngineCloseReason reason) => reason switch
    {
        EngineCloseReason.TransportClose => TransportClose,
        EngineCloseReason.PingTimeout => PingTimeout,
        EngineCloseReason.ParseError => ParseError,
        EngineCloseReason.ForcedClose => ForcedServerClose,
        EngineCloseReason.ServerShuttingDown => ServerShuttingDown,
        EngineCloseReason.SlowConsumer => SlowConsumer,
        _ => TransportError,
    };
}

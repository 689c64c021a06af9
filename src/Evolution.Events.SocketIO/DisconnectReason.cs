using Evolution.Events.EngineIO;

namespace Evolution.Events.SocketIO;

/// <summary>The closed set of reasons a socket disconnects, worded as socket.io words them.</summary>
public static class DisconnectReason
{
    public const string ServerNamespaceDisconnect = "server namespace disconnect";
    public const string ClientNamespaceDisconnect = "client namespace disconnect";
    public const string ServerShuttingDown = "server shutting down";
    public const string PingTimeout = "ping timeout";
    public const string TransportClose = "transport close";
    public const string TransportError = "transport error";
    public const string ParseError = "parse error";
    public const string ForcedClose = "forced close";
    public const string ForcedServerClose = "forced server close";
    public const string SlowConsumer = "slow consumer";

    /// <summary>
    /// The reasons after which connection state recovery keeps the session (socket.io's
    /// <c>RECOVERABLE_DISCONNECT_REASONS</c>): never after a client or server namespace disconnect.
    /// </summary>
    public static bool IsRecoverable(string reason) => reason is TransportError or TransportClose or ForcedClose
        or PingTimeout or ServerShuttingDown or ForcedServerClose;

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

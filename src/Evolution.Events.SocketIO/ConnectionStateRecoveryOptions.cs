namespace Evolution.Events.SocketIO;

/// <summary>
/// Connection state recovery (socket.io 4.6+'s <c>connectionStateRecovery</c>): after an unexpected
/// disconnection (transport close or error, ping timeout, server shutting down, forced close) the
/// socket's id, rooms and <see cref="Socket.Data"/> are kept for <see cref="MaxDisconnectionDuration"/>,
/// and every EVENT broadcast through the adapter (no ack, not volatile) carries an offset as its last
/// argument and is kept too. A client that reconnects in time with <c>{ pid, offset }</c> in its CONNECT
/// auth (the stock socket.io-client adds them by itself) gets its session back and every broadcast it
/// missed, in order, once (<see cref="Socket.Recovered"/>). With <c>{ pid }</c> alone (the client received
/// no broadcast yet) it recovers every broadcast since the socket joined, where socket.io starts afresh.
/// </summary>
public sealed class ConnectionStateRecoveryOptions
{
    /// <summary>How long a session and the broadcast packets are kept. Default 2 minutes (socket.io's default).</summary>
    public TimeSpan MaxDisconnectionDuration { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Skip the namespace's middlewares when a session is recovered. Default false: the middlewares run
    /// again, and a refusal restores nothing (e.g. a credential revoked during the disconnection).
    /// </summary>
    public bool SkipMiddlewares { get; set; }

    /// <summary>
    /// Broadcast packets kept per namespace at most; past it the oldest are dropped (a client whose
    /// offset is older then gets a fresh session). Default 10,000.
    /// </summary>
    public int MaxPacketsPerNamespace { get; set; } = 10_000;

    /// <summary>
    /// Bytes of broadcast packets (text and binary attachments) kept per namespace at most; past it the
    /// oldest are dropped. Default 16 MiB.
    /// </summary>
    public long MaxBytesPerNamespace { get; set; } = 16L * 1024 * 1024;

    /// <summary>
    /// Bytes of broadcast packets kept over all namespaces at most. Past it, a namespace's new packet first
    /// displaces that namespace's oldest ones; one that would still not fit is delivered but not kept (its
    /// clients then get a fresh session if they drop before it). Default 256 MiB.
    /// </summary>
    public long MaxBytesTotal { get; set; } = 256L * 1024 * 1024;
}

using Evolution.Events.SocketIO.Protocol;

namespace Evolution.Events.SocketIO.Adapters;

/// <summary>Who a broadcast goes to: sockets in any of <see cref="Rooms"/> (all when empty), minus those in any of <see cref="Except"/>.</summary>
public sealed record BroadcastOptions(IReadOnlySet<string> Rooms, IReadOnlySet<string> Except, BroadcastFlags Flags = BroadcastFlags.None)
{
    public static BroadcastOptions All { get; } = new(new HashSet<string>(), new HashSet<string>());
}

[Flags]
public enum BroadcastFlags
{
    None = 0,

    /// <summary>Dropped for a socket whose queue is not empty (may be lost).</summary>
    Volatile = 1,

    /// <summary>Only this node's sockets (no scale-out publish).</summary>
    Local = 2,
}

/// <summary>
/// The one seam for rooms and broadcast of a namespace (socket.io-adapter's shape). The in-memory
/// adapter serves one node; a scale-out adapter also publishes the already-encoded packet to the
/// other nodes, which deliver it to their own sockets.
/// </summary>
public interface IAdapter
{
    void AddAll(string socketId, IEnumerable<string> rooms);

    void Del(string socketId, string room);

    void DelAll(string socketId);

    /// <summary>Writes an encoded packet to every matching socket. Only enqueues: never waits for a client.</summary>
    void Broadcast(EncodedPacket packet, BroadcastOptions options);

    /// <summary>Ids of this node's sockets in any of the rooms (all sockets when empty).</summary>
    IReadOnlyCollection<string> Sockets(IReadOnlySet<string> rooms);

    /// <summary>The rooms a socket of this node is in.</summary>
    IReadOnlyCollection<string> SocketRooms(string socketId);

    /// <summary>The rooms that have at least one socket on this node.</summary>
    IReadOnlyCollection<string> Rooms { get; }

    /// <summary>
    /// Connection state recovery: keeps a socket's session after a recoverable disconnection, for
    /// <see cref="ConnectionStateRecoveryOptions.MaxDisconnectionDuration"/> (socket.io-adapter's
    /// <c>persistSession</c>). Called only when recovery is on. The default keeps nothing.
    /// </summary>
    ValueTask PersistSessionAsync(PersistedSession session) => ValueTask.CompletedTask;

    /// <summary>
    /// Connection state recovery: claims the session of <paramref name="pid"/> (it recovers once) when it has
    /// not expired and every broadcast of this namespace after <paramref name="offset"/> is still kept
    /// (socket.io-adapter's <c>restoreSession</c>; the missed packets are read afterwards with
    /// <see cref="MissedPacketsAsync"/>, once the socket receives live broadcasts). The default knows no session.
    /// </summary>
    ValueTask<SessionRestoreResult> RestoreSessionAsync(string pid, string offset) => ValueTask.FromResult(SessionRestoreResult.Unknown);

    /// <summary>
    /// Connection state recovery without a client offset (a CONNECT with <c>pid</c> only: the client received
    /// no broadcast): like <see cref="RestoreSessionAsync(string, string)"/> from the session's
    /// <see cref="PersistedSession.JoinOffset"/>, the point where the socket joined (a session without one is
    /// too late). The missed packets are then read with <see cref="MissedPacketsAsync"/> from that join point.
    /// The default knows no session.
    /// </summary>
    ValueTask<SessionRestoreResult> RestoreSessionAsync(string pid) => ValueTask.FromResult(SessionRestoreResult.Unknown);

    /// <summary>
    /// Connection state recovery: the kept broadcasts of this namespace after <paramref name="offset"/> that a
    /// socket in <paramref name="rooms"/> would have received, oldest first; null when some of them are no
    /// longer kept. The default keeps none (null).
    /// </summary>
    ValueTask<IReadOnlyList<EncodedPacket>?> MissedPacketsAsync(string offset, IReadOnlyCollection<string> rooms) =>
        ValueTask.FromResult<IReadOnlyList<EncodedPacket>?>(null);
}

/// <summary>Makes the adapter of each namespace (one per namespace).</summary>
public interface IAdapterFactory
{
    IAdapter Create(Namespace nsp);
}

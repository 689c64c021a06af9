using System.Text.Json.Nodes;
using Evolution.Events.SocketIO.Protocol;

namespace Evolution.Events.SocketIO.Adapters;

/// <summary>Who a broadcast goes to: sockets in any of <see cref="Rooms"/> (all when empty), minus those in any of <see cref="Except"/>.</summary>
public sealed record BroadcastOptions(IReadOnlySet<string> Rooms, IReadOnlySet<string> Except, BroadcastFlags Flags = BroadcastFlags.None)
{
    /// <summary>Every socket of the namespace, no room excluded, no flag.</summary>
    public static BroadcastOptions All { get; } = new(new HashSet<string>(), new HashSet<string>());
}

/// <summary>Modifiers of a broadcast (socket.io's <c>volatile</c> and <c>local</c> flags).</summary>
[Flags]
public enum BroadcastFlags
{
    /// <summary>A plain broadcast: every matching socket on every node.</summary>
    None = 0,

    /// <summary>Dropped for a socket whose queue is not empty (may be lost).</summary>
    Volatile = 1,

    /// <summary>Only this node's sockets (no scale-out publish).</summary>
    Local = 2,
}

/// <summary>
/// The one seam between a namespace and its cluster (socket.io-adapter's shape): rooms, broadcast (with and
/// without acks), the operations on selected sockets (fetch, join, leave, disconnect), server-side events, the
/// recovery store, and the adapter's own lifecycle. The in-memory adapter serves one node; a scale-out adapter
/// also carries every cluster-wide operation to the other nodes (the broadcast as its already-encoded packet),
/// which apply it to their own sockets and answer where an answer is awaited.
/// </summary>
public interface IAdapter
{
    /// <summary>
    /// Called once by the server when it made this adapter for its namespace, before the namespace is used
    /// (socket.io-adapter's <c>init</c>): e.g. subscribe to the cluster's channels. The namespace's connects wait for
    /// it to finish (at most 5 seconds, once), so that no socket joins before the adapter receives the cluster's
    /// broadcasts. The default does nothing.
    /// </summary>
    ValueTask InitAsync() => ValueTask.CompletedTask;

    /// <summary>
    /// Called once by the server when the namespace goes (an emptied dynamic child removed) or the server closes
    /// (socket.io-adapter's <c>close</c>): release what <see cref="InitAsync"/> took. The default does nothing.
    /// </summary>
    ValueTask CloseAsync() => ValueTask.CompletedTask;

    /// <summary>The number of nodes in the cluster, this one included (1 for a single node).</summary>
    ValueTask<int> ServerCountAsync();

    /// <summary>Adds this node's socket <paramref name="socketId"/> to <paramref name="rooms"/> (socket.io-adapter's <c>addAll</c>).</summary>
    void AddAll(string socketId, IEnumerable<string> rooms);

    /// <summary>Removes this node's socket from one room (socket.io-adapter's <c>del</c>).</summary>
    void Del(string socketId, string room);

    /// <summary>Removes this node's socket from every room, when it leaves the namespace (socket.io-adapter's <c>delAll</c>).</summary>
    void DelAll(string socketId);

    /// <summary>Writes an encoded packet to every matching socket. Only enqueues: never waits for a client.</summary>
    void Broadcast(EncodedPacket packet, BroadcastOptions options);

    /// <summary>
    /// A broadcast whose every receiving socket is asked for an acknowledgement (<paramref name="packet"/> was encoded
    /// with the ack id <paramref name="ackId"/>). Each node calls <paramref name="clientCount"/> once with the number
    /// of its sockets the packet was written to, then <paramref name="ack"/> once per answer (the arguments of the
    /// client's ack). Answers later than <paramref name="timeout"/> may be dropped. Only enqueues: never waits for a client.
    /// </summary>
    void BroadcastWithAck(EncodedPacket packet, long ackId, BroadcastOptions options, TimeSpan timeout, Action<int> clientCount, Action<JsonNode?[]> ack);

    /// <summary>The sockets that <paramref name="options"/> selects, on every node (this node's as <see cref="Socket"/>s).</summary>
    ValueTask<IReadOnlyList<IClusterSocket>> FetchSocketsAsync(BroadcastOptions options);

    /// <summary>Makes the sockets that <paramref name="options"/> selects, on every node, join <paramref name="rooms"/>.</summary>
    void AddSockets(BroadcastOptions options, IReadOnlyCollection<string> rooms);

    /// <summary>Makes the sockets that <paramref name="options"/> selects, on every node, leave <paramref name="rooms"/>.</summary>
    void DelSockets(BroadcastOptions options, IReadOnlyCollection<string> rooms);

    /// <summary>Disconnects the sockets that <paramref name="options"/> selects, on every node (with <paramref name="close"/>, their connections).</summary>
    void DisconnectSockets(BroadcastOptions options, bool close);

    /// <summary>
    /// Sends a server-side event to this namespace on the other nodes (not this one), where
    /// <see cref="Namespace.DispatchServerSideEvent"/> runs its handlers. A single node has no one to send to.
    /// </summary>
    void ServerSideEmit(string eventName, IReadOnlyList<object?> args);

    /// <summary>
    /// <see cref="ServerSideEmit"/> that waits for one answer from each other node (expected: <see cref="ServerCountAsync"/>
    /// minus one), each the arguments of that node's ack. Throws <see cref="BroadcastAckTimeoutException"/> (carrying the
    /// answers received) past <paramref name="timeout"/>. A single node completes at once with no answers.
    /// </summary>
    Task<IReadOnlyList<JsonNode?[]>> ServerSideEmitWithAckAsync(string eventName, IReadOnlyList<object?> args, TimeSpan timeout, CancellationToken cancellationToken = default);

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
    /// Connection state recovery: runs <paramref name="connect"/> (the socket starts receiving this namespace's
    /// broadcasts) serialized with this node's delivery of broadcasts, and returns the socket's join point: the
    /// offset of the newest broadcast delivered before it (every later one reaches the socket, none up to it did),
    /// or null when there is none to give. Kept in the session as <see cref="PersistedSession.JoinOffset"/>.
    /// The default runs <paramref name="connect"/> and knows no join point.
    /// </summary>
    string? ConnectAtJoinPoint(Action connect)
    {
        connect();
        return null;
    }

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
    /// <summary>Makes the adapter of <paramref name="nsp"/>; the server then calls its <see cref="IAdapter.InitAsync"/>.</summary>
    IAdapter Create(Namespace nsp);
}

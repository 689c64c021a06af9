using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Evolution.Events.SocketIO.Protocol;

namespace Evolution.Events.SocketIO.Adapters;

/// <summary>
/// Rooms and broadcast for one node. Membership changes take a short lock (no I/O under it);
/// broadcasts read lock-free and only enqueue the shared encoded packet on each socket. Each
/// socket's own room (its id) is implicit: it is resolved through the namespace's sockets, so a
/// socket that joins no room costs the adapter nothing.
/// </summary>
public class InMemoryAdapter : IAdapter
{
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, byte>> _rooms = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, byte>> _sids = new(StringComparer.Ordinal);
    private readonly object _sync = new();

    /// <summary>The single-node adapter of <paramref name="nsp"/> (also the base of the scale-out adapters, which add the publishing).</summary>
    public InMemoryAdapter(Namespace nsp) => Namespace = nsp;

    /// <summary>The namespace whose rooms this adapter keeps.</summary>
    public Namespace Namespace { get; }

    /// <summary>The named rooms with members (sockets' own rooms are not listed).</summary>
    public IReadOnlyCollection<string> Rooms => _rooms.Keys.ToArray();

    /// <summary>
    /// A socket joined a named room on this node (socket.io-adapter's <c>join-room</c>: raised once per room the
    /// socket was not in yet; never for a socket's own room), with the room and the socket id. Raised after the
    /// membership change, outside the adapter's lock. Handlers must not block.
    /// </summary>
    public event Action<string, string>? RoomJoined;

    /// <summary>
    /// A socket left a named room on this node (socket.io-adapter's <c>leave-room</c>, including the rooms it leaves
    /// when it disconnects), with the room and the socket id; as <see cref="RoomJoined"/>.
    /// </summary>
    public event Action<string, string>? RoomLeft;

    /// <inheritdoc />
    public void AddAll(string socketId, IEnumerable<string> rooms)
    {
        List<string>? joined = null;
        lock (_sync)
        {
            ConcurrentDictionary<string, byte>? mine = null;
            foreach (var room in rooms)
            {
                if (room == socketId)
                {
                    continue;
                }

                mine ??= _sids.GetOrAdd(socketId, static _ => new ConcurrentDictionary<string, byte>(StringComparer.Ordinal));
                mine[room] = 0;
                if (!_rooms.TryGetValue(room, out var members))
                {
                    members = new ConcurrentDictionary<string, byte>(StringComparer.Ordinal);
                    _rooms[room] = members;
                    OnRoomCreated(room);
                }

                if (members.TryAdd(socketId, 0) && RoomJoined is not null)
                {
                    (joined ??= []).Add(room);
                }
            }
        }

        Raise(RoomJoined, joined, socketId);
    }

    /// <inheritdoc />
    public void Del(string socketId, string room)
    {
        bool left;
        lock (_sync)
        {
            if (_sids.TryGetValue(socketId, out var mine))
            {
                mine.TryRemove(room, out _);
            }

            left = RemoveFromRoom(socketId, room);
        }

        if (left && RoomLeft is { } handler)
        {
            Raise(handler, [room], socketId);
        }
    }

    /// <inheritdoc />
    public void DelAll(string socketId)
    {
        List<string>? left = null;
        lock (_sync)
        {
            if (!_sids.TryRemove(socketId, out var mine))
            {
                return;
            }

            foreach (var room in mine.Keys)
            {
                if (RemoveFromRoom(socketId, room) && RoomLeft is not null)
                {
                    (left ??= []).Add(room);
                }
            }
        }

        Raise(RoomLeft, left, socketId);
    }

    private void Raise(Action<string, string>? handler, List<string>? rooms, string socketId)
    {
        if (handler is null || rooms is null)
        {
            return;
        }

        foreach (var room in rooms)
        {
            try
            {
                handler(room, socketId);
            }
            catch (Exception ex)
            {
                Namespace.Server.LogHandlerFailure(ex, "room membership", socketId);
            }
        }
    }

    /// <summary>
    /// Writes the packet to every matching socket. With connection state recovery on, an event without an
    /// ack that is not volatile first gets its offset (appended as its last argument, one copy per
    /// broadcast) and is kept in the server's recovery store.
    /// </summary>
    public virtual void Broadcast(EncodedPacket packet, BroadcastOptions options)
    {
        if (Namespace.Server.RecoveryStore is { } store && (options.Flags & BroadcastFlags.Volatile) == 0 && packet.IsEventWithoutAck)
        {
            store.Broadcast(Namespace.Name, packet, options, DeliverLocal);
            return;
        }

        DeliverLocal(packet, options);
    }

    /// <inheritdoc />
    public virtual ValueTask PersistSessionAsync(PersistedSession session)
    {
        Namespace.Server.RecoveryStore?.Persist(Namespace.Name, session);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public virtual ValueTask<SessionRestoreResult> RestoreSessionAsync(string pid, string offset) =>
        ValueTask.FromResult(Namespace.Server.RecoveryStore?.Restore(Namespace.Name, pid, offset) ?? SessionRestoreResult.Unknown);

    /// <inheritdoc />
    public virtual ValueTask<SessionRestoreResult> RestoreSessionAsync(string pid) =>
        ValueTask.FromResult(Namespace.Server.RecoveryStore?.Restore(Namespace.Name, pid, null) ?? SessionRestoreResult.Unknown);

    /// <inheritdoc />
    public virtual ValueTask<IReadOnlyList<EncodedPacket>?> MissedPacketsAsync(string offset, IReadOnlyCollection<string> rooms) =>
        ValueTask.FromResult(Namespace.Server.RecoveryStore?.Missed(Namespace.Name, offset, rooms));

    /// <summary>
    /// Whether a socket of this namespace that received the broadcasts up to <paramref name="offset"/> lost nothing
    /// since on this node: every later broadcast is still kept in the server's recovery store (false while recovery
    /// is off). For a scale-out adapter that keeps sessions elsewhere and the missed packets here.
    /// </summary>
    protected bool IsRecoverableFrom(string offset) => Namespace.Server.RecoveryStore?.Covers(Namespace.Name, offset) == true;
    /// <summary>With connection state recovery, the newest offset of the server's recovery store, taken under its namespace lock.</summary>
    public virtual string? ConnectAtJoinPoint(Action connect)
    {
        if (Namespace.Server.RecoveryStore is { } store)
        {
            return store.Join(Namespace.Name, connect);
        }

        connect();
        return null;
    }

    /// <summary>One node: the cluster is this server.</summary>
    public virtual ValueTask<int> ServerCountAsync() => ValueTask.FromResult(1);

    /// <summary>Writes the packet to this node's matching sockets, each awaiting its ack until the timeout.</summary>
    public virtual void BroadcastWithAck(EncodedPacket packet, long ackId, BroadcastOptions options, TimeSpan timeout, Action<int> clientCount, Action<JsonNode?[]> ack)
    {
        var isVolatile = (options.Flags & BroadcastFlags.Volatile) != 0;
        var sockets = LocalSockets(options);
        var count = 0;

        // one timer for the whole broadcast (not one per socket): past it, each socket's pending ack is forgotten
        var expiry = sockets.Count == 0 ? CancellationToken.None : new CancellationTokenSource(timeout).Token;
        foreach (var socket in sockets)
        {
            if (!socket.Connected)
            {
                continue;
            }

            var pending = socket.ExpectAck(ackId);
            count++;
            _ = AwaitAckAsync(socket, ackId, pending.Task, ack, expiry);
            socket.Deliver(packet, isVolatile);
        }

        clientCount(count);
    }

    private static async Task AwaitAckAsync(Socket socket, long ackId, Task<JsonNode?[]> answer, Action<JsonNode?[]> ack, CancellationToken expiry)
    {
        JsonNode?[] args;
        try
        {
            args = await answer.WaitAsync(expiry).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // no answer in time, or the socket went: the emitter's timeout reports what came
            socket.ForgetAck(ackId);
            return;
        }

        ack(args);
    }

    /// <summary>This node's sockets that <paramref name="options"/> selects.</summary>
    public virtual ValueTask<IReadOnlyList<IClusterSocket>> FetchSocketsAsync(BroadcastOptions options) =>
        ValueTask.FromResult<IReadOnlyList<IClusterSocket>>(LocalSockets(options));

    /// <inheritdoc />
    public virtual void AddSockets(BroadcastOptions options, IReadOnlyCollection<string> rooms)
    {
        foreach (var socket in LocalSockets(options))
        {
            AddAll(socket.Id, rooms);
        }
    }

    /// <inheritdoc />
    public virtual void DelSockets(BroadcastOptions options, IReadOnlyCollection<string> rooms)
    {
        foreach (var socket in LocalSockets(options))
        {
            foreach (var room in rooms)
            {
                Del(socket.Id, room);
            }
        }
    }

    /// <inheritdoc />
    public virtual void DisconnectSockets(BroadcastOptions options, bool close)
    {
        foreach (var socket in LocalSockets(options))
        {
            socket.Disconnect(close);
        }
    }

    /// <summary>One node: there is no other node to send to.</summary>
    public virtual void ServerSideEmit(string eventName, IReadOnlyList<object?> args)
    {
    }

    /// <summary>One node: no other node answers, so this completes at once with no answers.</summary>
    public virtual Task<IReadOnlyList<JsonNode?[]>> ServerSideEmitWithAckAsync(string eventName, IReadOnlyList<object?> args, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<JsonNode?[]>>([]);

    /// <summary>Nothing to set up for one node.</summary>
    public virtual ValueTask InitAsync() => ValueTask.CompletedTask;

    /// <summary>Nothing to release for one node (the recovery store belongs to the server).</summary>
    public virtual ValueTask CloseAsync() => ValueTask.CompletedTask;

    /// <summary>
    /// A named room got its first member on this node (socket.io-adapter's <c>create-room</c>; not a socket's own
    /// room). Called under the adapter's membership lock: do no I/O here, only start it. The default does nothing.
    /// </summary>
    protected virtual void OnRoomCreated(string room)
    {
    }

    /// <summary>A named room lost its last member on this node (<c>delete-room</c>); as <see cref="OnRoomCreated"/>.</summary>
    protected virtual void OnRoomDeleted(string room)
    {
    }

    /// <summary>This node's connected sockets that <paramref name="options"/> selects (rooms, except), each once.</summary>
    protected List<Socket> LocalSockets(BroadcastOptions options)
    {
        var found = new List<Socket>();
        var except = options.Except.Count == 0 ? null : ExpandExcept(options.Except);
        if (options.Rooms.Count == 0)
        {
            foreach (var socket in Namespace.SocketsById.Values)
            {
                if (except is null || !except.Contains(socket.Id))
                {
                    found.Add(socket);
                }
            }

            return found;
        }

        foreach (var id in Members(options.Rooms))
        {
            if ((except is null || !except.Contains(id)) && Namespace.SocketsById.TryGetValue(id, out var socket))
            {
                found.Add(socket);
            }
        }

        return found;
    }

    /// <summary>Writes an (already offset) packet to this node's matching sockets.</summary>
    protected internal void DeliverLocal(EncodedPacket packet, BroadcastOptions options)
    {
        var isVolatile = (options.Flags & BroadcastFlags.Volatile) != 0;
        var except = options.Except.Count == 0 ? null : ExpandExcept(options.Except);
        if (options.Rooms.Count == 0)
        {
            if (Namespace.StableSockets() is { } chunks)
            {
                foreach (var chunk in chunks)
                {
                    foreach (var socket in chunk)
                    {
                        if (except is null || !except.Contains(socket.Id))
                        {
                            socket.Deliver(packet, isVolatile);
                        }
                    }
                }

                return;
            }

            // the live dictionary, not a snapshot of it (Values would copy every socket and take all its locks per broadcast)
            foreach (var (id, socket) in Namespace.SocketsById)
            {
                if (except is null || !except.Contains(id))
                {
                    socket.Deliver(packet, isVolatile);
                }
            }

            return;
        }

        HashSet<string>? seen = options.Rooms.Count > 1 ? new HashSet<string>(StringComparer.Ordinal) : null;
        foreach (var room in options.Rooms)
        {
            if (Namespace.SocketsById.ContainsKey(room))
            {
                DeliverTo(room, packet, isVolatile, except, seen);
            }

            if (!_rooms.TryGetValue(room, out var members))
            {
                continue;
            }

            foreach (var member in members) // live, as above (Keys is a copy)
            {
                DeliverTo(member.Key, packet, isVolatile, except, seen);
            }
        }
    }

    private void DeliverTo(string id, EncodedPacket packet, bool isVolatile, HashSet<string>? except, HashSet<string>? seen)
    {
        if ((except is not null && except.Contains(id)) || (seen is not null && !seen.Add(id)))
        {
            return;
        }

        if (Namespace.SocketsById.TryGetValue(id, out var socket))
        {
            socket.Deliver(packet, isVolatile);
        }
    }

    /// <inheritdoc />
    public IReadOnlyCollection<string> Sockets(IReadOnlySet<string> rooms)
    {
        if (rooms.Count == 0)
        {
            return Namespace.SocketsById.Keys.ToArray();
        }

        return Members(rooms);
    }

    /// <inheritdoc />
    public IReadOnlyCollection<string> SocketRooms(string socketId)
    {
        if (!Namespace.SocketsById.ContainsKey(socketId))
        {
            return [];
        }

        return _sids.TryGetValue(socketId, out var mine) ? [socketId, .. mine.Keys] : [socketId];
    }

    private HashSet<string> ExpandExcept(IReadOnlySet<string> exceptRooms) => Members(exceptRooms);

    /// <summary>The sockets in any of the rooms, own rooms included.</summary>
    private HashSet<string> Members(IEnumerable<string> rooms)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var room in rooms)
        {
            if (Namespace.SocketsById.ContainsKey(room))
            {
                ids.Add(room);
            }

            if (_rooms.TryGetValue(room, out var members))
            {
                ids.UnionWith(members.Keys);
            }
        }

        return ids;
    }

    /// <summary>Removes the socket from the room; true if it was a member.</summary>
    private bool RemoveFromRoom(string socketId, string room)
    {
        if (!_rooms.TryGetValue(room, out var members) || !members.TryRemove(socketId, out _))
        {
            return false;
        }

        if (members.IsEmpty && _rooms.TryRemove(new KeyValuePair<string, ConcurrentDictionary<string, byte>>(room, members)))
        {
            OnRoomDeleted(room);
        }

        return true;
    }
}

/// <summary>Makes an <see cref="InMemoryAdapter"/> per namespace: the default, for a single node.</summary>
public sealed class InMemoryAdapterFactory : IAdapterFactory
{
    /// <inheritdoc />
    public IAdapter Create(Namespace nsp) => new InMemoryAdapter(nsp);
}

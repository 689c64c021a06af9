using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Evolution.Events.SocketIO.Adapters;
using Evolution.Events.SocketIO.Protocol;

namespace Evolution.Events.SocketIO;

/// <summary>
/// One client's presence in one namespace: its handlers, its rooms, its acks in both directions.
/// Everything it sends goes through its connection's bounded outbound queue.
/// </summary>
public sealed class Socket : IClusterSocket
{
    // made on first use: an idle socket of a broadcast-only server carries none of them
    private Dictionary<string, SocketEventHandler[]>? _handlers;
    private ConcurrentDictionary<long, TaskCompletionSource<JsonNode?[]>>? _pendingAcks;
    private ConcurrentDictionary<string, object?>? _data;
    private SocketEventHandler[] _anyHandlers = [];
    private int _connected;

    // connection state recovery: a recovered socket buffers live broadcasts while its missed packets are read
    private const int Joining = 2;
    private const int MaxJoinBuffer = 10_000;
    private List<EncodedPacket>? _joinBuffer;
    private bool _joinBufferOverflow;

    internal Socket(Namespace nsp, Client client, Handshake handshake, PersistedSession? session = null, bool withPid = false)
    {
        Namespace = nsp;
        Client = client;
        Handshake = handshake;
        if (session is null)
        {
            Id = EngineIO.EngineIOServer.NewId();
            Pid = withPid ? EngineIO.EngineIOServer.NewId() : null;
        }
        else
        {
            Id = session.Sid;
            Pid = session.Pid;
            _data = session.Data;
            JoinOffset = session.JoinOffset;
            Recovered = true;
        }
    }

    public string Id { get; }

    /// <summary>
    /// True when this socket is a recovered session (connection state recovery): same <see cref="Id"/>,
    /// rooms and <see cref="Data"/> as before the disconnection, and every missed broadcast was replayed.
    /// Set before the middlewares run; false again if the missed packets turned out to be gone.
    /// </summary>
    public bool Recovered { get; private set; }

    /// <summary>The private session id (connection state recovery), secret between this client and the server.</summary>
    internal string? Pid { get; private set; }

    /// <summary>Connection state recovery: the join point kept in the session (<see cref="PersistedSession.JoinOffset"/>).</summary>
    internal string? JoinOffset { get; set; }

    public Namespace Namespace { get; }

    public Handshake Handshake { get; }

    /// <summary>Free storage for the application (e.g. who authenticated).</summary>
    public ConcurrentDictionary<string, object?> Data =>
        _data ?? Interlocked.CompareExchange(ref _data, new ConcurrentDictionary<string, object?>(StringComparer.Ordinal), null) ?? _data;

    public bool Connected => Volatile.Read(ref _connected) == 1;

    /// <summary>The Engine.IO transport now in use (<c>polling</c> or <c>websocket</c>).</summary>
    public string Transport => Client.Connection.Transport;

    public IReadOnlyCollection<string> Rooms => Namespace.Adapter.SocketRooms(Id);

    internal Client Client { get; }

    /// <summary>The Engine.IO session this socket rides on (shared by the connection's sockets in every namespace).</summary>
    public EngineIO.EngineSocket Connection => Client.Connection;

    /// <summary>Raised once, after the socket left its namespace, with the reason.</summary>
    public event Action<Socket, string>? Disconnected;

    public void On(string eventName, SocketEventHandler handler)
    {
        lock (this)
        {
            var handlers = new Dictionary<string, SocketEventHandler[]>(_handlers ?? [], StringComparer.Ordinal);
            handlers[eventName] = handlers.TryGetValue(eventName, out var existing) ? [.. existing, handler] : [handler];
            Volatile.Write(ref _handlers, handlers);
        }
    }

    public void On(string eventName, Action<SocketEvent> handler) => On(eventName, e =>
    {
        handler(e);
        return ValueTask.CompletedTask;
    });

    /// <summary>Called for every event the client emits, before the named handlers.</summary>
    public void OnAny(SocketEventHandler handler)
    {
        lock (this)
        {
            _anyHandlers = [.. _anyHandlers, handler];
        }
    }

    /// <summary>Emits an event to this client. Returns false when it was not queued (disconnected, or its queue was full).</summary>
    public bool Emit(string eventName, params object?[] args) =>
        Connected && Client.Write(SocketPacketEncoder.Event(Namespace.Name, eventName, args));

    /// <summary>Emits and waits for the client's acknowledgement; throws <see cref="TimeoutException"/> past the timeout.</summary>
    public async Task<JsonNode?[]> EmitWithAckAsync(string eventName, object?[] args, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        // ack ids are unique in the namespace (socket.io's nsp._ids): a broadcast with acks shares one id
        var id = Namespace.NextAckId();
        var pending = ExpectAck(id);
        var pendingAcks = _pendingAcks!;
        try
        {
            if (!Connected || !Client.Write(SocketPacketEncoder.Event(Namespace.Name, eventName, args, id)))
            {
                throw new InvalidOperationException($"socket {Id} is not connected");
            }

            return await pending.Task.WaitAsync(timeout, cancellationToken);
        }
        finally
        {
            pendingAcks.TryRemove(id, out _);
        }
    }

    /// <summary>
    /// Registers an awaited ack of this id (a broadcast with acks wrote, or is about to write, the packet). The
    /// task fails when the socket disconnects; the caller removes the entry with <see cref="ForgetAck"/> when it stops waiting.
    /// </summary>
    internal TaskCompletionSource<JsonNode?[]> ExpectAck(long id)
    {
        var pending = new TaskCompletionSource<JsonNode?[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        var pendingAcks = _pendingAcks
            ?? Interlocked.CompareExchange(ref _pendingAcks, new ConcurrentDictionary<long, TaskCompletionSource<JsonNode?[]>>(), null)
            ?? _pendingAcks;
        pendingAcks[id] = pending;
        return pending;
    }

    internal void ForgetAck(long id) => _pendingAcks?.TryRemove(id, out _);

    IReadOnlyDictionary<string, object?> IClusterSocket.Data => Data;

    void IClusterSocket.Emit(string eventName, params object?[] args) => Emit(eventName, args);

    public void Join(string room) => Namespace.Adapter.AddAll(Id, [room]);

    public void Join(IEnumerable<string> rooms) => Namespace.Adapter.AddAll(Id, rooms);

    public void Leave(string room) => Namespace.Adapter.Del(Id, room);

    /// <summary>Targets the other sockets in these rooms (this one excluded).</summary>
    public BroadcastOperator To(string room) => new BroadcastOperator(Namespace).To(room).Except(Id);

    /// <summary>Targets every other socket of the namespace.</summary>
    public BroadcastOperator Broadcast => new BroadcastOperator(Namespace).Except(Id);

    /// <summary>Leaves the namespace (DISCONNECT sent to the client); with <paramref name="close"/>, closes the whole connection.</summary>
    public void Disconnect(bool close = false)
    {
        if (!Connected)
        {
            return;
        }

        Client.Write(SocketPacketEncoder.Disconnect(Namespace.Name));
        OnClose(DisconnectReason.ServerNamespaceDisconnect);
        if (close)
        {
            Client.Close();
        }
    }

    internal void MarkConnected()
    {
        // CONNECT first, then connected: no broadcast can be queued ahead of the CONNECT packet
        Client.Write(SocketPacketEncoder.Connect(Namespace.Name, Id, Pid));
        Interlocked.CompareExchange(ref _connected, 1, 0);
    }

    /// <summary>Recovery: from now until <see cref="CompleteRecovery"/>, broadcasts are buffered, not written.</summary>
    internal void BeginRecovery() => Volatile.Write(ref _connected, Joining);

    /// <summary>
    /// Recovery: writes CONNECT, the missed packets, then the buffered live broadcasts that were not among
    /// them (same offset), and marks the socket connected, under the buffer's lock so no live broadcast
    /// overtakes them. <paramref name="missed"/> null: the missed packets are gone, so the client gets a new
    /// pid (it sees <c>recovered === false</c>) and only live broadcasts. Returns false when it did not recover.
    /// </summary>
    internal bool CompleteRecovery(IReadOnlyList<EncodedPacket>? missed, string newPid)
    {
        lock (this)
        {
            if (missed is null || _joinBufferOverflow)
            {
                Recovered = false;
                Pid = newPid;
            }

            Client.Write(SocketPacketEncoder.Connect(Namespace.Name, Id, Pid));
            HashSet<string>? replayed = null;
            if (Recovered)
            {
                replayed = new HashSet<string>(StringComparer.Ordinal);
                foreach (var packet in missed!)
                {
                    Client.Write(packet);
                    if (packet.Offset is { } offset)
                    {
                        replayed.Add(offset);
                    }
                }
            }

            foreach (var packet in _joinBuffer ?? [])
            {
                if (replayed is null || packet.Offset is not { } offset || !replayed.Contains(offset))
                {
                    Client.Write(packet);
                }
            }

            _joinBuffer = null;
            Interlocked.CompareExchange(ref _connected, 1, Joining);
            return Recovered;
        }
    }

    /// <summary>Delivers a broadcast packet (already encoded). Never waits.</summary>
    internal void Deliver(EncodedPacket packet, bool isVolatile)
    {
        var state = Volatile.Read(ref _connected);
        if (state == Joining)
        {
            lock (this)
            {
                if (Volatile.Read(ref _connected) == Joining)
                {
                    if (!isVolatile)
                    {
                        _joinBuffer ??= [];
                        if (_joinBuffer.Count < MaxJoinBuffer)
                        {
                            _joinBuffer.Add(packet);
                        }
                        else
                        {
                            _joinBufferOverflow = true;
                        }
                    }

                    return;
                }
            }

            state = Volatile.Read(ref _connected);
        }

        if (state == 1)
        {
            Client.Write(packet, isVolatile);
        }
    }

    internal bool SendAck(long id, object?[] args) =>
        Connected && Client.Write(SocketPacketEncoder.Ack(Namespace.Name, id, args));

    internal void OnPacket(SocketPacket packet)
    {
        switch (packet.Type)
        {
            case SocketPacketType.Event or SocketPacketType.BinaryEvent:
                OnEvent(packet);
                break;
            case SocketPacketType.Ack or SocketPacketType.BinaryAck:
                OnAck(packet);
                break;
            case SocketPacketType.Disconnect:
                OnClose(DisconnectReason.ClientNamespaceDisconnect);
                break;
            default:
                Client.CloseForError($"unexpected {packet.Type} packet for a connected namespace");
                break;
        }
    }

    /// <summary>Leaves the namespace for this reason; runs once.</summary>
    internal void OnClose(string reason)
    {
        if (Interlocked.Exchange(ref _connected, 0) == 0)
        {
            return;
        }

        foreach (var pending in _pendingAcks?.Values ?? [])
        {
            pending.TrySetException(new InvalidOperationException($"socket disconnected ({reason})"));
        }

        // recovery: the rooms are read before they are left; the session is kept once this socket is gone
        PersistedSession? session = Pid is { } pid && Namespace.Server.Options.ConnectionStateRecovery is not null
            && DisconnectReason.IsRecoverable(reason)
            ? new PersistedSession(Id, pid, [.. Namespace.Adapter.SocketRooms(Id)], _data) { JoinOffset = JoinOffset }
            : null;
        Namespace.Adapter.DelAll(Id);
        Namespace.Remove(this);
        Client.Remove(this);
        Namespace.Server.LogDisconnected(Id, EngineIO.LogText.Bound(Namespace.Name), EngineIO.LogText.Bound(reason));
        if (session is not null)
        {
            Persist(session);
        }

        // after the session is kept: an emptied child namespace stays while a session may come back to it
        Namespace.Server.RemoveIfEmptyChild(Namespace);

        try
        {
            Disconnected?.Invoke(this, reason);
        }
        catch (Exception ex)
        {
            Namespace.Server.LogHandlerFailure(ex, "disconnect", Id);
        }
    }

    private void Persist(PersistedSession session)
    {
        try
        {
            var task = Namespace.Adapter.PersistSessionAsync(session);
            if (!task.IsCompletedSuccessfully)
            {
                _ = ObserveAsync(task, "persist session");
            }
        }
        catch (Exception ex)
        {
            Namespace.Server.LogHandlerFailure(ex, "persist session", Id);
        }
    }

    private void OnEvent(SocketPacket packet)
    {
        var array = (JsonArray)packet.Data!;
        var first = array[0]!.AsValue();
        var name = first.TryGetValue<string>(out var s) ? s : first.ToJsonString();
        var args = new JsonNode?[array.Count - 1];
        for (var i = 1; i < array.Count; i++)
        {
            args[i - 1] = array[i];
        }

        var e = new SocketEvent(this, name, args, packet.Id);
        foreach (var handler in Volatile.Read(ref _anyHandlers))
        {
            Invoke(handler, e);
        }

        if (Volatile.Read(ref _handlers) is { } all && all.TryGetValue(name, out var handlers))
        {
            foreach (var handler in handlers)
            {
                Invoke(handler, e);
            }
        }
    }

    private void OnAck(SocketPacket packet)
    {
        if (packet.Id is { } id && _pendingAcks is { } pendingAcks && pendingAcks.TryRemove(id, out var pending))
        {
            var array = (JsonArray)packet.Data!;
            pending.TrySetResult([.. array]);
        }
    }

    private void Invoke(SocketEventHandler handler, SocketEvent e)
    {
        try
        {
            var task = handler(e);
            if (!task.IsCompletedSuccessfully)
            {
                _ = ObserveAsync(task, e.Name);
            }
        }
        catch (Exception ex)
        {
            Namespace.Server.LogHandlerFailure(ex, EngineIO.LogText.Bound(e.Name), Id);
        }
    }

    private async Task ObserveAsync(ValueTask task, string eventName)
    {
        try
        {
            await task;
        }
        catch (Exception ex)
        {
            Namespace.Server.LogHandlerFailure(ex, EngineIO.LogText.Bound(eventName), Id);
        }
    }
}

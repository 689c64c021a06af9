using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
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
    private OutgoingEventListener[] _anyOutgoing = [];
    private SocketPacketMiddleware[] _packetMiddlewares = [];
    private int _connected;

    // connection state recovery: a recovered socket buffers live broadcasts while its missed packets are read
    private const int Joining = 2;
    private static readonly SocketPacketLimits OutgoingLimits = new(int.MaxValue, int.MaxValue);
    private const int MaxJoinBuffer = 10_000;
    private List<EncodedPacket>? _joinBuffer;
    private bool _joinBufferOverflow;

    internal Socket(Namespace nsp, Client client, Handshake handshake, PersistedSession? session = null, bool withPid = false)
    {
        Namespace = nsp;
        Client = client;
        Handshake = handshake;
        if (session is null && client.IsProtocol4)
        {
            // socket.io 4 for a Socket.IO 2.x client: the Engine.IO id ("/") or "<nsp>#<engine id>", as that client
            // expects; such a client sends no pid, so none is issued
            Id = nsp.Name == SocketPacket.MainNamespace ? client.Connection.Id : nsp.Name + "#" + client.Connection.Id;
        }
        else if (session is null)
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

    /// <summary>The socket id, random and unique (its own room); kept across a connection state recovery.</summary>
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

    /// <summary>The namespace the socket joined.</summary>
    public Namespace Namespace { get; }

    /// <summary>The connection's handshake: headers, query, address, auth payload.</summary>
    public Handshake Handshake { get; }

    /// <summary>Free storage for the application (e.g. who authenticated).</summary>
    public ConcurrentDictionary<string, object?> Data =>
        _data ?? Interlocked.CompareExchange(ref _data, new ConcurrentDictionary<string, object?>(StringComparer.Ordinal), null) ?? _data;

    /// <summary>Whether the socket is still in its namespace.</summary>
    public bool Connected => System.Threading.Volatile.Read(ref _connected) == 1;

    /// <summary>The Engine.IO transport now in use (<c>polling</c> or <c>websocket</c>).</summary>
    public string Transport => Client.Connection.Transport;

    /// <summary>The rooms the socket is in, its own room included.</summary>
    public IReadOnlyCollection<string> Rooms => Namespace.Adapter.SocketRooms(Id);

    internal Client Client { get; }

    /// <summary>The Engine.IO session this socket rides on (shared by the connection's sockets in every namespace).</summary>
    public EngineIO.EngineSocket Connection => Client.Connection;

    /// <summary>
    /// Raised once when the socket is about to leave its namespace, with the reason, before it leaves its rooms:
    /// <see cref="Rooms"/> still lists them in the handler (socket.io's <c>disconnecting</c>). <see cref="Connected"/>
    /// is already false (the socket takes no more emits); broadcasts to its rooms (<c>socket.To(room)</c>) still work.
    /// </summary>
    public event Action<Socket, string>? Disconnecting;

    /// <summary>Raised once, after the socket left its namespace, with the reason.</summary>
    public event Action<Socket, string>? Disconnected;

    /// <summary>
    /// Raised when a packet middleware (<see cref="Use"/>) rejects an incoming event, with its error (socket.io's
    /// server-side <c>error</c> event: nothing is sent to the client). Without a handler the error is logged.
    /// </summary>
    public event Action<Socket, Exception>? Error;

    /// <summary>Adds a handler for the client's <paramref name="eventName"/> events; handlers run in the order added.</summary>
    public void On(string eventName, SocketEventHandler handler)
    {
        lock (this)
        {
            var handlers = new Dictionary<string, SocketEventHandler[]>(_handlers ?? [], StringComparer.Ordinal);
            handlers[eventName] = handlers.TryGetValue(eventName, out var existing) ? [.. existing, handler] : [handler];
            System.Threading.Volatile.Write(ref _handlers, handlers);
        }
    }

    /// <summary>Adds a synchronous handler for the client's <paramref name="eventName"/> events.</summary>
    public void On(string eventName, Action<SocketEvent> handler) => On(eventName, e =>
    {
        handler(e);
        return ValueTask.CompletedTask;
    });

    /// <summary>
    /// Adds a listener called for every event the client emits, before the packet middlewares and the named
    /// handlers, after the listeners already added (socket.io's <c>onAny</c>).
    /// </summary>
    public void OnAny(SocketEventHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        lock (this)
        {
            _anyHandlers = [.. _anyHandlers, handler];
        }
    }

    /// <summary>Adds a listener for every incoming event, called before the listeners already added (socket.io's <c>prependAny</c>).</summary>
    public void PrependAny(SocketEventHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        lock (this)
        {
            _anyHandlers = [handler, .. _anyHandlers];
        }
    }

    /// <summary>Removes the first registration of this incoming listener (socket.io's <c>offAny(listener)</c>).</summary>
    public void OffAny(SocketEventHandler handler)
    {
        lock (this)
        {
            _anyHandlers = Without(_anyHandlers, handler);
        }
    }

    /// <summary>Removes every incoming listener added with <see cref="OnAny"/> / <see cref="PrependAny"/> (socket.io's <c>offAny()</c>).</summary>
    public void OffAny()
    {
        lock (this)
        {
            _anyHandlers = [];
        }
    }

    /// <summary>The incoming catch-all listeners, in call order (socket.io's <c>listenersAny()</c>).</summary>
    public IReadOnlyList<SocketEventHandler> ListenersAny() => System.Threading.Volatile.Read(ref _anyHandlers);

    /// <summary>
    /// Adds a listener called for every event sent to this client (its own emits and the broadcasts that reach it),
    /// before the packet is queued, after the listeners already added (socket.io's <c>onAnyOutgoing</c>). Arguments
    /// are the emitted objects for this socket's emits, and <see cref="JsonNode"/>s (binary ones as placeholders)
    /// for broadcasts, which are encoded once for every socket and decoded again only for sockets with such a listener.
    /// </summary>
    public void OnAnyOutgoing(OutgoingEventListener listener)
    {
        ArgumentNullException.ThrowIfNull(listener);
        lock (this)
        {
            _anyOutgoing = [.. _anyOutgoing, listener];
        }
    }

    /// <summary>Adds an outgoing catch-all listener called before those already added (socket.io's <c>prependAnyOutgoing</c>).</summary>
    public void PrependAnyOutgoing(OutgoingEventListener listener)
    {
        ArgumentNullException.ThrowIfNull(listener);
        lock (this)
        {
            _anyOutgoing = [listener, .. _anyOutgoing];
        }
    }

    /// <summary>Removes the first registration of this outgoing listener (socket.io's <c>offAnyOutgoing(listener)</c>).</summary>
    public void OffAnyOutgoing(OutgoingEventListener listener)
    {
        lock (this)
        {
            _anyOutgoing = Without(_anyOutgoing, listener);
        }
    }

    /// <summary>Removes every outgoing catch-all listener (socket.io's <c>offAnyOutgoing()</c>).</summary>
    public void OffAnyOutgoing()
    {
        lock (this)
        {
            _anyOutgoing = [];
        }
    }

    /// <summary>The outgoing catch-all listeners, in call order (socket.io's <c>listenersAnyOutgoing()</c>).</summary>
    public IReadOnlyList<OutgoingEventListener> ListenersAnyOutgoing() => System.Threading.Volatile.Read(ref _anyOutgoing);

    /// <summary>
    /// Adds a packet middleware, run in the order added for every incoming event after the <see cref="OnAny"/>
    /// listeners and before the named handlers (socket.io's <c>socket.use</c>). It calls <c>next(null)</c> to go on,
    /// <c>next(error)</c> to reject the event (the named handlers do not run; <see cref="Error"/> is raised on the
    /// server, the client is told nothing), or never calls it to drop the event silently. <c>next</c> may be called
    /// later, from any thread; only its first call counts. A middleware that throws rejects the event with that exception.
    /// </summary>
    public Socket Use(SocketPacketMiddleware middleware)
    {
        ArgumentNullException.ThrowIfNull(middleware);
        lock (this)
        {
            _packetMiddlewares = [.. _packetMiddlewares, middleware];
        }

        return this;
    }

    /// <summary>Flags for the next emit of this socket: it may be dropped (see <see cref="SocketOperator.Volatile"/>).</summary>
    public SocketOperator Volatile => new SocketOperator(this).Volatile;

    /// <summary>A timeout for <see cref="SocketOperator.EmitWithAckAsync"/> (socket.io's <c>socket.timeout(ms).emitWithAck(…)</c>).</summary>
    public SocketOperator Timeout(TimeSpan timeout) => new SocketOperator(this).Timeout(timeout);

    private static T[] Without<T>(T[] items, T item)
        where T : Delegate
    {
        var index = Array.IndexOf(items, item);
        return index < 0 ? items : [.. items[..index], .. items[(index + 1)..]];
    }

    /// <summary>Emits an event to this client. Returns false when it was not queued (disconnected, or its queue was full).</summary>
    public bool Emit(string eventName, params object?[] args) => EmitCore(eventName, args, isVolatile: false);

    /// <summary>
    /// Emits an event with one argument of type <typeparamref name="T"/>, serialized straight into the packet with
    /// <paramref name="typeInfo"/> (System.Text.Json source generation: no reflection, no boxing). A <c>byte[]</c>
    /// inside <typeparamref name="T"/> is written as whatever <paramref name="typeInfo"/> makes of it (base64 by
    /// default), not as a binary attachment: use <see cref="Emit(string, object?[])"/> to send binary.
    /// </summary>
    public bool Emit<T>(string eventName, T arg, JsonTypeInfo<T> typeInfo)
    {
        ArgumentNullException.ThrowIfNull(typeInfo);
        if (!Connected)
        {
            return false;
        }

        NotifyOutgoing(eventName, arg);
        return Client.Write(TypedEvent.Encode(Namespace.Name, eventName, arg, typeInfo));
    }

    /// <summary>
    /// Emits an event with one argument of type <typeparamref name="T"/>. A plain value type (a number, a struct, a
    /// record struct) is serialized straight into the packet through the generic serializer with the library's options
    /// (<see cref="JsonArguments.SerializerOptions"/>), not boxed; everything else (a reference type, whose argument
    /// needs no boxing, a <c>Nullable</c>, and the value types the untyped emit treats specially: <see cref="RawJson"/>,
    /// <see cref="JsonElement"/>, <c>ReadOnlyMemory&lt;byte&gt;</c> and <c>ArraySegment&lt;byte&gt;</c> as binary
    /// attachments) goes the way of <see cref="Emit(string, object?[])"/>, so a one-argument emit means what it always
    /// meant. For trimming/AOT, prefer the <see cref="JsonTypeInfo{T}"/> overload.
    /// </summary>
    public bool Emit<T>(string eventName, T arg)
    {
        if (!typeof(T).IsValueType || typeof(T) == typeof(RawJson) || typeof(T) == typeof(JsonElement)
            || typeof(T) == typeof(ReadOnlyMemory<byte>) || typeof(T) == typeof(ArraySegment<byte>) || Nullable.GetUnderlyingType(typeof(T)) is not null)
        {
            return EmitCore(eventName, [arg], isVolatile: false);
        }

        return Emit(eventName, arg, (JsonTypeInfo<T>)JsonArguments.SerializerOptions.GetTypeInfo(typeof(T)));
    }

    internal bool EmitCore(string eventName, object?[] args, bool isVolatile)
    {
        if (!Connected)
        {
            return false;
        }

        NotifyOutgoing(eventName, args);
        return Client.Write(SocketPacketEncoder.Event(Namespace.Name, eventName, args), isVolatile);
    }

    /// <summary>Emits and waits for the client's acknowledgement; throws <see cref="TimeoutException"/> past the timeout.</summary>
    public Task<JsonNode?[]> EmitWithAckAsync(string eventName, object?[] args, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        EmitWithAckCoreAsync(eventName, args, timeout, isVolatile: false, cancellationToken);

    internal async Task<JsonNode?[]> EmitWithAckCoreAsync(
        string eventName, object?[] args, TimeSpan timeout, bool isVolatile, CancellationToken cancellationToken)
    {
        // ack ids are unique in the namespace (socket.io's nsp._ids): a broadcast with acks shares one id
        var id = Namespace.NextAckId();
        var pending = ExpectAck(id);
        var pendingAcks = _pendingAcks!;
        try
        {
            if (!Connected)
            {
                throw new InvalidOperationException($"socket {Id} is not connected");
            }

            NotifyOutgoing(eventName, args);
            if (!Client.Write(SocketPacketEncoder.Event(Namespace.Name, eventName, args, id), isVolatile) && !isVolatile)
            {
                throw new InvalidOperationException($"socket {Id} is not connected");
            }

            // a dropped volatile emit gets no ack: it times out, as in socket.io
            return await pending.Task.WaitAsync(timeout, cancellationToken);
        }
        finally
        {
            pendingAcks.TryRemove(id, out _);
        }
    }

    private void NotifyOutgoing(string eventName, object?[] args)
    {
        var listeners = System.Threading.Volatile.Read(ref _anyOutgoing);
        if (listeners.Length > 0)
        {
            CallOutgoing(listeners, eventName, args);
        }
    }

    private void NotifyOutgoing<T>(string eventName, T arg)
    {
        var listeners = System.Threading.Volatile.Read(ref _anyOutgoing);
        if (listeners.Length > 0)
        {
            CallOutgoing(listeners, eventName, [arg]);
        }
    }

    private void CallOutgoing(OutgoingEventListener[] listeners, string eventName, IReadOnlyList<object?> args)
    {
        foreach (var listener in listeners)
        {
            try
            {
                listener(eventName, args);
            }
            catch (Exception ex)
            {
                Namespace.Server.LogHandlerFailure(ex, "any outgoing", Id);
            }
        }
    }

    /// <summary>A broadcast reaching a socket with outgoing listeners: its packet is decoded again for them.</summary>
    private void NotifyOutgoing(EncodedPacket packet)
    {
        var listeners = System.Threading.Volatile.Read(ref _anyOutgoing);
        if (listeners.Length == 0)
        {
            return;
        }

        // the Engine.IO text packet: '4' (message) then the Socket.IO packet
        var text = System.Text.Encoding.UTF8.GetString(packet.Text.Bytes.Span[1..]);
        if (!SocketPacketDecoder.TryDecode(text, OutgoingLimits, out var decoded, out _)
            || decoded!.Type is not (SocketPacketType.Event or SocketPacketType.BinaryEvent) || decoded.Data is not JsonArray { Count: > 0 } array)
        {
            return;
        }

        var first = array[0]!.AsValue();
        var name = first.TryGetValue<string>(out var s) ? s : first.ToJsonString();
        var args = new object?[array.Count - 1];
        for (var i = 1; i < array.Count; i++)
        {
            args[i - 1] = array[i];
        }

        CallOutgoing(listeners, name, args);
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

    /// <summary>Adds the socket to <paramref name="room"/>.</summary>
    public void Join(string room) => Namespace.Adapter.AddAll(Id, [room]);

    /// <summary>Adds the socket to every room of <paramref name="rooms"/>.</summary>
    public void Join(IEnumerable<string> rooms) => Namespace.Adapter.AddAll(Id, rooms);

    /// <summary>Removes the socket from <paramref name="room"/>.</summary>
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
        Client.Write(Client.IsProtocol4 ? SocketPacketEncoder.ConnectWithoutPayload(Namespace.Name) : SocketPacketEncoder.Connect(Namespace.Name, Id, Pid));
        Interlocked.CompareExchange(ref _connected, 1, 0);
    }

    /// <summary>Recovery: from now until <see cref="CompleteRecovery"/>, broadcasts are buffered, not written.</summary>
    internal void BeginRecovery() => System.Threading.Volatile.Write(ref _connected, Joining);

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
        var state = System.Threading.Volatile.Read(ref _connected);
        if (state == Joining)
        {
            lock (this)
            {
                if (System.Threading.Volatile.Read(ref _connected) == Joining)
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

            state = System.Threading.Volatile.Read(ref _connected);
        }

        if (state == 1)
        {
            NotifyOutgoing(packet);
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

        // socket.io's "disconnecting": the socket is still in its rooms
        try
        {
            Disconnecting?.Invoke(this, reason);
        }
        catch (Exception ex)
        {
            Namespace.Server.LogHandlerFailure(ex, "disconnecting", Id);
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
        foreach (var handler in Namespace.AnyHandlers)
        {
            Invoke(handler, e);
        }

        foreach (var handler in System.Threading.Volatile.Read(ref _anyHandlers))
        {
            Invoke(handler, e);
        }

        var middlewares = System.Threading.Volatile.Read(ref _packetMiddlewares);
        if (middlewares.Length == 0)
        {
            Dispatch(e);
        }
        else
        {
            RunMiddleware(middlewares, 0, e);
        }
    }

    /// <summary>socket.io's <c>run</c>: each middleware's <c>next</c> runs the following one; an error short-circuits.</summary>
    private void RunMiddleware(SocketPacketMiddleware[] middlewares, int index, SocketEvent e)
    {
        var called = 0;
        void Next(Exception? error)
        {
            if (Interlocked.Exchange(ref called, 1) != 0)
            {
                return;
            }

            if (error is not null)
            {
                OnError(error);
            }
            else if (index + 1 < middlewares.Length)
            {
                RunMiddleware(middlewares, index + 1, e);
            }
            else
            {
                Dispatch(e);
            }
        }

        try
        {
            middlewares[index](e, Next);
        }
        catch (Exception ex)
        {
            Next(ex);
        }
    }

    /// <summary>Runs the named handlers; an event whose middlewares finished after the disconnection is ignored, as in socket.io.</summary>
    private void Dispatch(SocketEvent e)
    {
        if (!Connected)
        {
            return;
        }

        if (System.Threading.Volatile.Read(ref _handlers) is { } all && all.TryGetValue(e.Name, out var handlers))
        {
            foreach (var handler in handlers)
            {
                Invoke(handler, e);
            }
        }
    }

    private void OnError(Exception error)
    {
        var handlers = Error;
        if (handlers is null)
        {
            Namespace.Server.LogHandlerFailure(error, "packet middleware (no Error handler)", Id);
            return;
        }

        try
        {
            handlers(this, error);
        }
        catch (Exception ex)
        {
            Namespace.Server.LogHandlerFailure(ex, "error", Id);
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

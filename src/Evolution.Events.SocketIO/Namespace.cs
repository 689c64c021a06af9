using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Evolution.Events.EngineIO;
using Evolution.Events.SocketIO.Adapters;

namespace Evolution.Events.SocketIO;

/// <summary>
/// A namespace: its middlewares, its connection handlers, its sockets and its adapter (rooms and
/// broadcast). Made by <see cref="SocketIOServer.Of(string)"/>, or on demand for a name that a
/// dynamic namespace admits (then it shares that parent's middlewares and handlers).
/// </summary>
public sealed class Namespace
{
    /// <summary>How long a connect waits for the adapter's init before it goes ahead (a cluster adapter whose server does not answer).</summary>
    internal static readonly TimeSpan AdapterStartWait = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<string, Socket> _sockets = new(StringComparer.Ordinal);

    // the sockets as arrays for broadcasts (walking an array is several times cheaper per socket than walking the
    // dictionary): made once the membership has held still from one broadcast to the next, dropped at every change;
    // in chunks of 4,096 (32 KiB), so that a big namespace's copy is not a large object
    private const int SocketChunk = 4096;
    private long _membership; // bumped after every add and remove
    private long _membershipAtLastBroadcast = -1;
    private SocketArray? _socketArray;
    private SocketMiddleware[] _middlewares = [];
    private Func<Socket, ValueTask>[] _connectionHandlers = [];
    private SocketEventHandler[] _anyHandlers = [];
    private JoinInterceptor[] _joinInterceptors = [];
    private Dictionary<string, ServerSideEventHandler[]> _serverSideHandlers = new(StringComparer.Ordinal);
    private long _ackIds;
    private int _adapterState;

    // done when the adapter's InitAsync is (or once a connect gave up waiting for it); a connect that finds the
    // namespace before StartAdapter ran waits too
    private readonly TaskCompletionSource _adapterStarted = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal Namespace(SocketIOServer server, string name, ParentNamespace? parent = null)
    {
        Server = server;
        Name = name;
        Parent = parent;
        Adapter = server.AdapterFactory.Create(this);
    }

    /// <summary>The namespace's name, e.g. <c>/</c> or <c>/chat</c>.</summary>
    public string Name { get; }

    /// <summary>The server this namespace belongs to.</summary>
    public SocketIOServer Server { get; }

    /// <summary>This namespace's adapter: its rooms, broadcasts and cluster operations.</summary>
    public IAdapter Adapter { get; }

    /// <summary>The dynamic namespace this one was made from, if any.</summary>
    public ParentNamespace? Parent { get; }

    /// <summary>This node's connected sockets, by id.</summary>
    public IReadOnlyDictionary<string, Socket> SocketsById => _sockets;

    /// <summary>The number of this node's sockets connected to the namespace.</summary>
    public int SocketCount => _sockets.Count;

    /// <summary>Whether a socket is registered here (lock-free).</summary>
    internal bool HasSockets => !_sockets.IsEmpty;

    /// <summary>
    /// True while a broadcast here may reach someone: a socket is connected, or (connection state recovery)
    /// a session of a socket that dropped is kept and would get the broadcast when it recovers.
    /// </summary>
    public bool HasSocketsOrSessions => !_sockets.IsEmpty || Server.RecoveryStore?.HasSessions(Name) == true;

    /// <summary>Adds a middleware run for every socket that connects to this namespace, in the order added; one that returns an error refuses the socket with a CONNECT_ERROR.</summary>
    public Namespace Use(SocketMiddleware middleware)
    {
        lock (_sockets)
        {
            _middlewares = [.. _middlewares, middleware];
        }

        return this;
    }

    /// <summary>Adds a handler run for every socket that joined this namespace (socket.io's <c>connection</c> event).</summary>
    public Namespace OnConnection(Func<Socket, ValueTask> handler)
    {
        lock (_sockets)
        {
            _connectionHandlers = [.. _connectionHandlers, handler];
        }

        return this;
    }

    /// <summary>Adds a synchronous handler run for every socket that joined this namespace.</summary>
    public Namespace OnConnection(Action<Socket> handler) => OnConnection(s =>
    {
        handler(s);
        return ValueTask.CompletedTask;
    });

    /// <summary>
    /// Adds a listener called for every event any socket of this namespace emits, before each socket's own
    /// <see cref="Socket.OnAny"/> listeners (python-socketio's namespace-wide catch-all handler): the same as adding
    /// it to each socket when it connects, without a registration kept per socket. Listeners of a dynamic parent
    /// (<see cref="ParentNamespace.OnAny"/>) run first.
    /// </summary>
    public Namespace OnAny(SocketEventHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        lock (_sockets)
        {
            _anyHandlers = [.. _anyHandlers, handler];
        }

        return this;
    }

    /// <summary>The namespace-wide any-listeners, a dynamic parent's first.</summary>
    internal SocketEventHandler[] AnyHandlers
    {
        get
        {
            var own = System.Threading.Volatile.Read(ref _anyHandlers);
            return Parent?.AnyHandlers is { Length: > 0 } inherited ? (own.Length == 0 ? inherited : [.. inherited, .. own]) : own;
        }
    }

    /// <summary>
    /// Wraps the moment a socket that passed the middlewares becomes connected (see <see cref="JoinInterceptor"/>):
    /// what the interceptor emits to the socket after <c>join()</c> returns is queued before any broadcast that
    /// the application serializes with the interceptor (e.g. under the same lock). Interceptors of a dynamic
    /// parent run first (outermost), then this namespace's, in the order added.
    /// </summary>
    public Namespace OnJoining(JoinInterceptor interceptor)
    {
        ArgumentNullException.ThrowIfNull(interceptor);
        lock (_sockets)
        {
            _joinInterceptors = [.. _joinInterceptors, interceptor];
        }

        return this;
    }

    /// <summary>A broadcast to the sockets in <paramref name="room"/>.</summary>
    public BroadcastOperator To(string room) => new BroadcastOperator(this).To(room);

    /// <summary>A broadcast to the sockets in any of <paramref name="rooms"/>.</summary>
    public BroadcastOperator To(IEnumerable<string> rooms) => new BroadcastOperator(this).To(rooms);

    /// <summary>A broadcast to every socket but those in <paramref name="room"/>.</summary>
    public BroadcastOperator Except(string room) => new BroadcastOperator(this).Except(room);

    /// <summary>A broadcast that a socket whose outbound queue is not empty misses (may be lost).</summary>
    public BroadcastOperator Volatile => new BroadcastOperator(this).Volatile;

    /// <summary>Every socket of the namespace on this node only (socket.io's <c>local</c>: nothing is published to other nodes).</summary>
    public BroadcastOperator Local => new BroadcastOperator(this).Local;

    /// <summary>Emits to every socket of the namespace: encoded once, enqueued on each, never waits.</summary>
    public void Emit(string eventName, params object?[] args) => new BroadcastOperator(this).Emit(eventName, args);

    /// <summary>Every socket of the namespace, with a timeout for <see cref="BroadcastOperator.EmitWithAckAsync"/>.</summary>
    public BroadcastOperator Timeout(TimeSpan timeout) => new BroadcastOperator(this).Timeout(timeout);

    /// <summary>Every socket of the namespace on every node (see <see cref="BroadcastOperator.FetchSocketsAsync"/>).</summary>
    public ValueTask<IReadOnlyList<IClusterSocket>> FetchSocketsAsync() => new BroadcastOperator(this).FetchSocketsAsync();

    /// <summary>
    /// Sends an event to this namespace on the other nodes of the cluster (their <see cref="OnServerSideEmit"/>
    /// handlers), not to clients; nothing happens on a single node. Goes through <see cref="IAdapter.ServerSideEmit"/>.
    /// </summary>
    public void ServerSideEmit(string eventName, params object?[] args)
    {
        ThrowIfReserved(eventName);
        Adapter.ServerSideEmit(eventName, args);
    }

    /// <summary>
    /// <see cref="ServerSideEmit"/> awaiting one answer per other node (see <see cref="IAdapter.ServerSideEmitWithAckAsync"/>):
    /// completes at once with no answers on a single node.
    /// </summary>
    public Task<IReadOnlyList<JsonNode?[]>> ServerSideEmitWithAckAsync(string eventName, object?[] args, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ThrowIfReserved(eventName);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);
        return Adapter.ServerSideEmitWithAckAsync(eventName, args, timeout, cancellationToken);
    }

    /// <summary>socket.io's reserved event names may not be emitted server-side (they would be mistaken for lifecycle events).</summary>
    private static void ThrowIfReserved(string eventName)
    {
        ArgumentNullException.ThrowIfNull(eventName);
        if (eventName is "connect" or "connect_error" or "disconnect" or "disconnecting" or "newListener" or "removeListener")
        {
            throw new ArgumentException($"\"{eventName}\" is a reserved event name", nameof(eventName));
        }
    }

    /// <summary>Handles a server-side event that another node of the cluster emitted to this namespace.</summary>
    public Namespace OnServerSideEmit(string eventName, ServerSideEventHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        lock (_sockets)
        {
            var handlers = new Dictionary<string, ServerSideEventHandler[]>(_serverSideHandlers, StringComparer.Ordinal);
            handlers[eventName] = handlers.TryGetValue(eventName, out var existing) ? [.. existing, handler] : [handler];
            _serverSideHandlers = handlers;
        }

        return this;
    }

    /// <summary>
    /// For adapters: runs this namespace's <see cref="OnServerSideEmit"/> handlers for an event that came from another
    /// node. <paramref name="ack"/> (set when that node awaits an answer) is passed to the handlers; a handler that
    /// throws is logged. Returns false when no handler handles the event.
    /// </summary>
    public bool DispatchServerSideEvent(string eventName, IReadOnlyList<JsonNode?> args, Action<object?[]>? ack)
    {
        if (!System.Threading.Volatile.Read(ref _serverSideHandlers).TryGetValue(eventName, out var handlers))
        {
            return false;
        }

        foreach (var handler in handlers)
        {
            try
            {
                handler(args, ack);
            }
            catch (Exception ex)
            {
                Server.LogHandlerFailure(ex, "server-side event " + eventName, Name);
            }
        }

        return true;
    }

    /// <summary>A new ack id, unique in this namespace (a broadcast with acks uses one id for every socket).</summary>
    internal long NextAckId() => Interlocked.Increment(ref _ackIds);

    /// <summary>Calls the adapter's <see cref="IAdapter.InitAsync"/> once (the server made this namespace and keeps it).</summary>
    internal void StartAdapter()
    {
        if (Interlocked.CompareExchange(ref _adapterState, 1, 0) == 0)
        {
            var init = Server.RunAdapterStep(Adapter.InitAsync, "adapter init", Name);
            if (init.IsCompleted)
            {
                _adapterStarted.TrySetResult();
            }
            else
            {
                init.ContinueWith(static (_, state) => ((TaskCompletionSource)state!).TrySetResult(), _adapterStarted,
                    CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }

            Server.OnNamespaceCreated(this);
        }
    }

    /// <summary>
    /// Waits (at most <see cref="AdapterStartWait"/>) for the adapter's <see cref="IAdapter.InitAsync"/>: a socket
    /// that connected before a cluster adapter had subscribed, or before a stream reader knew where to start, would
    /// miss the broadcasts made in between. Only a namespace's first connects ever wait, and only once: after
    /// <see cref="AdapterStartWait"/> they go ahead with a warning, and so does every later connect.
    /// </summary>
    private async Task WhenAdapterStartedAsync()
    {
        try
        {
            await _adapterStarted.Task.WaitAsync(AdapterStartWait);
        }
        catch (TimeoutException)
        {
            // waited once: later connects go ahead at once (the adapter retries on its own, e.g. its subscriptions);
            // the connect that ends the wait logs it, none if the init ended meanwhile
            if (_adapterStarted.TrySetResult())
            {
                Server.LogAdapterStartSlow(EngineIO.LogText.Bound(Name), (int)AdapterStartWait.TotalSeconds);
            }
        }
    }

    /// <summary>Calls the adapter's <see cref="IAdapter.CloseAsync"/> once (the namespace is removed, or the server closes).</summary>
    internal void CloseAdapter()
    {
        if (Interlocked.Exchange(ref _adapterState, 2) == 1)
        {
            Server.RunAdapterStep(Adapter.CloseAsync, "adapter close", Name);
        }
    }

    /// <summary>Disconnects every socket of the namespace (with <paramref name="close"/>, their whole connections).</summary>
    public void DisconnectSockets(bool close = false) => new BroadcastOperator(this).DisconnectSockets(close);

    /// <summary>
    /// Runs the middlewares and, unless one refuses, joins the socket. The caller got this namespace
    /// from <see cref="SocketIOServer.ResolveNamespace"/>, which counted this connect as pending.
    /// </summary>
    internal async ValueTask AddAsync(Client client, JsonObject auth, EngineRequest connectRequest)
    {
        try
        {
            await JoinAsync(client, auth, connectRequest);
        }
        finally
        {
            Server.EndPendingConnect(this);
        }
    }

    private async ValueTask JoinAsync(Client client, JsonObject auth, EngineRequest connectRequest)
    {
        if (!_adapterStarted.Task.IsCompleted)
        {
            await WhenAdapterStartedAsync();
        }

        var recovery = Server.Options.ConnectionStateRecovery;
        var (session, offset) = recovery is null || client.IsProtocol4 ? default : await RestoreAsync(auth);
        var socket = new Socket(this, client, new Handshake(client.Connection.Request, connectRequest, auth), session, withPid: recovery is not null);
        var refusal = session is not null && recovery!.SkipMiddlewares ? null : await RunMiddlewaresAsync(socket);
        if (refusal is not null)
        {
            if (session is not null)
            {
                Server.OnRecoveryAttempt(Name, Adapters.RecoveryOutcome.Refused);
            }

            Server.OnRefused(Name, refusal.Message, socket.Handshake.Address);
            client.Write(client.IsProtocol4
                ? Protocol.SocketPacketEncoder.ConnectErrorValue(Name, refusal.Data ?? refusal.Message) // socket.io 4: err.data || err.message
                : Protocol.SocketPacketEncoder.ConnectError(Name, refusal.Message, refusal.Data));
            return;
        }

        if (!client.IsOpen)
        {
            if (session is not null)
            {
                // the connection went while the middlewares ran: the claimed session stays for the next attempt
                await Adapter.PersistSessionAsync(session);
            }

            return;
        }

        if (session is not null)
        {
            await JoinRecoveredAsync(client, socket, session, offset!);
        }
        else
        {
            AddSocket(socket);
            client.Add(socket);
            Join(socket);
        }

        if (!client.IsOpen)
        {
            // the connection closed while the socket joined: its close went by without this socket
            socket.OnClose(DisconnectReason.TransportClose);
            return;
        }

        Server.LogConnected(socket.Id, EngineIO.LogText.Bound(Name), client.Connection.Transport, socket.Handshake.Address);
        await RunConnectionHandlersAsync(socket);
    }

    /// <summary>Marks the socket connected (its CONNECT queued), through the join interceptors if there are any.</summary>
    private void Join(Socket socket)
    {
        var interceptors = Parent is null ? _joinInterceptors : [.. Parent.JoinInterceptors, .. _joinInterceptors];
        Action join = () => Connect(socket);
        for (var i = interceptors.Length - 1; i >= 0; i--)
        {
            var interceptor = interceptors[i];
            var inner = join;
            join = () => Intercept(interceptor, socket, inner);
        }

        join();
    }

    /// <summary>
    /// Marks the socket connected; with connection state recovery, at an exact join point (serialized with
    /// the namespace's broadcasts), from which a client that received no broadcast recovers.
    /// </summary>
    private void Connect(Socket socket)
    {
        if (Server.RecoveryStore is not null && socket.Pid is not null)
        {
            socket.JoinOffset = Adapter.ConnectAtJoinPoint(socket.MarkConnected);
        }
        else
        {
            socket.MarkConnected();
        }
    }

    /// <summary>
    /// Runs one interceptor around <paramref name="inner"/>: a second <c>join()</c> throws; an interceptor that
    /// throws or returns without joining is logged, and the socket joins anyway (its client awaits the CONNECT).
    /// </summary>
    private void Intercept(JoinInterceptor interceptor, Socket socket, Action inner)
    {
        var joined = 0;
        void JoinOnce()
        {
            if (Interlocked.Exchange(ref joined, 1) != 0)
            {
                throw new InvalidOperationException("join() may be called only once");
            }

            inner();
        }

        try
        {
            interceptor(socket, JoinOnce);
        }
        catch (Exception ex)
        {
            Server.LogHandlerFailure(ex, "join interceptor", socket.Id);
        }

        if (System.Threading.Volatile.Read(ref joined) == 0)
        {
            Server.LogHandlerFailure(new InvalidOperationException("a join interceptor returned without calling join()"), "join interceptor", socket.Id);
            JoinOnce();
        }
    }

    /// <summary>
    /// Connection state recovery, first step: a CONNECT with a string <c>pid</c> claims the session kept under
    /// that pid, from the client's string <c>offset</c> or, without one (the client received no broadcast, so
    /// socket.io-client sends none), from the socket's join point: a deliberate difference from socket.io,
    /// which starts a fresh session then. Outcomes other than recovered are counted here; recovered is counted
    /// once the missed packets were read (<see cref="JoinRecoveredAsync"/>).
    /// </summary>
    private async ValueTask<(Adapters.PersistedSession? Session, string? Offset)> RestoreAsync(JsonObject auth)
    {
        if (auth["pid"] is not JsonValue pidValue || !pidValue.TryGetValue<string>(out var pid))
        {
            return default;
        }

        string? offset = null;
        if (auth["offset"] is { } offsetNode && (offsetNode is not JsonValue offsetValue || !offsetValue.TryGetValue<string>(out offset)))
        {
            // an offset that is not a string: no recovery, as before
            return default;
        }

        Adapters.SessionRestoreResult result;
        try
        {
            result = offset is null ? await Adapter.RestoreSessionAsync(pid) : await Adapter.RestoreSessionAsync(pid, offset);
        }
        catch (Exception ex)
        {
            Server.LogHandlerFailure(ex, "restore session", Name);
            result = Adapters.SessionRestoreResult.TooLate;
        }

        offset ??= result.Session?.JoinOffset;
        if (result.Session is null || offset is null)
        {
            Server.OnRecoveryAttempt(Name, result.Session is not null || result.Outcome == Adapters.RecoveryOutcome.Recovered
                ? Adapters.RecoveryOutcome.TooLate : result.Outcome);
            return default;
        }

        return (result.Session, offset);
    }

    /// <summary>
    /// Connection state recovery, second step: rooms back, the socket registered while it buffers live
    /// broadcasts, then the missed packets read and written before those (each exactly once).
    /// </summary>
    private async ValueTask JoinRecoveredAsync(Client client, Socket socket, Adapters.PersistedSession session, string offset)
    {
        Adapter.AddAll(socket.Id, session.Rooms);
        socket.BeginRecovery();
        AddSocket(socket);
        client.Add(socket);
        IReadOnlyList<Protocol.EncodedPacket>? missed;
        try
        {
            missed = await Adapter.MissedPacketsAsync(offset, session.Rooms);
        }
        catch (Exception ex)
        {
            Server.LogHandlerFailure(ex, "missed packets", Name);
            missed = null;
        }

        var recovered = CompleteAtJoinPoint(socket, missed);
        Server.OnRecoveryAttempt(Name, recovered ? Adapters.RecoveryOutcome.Recovered : Adapters.RecoveryOutcome.TooLate);
    }

    /// <summary>
    /// Completes a recovery under the namespace's broadcast lock: a socket that recovered keeps its previous
    /// join point; one that fell back to a fresh session joins at the newest offset (it gets every later broadcast).
    /// </summary>
    private bool CompleteAtJoinPoint(Socket socket, IReadOnlyList<Protocol.EncodedPacket>? missed)
    {
        var recovered = false;
        var joinedAt = Adapter.ConnectAtJoinPoint(() => recovered = socket.CompleteRecovery(missed, EngineIO.EngineIOServer.NewId()));
        if (!recovered || socket.JoinOffset is null)
        {
            socket.JoinOffset = joinedAt;
        }

        return recovered;
    }

    /// <summary>CONNECTs under way (middlewares running); guarded by the server's child lock.</summary>
    internal int PendingConnects { get; set; }

    /// <summary>Forgets the socket; the caller then lets an emptied child go (<see cref="SocketIOServer.RemoveIfEmptyChild"/>).</summary>
    internal void Remove(Socket socket)
    {
        if (_sockets.TryRemove(new KeyValuePair<string, Socket>(socket.Id, socket)))
        {
            MembershipChanged();
        }
    }

    /// <summary>
    /// This node's sockets as arrays (chunks of at most 4,096), for a broadcast to the whole namespace; null while the
    /// membership changes between broadcasts (the caller walks <see cref="SocketsById"/> instead, as every broadcast
    /// did before, so a connect storm allocates nothing here). The arrays are a snapshot taken after the last change:
    /// a socket that joins or leaves during the broadcast may or may not be in them, as with walking the dictionary.
    /// </summary>
    internal Socket[][]? StableSockets()
    {
        var membership = Interlocked.Read(ref _membership);
        if (System.Threading.Volatile.Read(ref _socketArray) is { } kept && kept.Membership == membership)
        {
            return kept.Sockets;
        }

        if (Interlocked.Exchange(ref _membershipAtLastBroadcast, membership) != membership)
        {
            return null; // changed since the last broadcast: no array yet
        }

        var chunks = _sockets.Select(entry => entry.Value).Chunk(SocketChunk).ToArray();
        if (Interlocked.Read(ref _membership) == membership)
        {
            System.Threading.Volatile.Write(ref _socketArray, new SocketArray(membership, chunks));
        }

        return chunks;
    }

    private void AddSocket(Socket socket)
    {
        _sockets[socket.Id] = socket;
        MembershipChanged();
    }

    private void MembershipChanged()
    {
        Interlocked.Increment(ref _membership);
        System.Threading.Volatile.Write(ref _socketArray, null); // a socket that left is not kept alive by the array
    }

    private sealed record SocketArray(long Membership, Socket[][] Sockets);

    private async ValueTask<ConnectError?> RunMiddlewaresAsync(Socket socket)
    {
        var chain = Parent is null ? _middlewares : [.. Parent.Middlewares, .. _middlewares];
        foreach (var middleware in chain)
        {
            try
            {
                if (await middleware(socket) is { } refusal)
                {
                    return refusal;
                }
            }
            catch (Exception ex)
            {
                Server.LogHandlerFailure(ex, "middleware", socket.Id);
                return new ConnectError("Internal server error");
            }
        }

        return null;
    }

    private async ValueTask RunConnectionHandlersAsync(Socket socket)
    {
        var handlers = Parent is null ? _connectionHandlers : [.. Parent.ConnectionHandlers, .. _connectionHandlers];
        foreach (var handler in handlers)
        {
            try
            {
                await handler(socket);
            }
            catch (Exception ex)
            {
                Server.LogHandlerFailure(ex, "connection", socket.Id);
            }
        }
    }
}

/// <summary>
/// A dynamic namespace: admits every name its predicate accepts, making a child <see cref="Namespace"/>
/// per name on first connection. Middlewares and connection handlers added here apply to every child;
/// an emit here goes to every child.
/// </summary>
public sealed class ParentNamespace
{
    private readonly SocketIOServer _server;
    private readonly Func<string, bool> _predicate;
    private readonly ConcurrentDictionary<string, Namespace> _children = new(StringComparer.Ordinal);
    private SocketMiddleware[] _middlewares = [];
    private Func<Socket, ValueTask>[] _connectionHandlers = [];
    private JoinInterceptor[] _joinInterceptors = [];
    private SocketEventHandler[] _anyHandlers = [];

    internal ParentNamespace(SocketIOServer server, Func<string, bool> predicate)
    {
        _server = server;
        _predicate = predicate;
    }

    /// <summary>The namespaces made so far for names the predicate accepted.</summary>
    public IReadOnlyCollection<Namespace> Children => _children.Values.ToArray();

    internal SocketMiddleware[] Middlewares => System.Threading.Volatile.Read(ref _middlewares);

    internal Func<Socket, ValueTask>[] ConnectionHandlers => System.Threading.Volatile.Read(ref _connectionHandlers);

    internal JoinInterceptor[] JoinInterceptors => System.Threading.Volatile.Read(ref _joinInterceptors);

    internal SocketEventHandler[] AnyHandlers => System.Threading.Volatile.Read(ref _anyHandlers);

    /// <summary>Adds a middleware run for the sockets of every child namespace, before the child's own.</summary>
    public ParentNamespace Use(SocketMiddleware middleware)
    {
        lock (_children)
        {
            _middlewares = [.. _middlewares, middleware];
        }

        return this;
    }

    /// <summary>Adds a handler run for every socket that joined any child namespace.</summary>
    public ParentNamespace OnConnection(Func<Socket, ValueTask> handler)
    {
        lock (_children)
        {
            _connectionHandlers = [.. _connectionHandlers, handler];
        }

        return this;
    }

    /// <summary>Adds a synchronous handler run for every socket that joined any child namespace.</summary>
    public ParentNamespace OnConnection(Action<Socket> handler) => OnConnection(s =>
    {
        handler(s);
        return ValueTask.CompletedTask;
    });

    /// <summary>Adds a listener called for every event any socket of any child namespace emits (see <see cref="Namespace.OnAny"/>).</summary>
    public ParentNamespace OnAny(SocketEventHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        lock (_children)
        {
            _anyHandlers = [.. _anyHandlers, handler];
        }

        return this;
    }

    /// <summary>Adds a <see cref="JoinInterceptor"/> for the sockets of every child (see <see cref="Namespace.OnJoining"/>).</summary>
    public ParentNamespace OnJoining(JoinInterceptor interceptor)
    {
        ArgumentNullException.ThrowIfNull(interceptor);
        lock (_children)
        {
            _joinInterceptors = [.. _joinInterceptors, interceptor];
        }

        return this;
    }

    /// <summary>Emits to every socket of every child namespace.</summary>
    public void Emit(string eventName, params object?[] args)
    {
        foreach (var child in _children.Values)
        {
            child.Emit(eventName, args);
        }
    }

    internal bool Admits(string name)
    {
        try
        {
            return _predicate(name);
        }
        catch (Exception ex)
        {
            _server.LogHandlerFailure(ex, "namespace predicate", EngineIO.LogText.Bound(name));
            return false;
        }
    }

    internal void AddChild(Namespace child) => _children[child.Name] = child;

    internal void RemoveChild(Namespace child) => _children.TryRemove(new KeyValuePair<string, Namespace>(child.Name, child));
}

/// <summary>
/// Called instead of marking a socket connected (after its middlewares accepted it, before its connection
/// handlers). The interceptor must call <paramref name="join"/> exactly once, synchronously, before it
/// returns: <c>join()</c> marks the socket connected and queues its CONNECT. Packets the interceptor emits
/// to <paramref name="socket"/> after <c>join()</c> returns follow the CONNECT and precede any broadcast the
/// application serializes with the interceptor (e.g. by emitting under the same lock): that broadcast either
/// ran before <c>join()</c> (and did not reach this socket) or runs after the interceptor returns.
/// Not called for a socket restored by connection state recovery: that one gets the packets it missed instead.
/// </summary>
public delegate void JoinInterceptor(Socket socket, Action join);

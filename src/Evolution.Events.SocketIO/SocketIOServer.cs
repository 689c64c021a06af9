using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using Evolution.Events.EngineIO;
using Evolution.Events.SocketIO.Adapters;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Evolution.Events.SocketIO;

/// <summary>
/// The Socket.IO 5 server: namespaces (static and dynamic) over an Engine.IO 4 server.
/// Serve it with <c>app.MapSocketIO()</c>; emit with <c>Of("/name").Emit(…)</c>.
/// </summary>
public sealed partial class SocketIOServer
{
    private readonly ConcurrentDictionary<string, Namespace> _namespaces = new(StringComparer.Ordinal);
    private readonly List<ParentNamespace> _parents = [];
    private readonly object _childLock = new();
    private readonly ILogger _logger;
    private readonly LinkedList<Client> _pending = new();

    /// <summary>A Socket.IO server with its Engine.IO server and main namespace; <paramref name="adapterFactory"/> defaults to <see cref="InMemoryAdapterFactory"/> (one node).</summary>
    public SocketIOServer(SocketIOOptions options, ILoggerFactory? loggerFactory = null, IAdapterFactory? adapterFactory = null)
    {
        Options = options;
        loggerFactory ??= NullLoggerFactory.Instance;
        _logger = loggerFactory.CreateLogger<SocketIOServer>();
        AdapterFactory = adapterFactory ?? new InMemoryAdapterFactory();
        RecoveryStore = options.ConnectionStateRecovery is { } recovery ? new RecoveryStore(recovery, OnSessionsExpired, name => _namespaces.TryGetValue(name, out var nsp) && nsp.HasSockets) : null;
        Recovery = new ConnectionStateRecoveryStatistics(RecoveryStore);
        Engine = new EngineIOServer(options.Engine, loggerFactory.CreateLogger<EngineIOServer>())
        {
            OnConnection = connection =>
            {
                var client = new Client(this, connection);
                OnConnectionOpened(connection);
                return client;
            },
        };
        Of(Protocol.SocketPacket.MainNamespace);
    }

    /// <summary>The options the server was made with.</summary>
    public SocketIOOptions Options { get; }

    /// <summary>The underlying Engine.IO server (socket.io's <c>io.engine</c>): sessions, counts, close events.</summary>
    public EngineIOServer Engine { get; }

    /// <summary>Makes each namespace's adapter.</summary>
    public IAdapterFactory AdapterFactory { get; }

    /// <summary>
    /// Raised when a namespace CONNECT is refused with a CONNECT_ERROR (unknown namespace, or a middleware's
    /// <see cref="ConnectError"/>), with the namespace and the refusal message. Handlers must not block.
    /// </summary>
    public event Action<string, string>? ConnectionRefused;

    /// <summary>
    /// Raised for every recovery attempt (a CONNECT with <c>pid</c> and <c>offset</c> while connection state
    /// recovery is on), with the namespace and the outcome. Handlers must not block.
    /// </summary>
    public event Action<string, RecoveryOutcome>? RecoveryAttempted;

    /// <summary>
    /// Raised when a namespace is made (by <see cref="Of(string)"/>, or on demand for a name a dynamic namespace admits;
    /// again if a dropped empty child is made anew), before any socket joins it: socket.io's <c>new_namespace</c>.
    /// The main namespace <c>/</c> exists before anyone can subscribe: read <see cref="Namespaces"/> after subscribing.
    /// Handlers must not block.
    /// </summary>
    public event Action<Namespace>? NamespaceCreated;

    /// <summary>
    /// Raised for every new Engine.IO connection (engine.io's <c>connection</c>), before it joins any namespace.
    /// Handlers must not block. See <see cref="EngineIOServer.SessionClosed"/> for its end.
    /// </summary>
    public event Action<EngineSocket>? ConnectionOpened;

    /// <summary>Connection state recovery figures: attempts by outcome, and the in-memory store's size.</summary>
    public ConnectionStateRecoveryStatistics Recovery { get; }

    /// <summary>The in-memory recovery store (server level: it outlives dropped namespaces); null while recovery is off.</summary>
    internal RecoveryStore? RecoveryStore { get; }

    /// <summary>The main namespace <c>/</c>.</summary>
    public Namespace Sockets => _namespaces[Protocol.SocketPacket.MainNamespace];

    /// <summary>Every namespace made so far (dynamic children included).</summary>
    public IReadOnlyCollection<Namespace> Namespaces => _namespaces.Values.ToArray();

    /// <summary>The namespace of that name, made if it does not exist.</summary>
    public Namespace Of(string name)
    {
        name = Normalize(name);
        var nsp = _namespaces.GetOrAdd(name, n => new Namespace(this, n));
        nsp.StartAdapter();
        return nsp;
    }

    /// <summary>A dynamic namespace: every name the predicate accepts is admitted, on demand.</summary>
    public ParentNamespace Of(Func<string, bool> predicate)
    {
        var parent = new ParentNamespace(this, predicate);
        lock (_parents)
        {
            _parents.Add(parent);
        }

        return parent;
    }

    /// <summary>A dynamic namespace: every name <paramref name="pattern"/> matches is admitted, on demand.</summary>
    public ParentNamespace Of(Regex pattern) => Of(pattern.IsMatch);

    /// <summary>
    /// Broadcasts an event to this node's sockets of the namespace <paramref name="namespaceName"/> (never published
    /// to other nodes, as <see cref="BroadcastFlags.Local"/>) with an offset chosen by the caller, for a cluster whose
    /// nodes each deliver a shared, ordered stream of events to their own sockets: when every node gives the same
    /// event the same offset, a client recovers on any node (<see cref="ConnectionStateRecoveryOptions"/>).
    /// <para>
    /// With connection state recovery on, the packet is kept in this server's recovery store even when the namespace
    /// has no socket here or does not exist (yet), so a client that recovers here later finds it. Offsets must grow:
    /// an <paramref name="offset"/> not after the namespace's newest kept one is refused (false, nothing sent). Call
    /// <see cref="ContinueOffsets"/> for every step of the sequence first, so that a gap (steps this node never saw)
    /// refuses recoveries from before it instead of losing packets silently. Without recovery the offset is ignored.
    /// </para>
    /// <para>
    /// Offsets given here and offsets this server issues itself (<see cref="Namespace.Emit"/>) share one scale:
    /// don't mix both in one namespace.
    /// </para>
    /// </summary>
    /// <returns>False when the offset was refused (not increasing); true otherwise.</returns>
    public bool EmitLocalAt(string namespaceName, long offset, string eventName, params object?[] args)
    {
        namespaceName = Normalize(namespaceName);
        var packet = Protocol.SocketPacketEncoder.Event(namespaceName, eventName, args);
        var options = BroadcastOptions.All with { Flags = BroadcastFlags.Local };
        if (RecoveryStore is not { } store)
        {
            if (TryGetNamespace(namespaceName, out var nsp))
            {
                nsp.Adapter.Broadcast(packet, options);
            }

            return true;
        }

        // under the namespace's recovery lock: a socket joins either before (it gets the packet) or after (its
        // join point is at or past this offset)
        return store.Broadcast(namespaceName, packet, options, (kept, o) =>
        {
            if (!TryGetNamespace(namespaceName, out var nsp))
            {
                return;
            }

            if (nsp.Adapter is InMemoryAdapter memory)
            {
                memory.DeliverLocal(kept, o);
            }
            else
            {
                nsp.Adapter.Broadcast(kept, o);
            }
        }, offset);
    }

    /// <summary>
    /// Tells connection state recovery that the caller's offset sequence (<see cref="EmitLocalAt"/>) steps from
    /// <paramref name="previousOffset"/> to <paramref name="offset"/>, whether or not a packet is emitted for it.
    /// When this node's last step was not <paramref name="previousOffset"/> (it started later or missed steps),
    /// recovery from an offset before <paramref name="previousOffset"/> is refused from now on: the client gets a
    /// fresh session instead of silently missing packets. A step already seen is ignored. No-op without recovery.
    /// </summary>
    public void ContinueOffsets(long previousOffset, long offset) => RecoveryStore?.Continue(previousOffset, offset);

    /// <summary>The newest recovery offset issued or given on this server (0: none, or recovery off).</summary>
    public long LastRecoveryOffset => RecoveryStore?.LastOffset ?? 0;

    /// <summary>The namespace if it exists now (never makes one).</summary>
    public bool TryGetNamespace(string name, out Namespace nsp) => _namespaces.TryGetValue(Normalize(name), out nsp!);

    /// <summary>Connections that have not joined any namespace yet (bounded by <see cref="SocketIOOptions.MaxPendingConnections"/>).</summary>
    public int PendingConnectionCount
    {
        get
        {
            lock (_pending)
            {
                return _pending.Count;
            }
        }
    }

    /// <summary>Serves one HTTP request of the Engine.IO endpoint (what <see cref="Hosting.SocketIOHostingExtensions.MapSocketIO"/> routes).</summary>
    public Task HandleRequestAsync(HttpContext context) => Engine.HandleRequestAsync(context);

    /// <summary>Closes every connection (e.g. at shutdown), then every namespace's adapter (<see cref="IAdapter.CloseAsync"/>).</summary>
    public void Close()
    {
        Engine.CloseAll();
        foreach (var nsp in _namespaces.Values)
        {
            nsp.CloseAdapter();
        }

        RecoveryStore?.Dispose();
    }

    /// <summary>
    /// Runs an adapter's init or close; a failure (now or later) is logged, never thrown at the caller. The task
    /// returned completes with the step (it never faults).
    /// </summary>
    internal Task RunAdapterStep(Func<ValueTask> step, string what, string nsp)
    {
        try
        {
            var task = step();
            if (!task.IsCompletedSuccessfully)
            {
                return ObserveAsync(task, what, nsp);
            }
        }
        catch (Exception ex)
        {
            LogHandlerFailure(ex, what, nsp);
        }

        return Task.CompletedTask;
    }

    private async Task ObserveAsync(ValueTask task, string what, string nsp)
    {
        try
        {
            await task;
        }
        catch (Exception ex)
        {
            LogHandlerFailure(ex, what, nsp);
        }
    }

    internal void OnNamespaceCreated(Namespace nsp)
    {
        try
        {
            NamespaceCreated?.Invoke(nsp);
        }
        catch (Exception ex)
        {
            LogHandlerFailure(ex, "namespace created", EngineIO.LogText.Bound(nsp.Name));
        }
    }

    private void OnConnectionOpened(EngineSocket connection)
    {
        try
        {
            ConnectionOpened?.Invoke(connection);
        }
        catch (Exception ex)
        {
            LogHandlerFailure(ex, "connection opened", connection.Id);
        }
    }

    internal void OnRecoveryAttempt(string nsp, RecoveryOutcome outcome)
    {
        Recovery.Add(outcome);
        LogRecovery(nsp, outcome);
        try
        {
            RecoveryAttempted?.Invoke(nsp, outcome);
        }
        catch (Exception ex)
        {
            LogHandlerFailure(ex, "recovery", nsp);
        }
    }

    /// <summary>Counts a new connection as pending (no namespace joined); past the bound, the oldest pending one is closed.</summary>
    internal void AddPending(Client client)
    {
        Client? evicted = null;
        lock (_pending)
        {
            client.PendingNode = _pending.AddLast(client);
            var max = Options.MaxPendingConnections;
            if (max > 0 && _pending.Count > max)
            {
                evicted = _pending.First!.Value;
                _pending.RemoveFirst();
                evicted.PendingNode = null;
            }
        }

        evicted?.EvictPending();
    }

    /// <summary>The connection joined a namespace or closed: it no longer counts as pending.</summary>
    internal void RemovePending(Client client)
    {
        lock (_pending)
        {
            if (client.PendingNode is { } node)
            {
                _pending.Remove(node);
                client.PendingNode = null;
            }
        }
    }

    internal void OnRefused(string nsp, string reason, string? remote)
    {
        LogRefused(EngineIO.LogText.Bound(nsp), EngineIO.LogText.Bound(reason), remote);
        try
        {
            ConnectionRefused?.Invoke(nsp, reason);
        }
        catch (Exception ex)
        {
            LogHandlerFailure(ex, "refusal", EngineIO.LogText.Bound(nsp));
        }
    }

    /// <summary>
    /// The namespace a CONNECT asks for (made on demand for a name a dynamic namespace admits), with
    /// the connect counted as pending so that an empty child is not dropped under it. Null: refused.
    /// </summary>
    internal Namespace? ResolveNamespace(string name)
    {
        lock (_childLock)
        {
            if (_namespaces.TryGetValue(name, out var existing))
            {
                existing.PendingConnects++;
                return existing;
            }
        }

        ParentNamespace[] parents;
        lock (_parents)
        {
            parents = [.. _parents];
        }

        var admitting = parents.FirstOrDefault(p => p.Admits(name));
        if (admitting is null)
        {
            return null;
        }

        lock (_childLock)
        {
            var child = _namespaces.GetOrAdd(name, n => new Namespace(this, n, admitting));
            child.StartAdapter();
            child.Parent?.AddChild(child);
            child.PendingConnects++;
            return child;
        }
    }

    internal void EndPendingConnect(Namespace nsp)
    {
        lock (_childLock)
        {
            nsp.PendingConnects--;
        }

        RemoveIfEmptyChild(nsp);
    }

    /// <summary>
    /// Drops a dynamic child namespace with no socket, no connect under way and (with connection state
    /// recovery) no session kept that may come back to it, when so configured: while a session is kept, the
    /// namespace stays so that what is broadcast to it meanwhile is kept for that session.
    /// </summary>
    internal void RemoveIfEmptyChild(Namespace nsp)
    {
        if (nsp.Parent is null || !Options.CleanupEmptyChildNamespaces)
        {
            return;
        }

        lock (_childLock)
        {
            if (nsp.SocketCount == 0 && nsp.PendingConnects == 0 && RecoveryStore?.HasSessions(nsp.Name) != true
                && _namespaces.TryRemove(new KeyValuePair<string, Namespace>(nsp.Name, nsp)))
            {
                nsp.Parent.RemoveChild(nsp);
                nsp.CloseAdapter();
            }
        }
    }

    /// <summary>The last kept session of a namespace expired: the namespace may go now if it is an empty child.</summary>
    private void OnSessionsExpired(string name)
    {
        if (_namespaces.TryGetValue(name, out var nsp))
        {
            RemoveIfEmptyChild(nsp);
        }
    }

    private static string Normalize(string name) => name.StartsWith('/') ? name : "/" + name;
}

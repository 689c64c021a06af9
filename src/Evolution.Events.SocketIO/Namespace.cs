using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Evolution.Events.SocketIO.Adapters;

namespace Evolution.Events.SocketIO;

/// <summary>
/// A namespace: its middlewares, its connection handlers, its sockets and its adapter (rooms and
/// broadcast). Made by <see cref="SocketIOServer.Of(string)"/>, or on demand for a name that a
/// dynamic namespace admits (then it shares that parent's middlewares and handlers).
/// </summary>
public class Namespace
{
    private readonly ConcurrentDictionary<string, Socket> _sockets = new(StringComparer.Ordinal);
    private SocketMiddleware[] _middlewares = [];
    private Func<Socket, ValueTask>[] _connectionHandlers = [];

    internal Namespace(SocketIOServer server, string name, ParentNamespace? parent = null)
    {
        Server = server;
        Name = name;
        Parent = parent;
        Adapter = server.AdapterFactory.Create(this);
    }

    public string Name { get; }

    public SocketIOServer Server { get; }

    public IAdapter Adapter { get; }

    /// <summary>The dynamic namespace this one was made from, if any.</summary>
    public ParentNamespace? Parent { get; }

    /// <summary>This node's connected sockets, by id.</summary>
    public IReadOnlyDictionary<string, Socket> SocketsById => _sockets;

    public int SocketCount => _sockets.Count;

    public virtual Namespace Use(SocketMiddleware middleware)
    {
        lock (_sockets)
        {
            _middlewares = [.. _middlewares, middleware];
        }

        return this;
    }

    public virtual Namespace OnConnection(Func<Socket, ValueTask> handler)
    {
        lock (_sockets)
        {
            _connectionHandlers = [.. _connectionHandlers, handler];
        }

        return this;
    }

    public Namespace OnConnection(Action<Socket> handler) => OnConnection(s =>
    {
        handler(s);
        return ValueTask.CompletedTask;
    });

    public virtual BroadcastOperator To(string room) => new BroadcastOperator(this).To(room);

    public virtual BroadcastOperator To(IEnumerable<string> rooms) => new BroadcastOperator(this).To(rooms);

    public virtual BroadcastOperator Except(string room) => new BroadcastOperator(this).Except(room);

    public virtual BroadcastOperator Volatile => new BroadcastOperator(this).Volatile;

    /// <summary>Emits to every socket of the namespace: encoded once, enqueued on each, never waits.</summary>
    public virtual void Emit(string eventName, params object?[] args) => new BroadcastOperator(this).Emit(eventName, args);

    /// <summary>Disconnects every socket of the namespace (with <paramref name="close"/>, their whole connections).</summary>
    public virtual void DisconnectSockets(bool close = false) => new BroadcastOperator(this).DisconnectSockets(close);

    /// <summary>
    /// Runs the middlewares and, unless one refuses, joins the socket. The caller got this namespace
    /// from <see cref="SocketIOServer.ResolveNamespace"/>, which counted this connect as pending.
    /// </summary>
    internal async ValueTask AddAsync(Client client, JsonObject auth)
    {
        try
        {
            await JoinAsync(client, auth);
        }
        finally
        {
            Server.EndPendingConnect(this);
        }
    }

    private async ValueTask JoinAsync(Client client, JsonObject auth)
    {
        var socket = new Socket(this, client, new Handshake(client.Connection.Request, auth));
        var refusal = await RunMiddlewaresAsync(socket);
        if (refusal is not null)
        {
            Server.OnRefused(Name, refusal.Message, socket.Handshake.Address);
            client.Write(Protocol.SocketPacketEncoder.ConnectError(Name, refusal.Message, refusal.Data));
            return;
        }

        if (!client.IsOpen)
        {
            return;
        }

        _sockets[socket.Id] = socket;
        client.Add(socket);
        socket.MarkConnected();
        if (!client.IsOpen)
        {
            // the connection closed while the socket joined: its close went by without this socket
            socket.OnClose(DisconnectReason.TransportClose);
            return;
        }

        Server.LogConnected(socket.Id, EngineIO.LogText.Bound(Name), client.Connection.Transport, socket.Handshake.Address);
        await RunConnectionHandlersAsync(socket);
    }

    /// <summary>CONNECTs under way (middlewares running); guarded by the server's child lock.</summary>
    internal int PendingConnects { get; set; }

    internal void Remove(Socket socket)
    {
        _sockets.TryRemove(new KeyValuePair<string, Socket>(socket.Id, socket));
        Server.RemoveIfEmptyChild(this);
    }

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

    internal ParentNamespace(SocketIOServer server, Func<string, bool> predicate)
    {
        _server = server;
        _predicate = predicate;
    }

    public IReadOnlyCollection<Namespace> Children => _children.Values.ToArray();

    internal SocketMiddleware[] Middlewares => System.Threading.Volatile.Read(ref _middlewares);

    internal Func<Socket, ValueTask>[] ConnectionHandlers => System.Threading.Volatile.Read(ref _connectionHandlers);

    public ParentNamespace Use(SocketMiddleware middleware)
    {
        lock (_children)
        {
            _middlewares = [.. _middlewares, middleware];
        }

        return this;
    }

    public ParentNamespace OnConnection(Func<Socket, ValueTask> handler)
    {
        lock (_children)
        {
            _connectionHandlers = [.. _connectionHandlers, handler];
        }

        return this;
    }

    public ParentNamespace OnConnection(Action<Socket> handler) => OnConnection(s =>
    {
        handler(s);
        return ValueTask.CompletedTask;
    });

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

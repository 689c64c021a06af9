using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Evolution.Events.SocketIO.Protocol;

namespace Evolution.Events.SocketIO;

/// <summary>
/// One client's presence in one namespace: its handlers, its rooms, its acks in both directions.
/// Everything it sends goes through its connection's bounded outbound queue.
/// </summary>
public sealed class Socket
{
    // made on first use: an idle socket of a broadcast-only server carries none of them
    private Dictionary<string, SocketEventHandler[]>? _handlers;
    private ConcurrentDictionary<long, TaskCompletionSource<JsonNode?[]>>? _pendingAcks;
    private ConcurrentDictionary<string, object?>? _data;
    private SocketEventHandler[] _anyHandlers = [];
    private long _nextAckId;
    private int _connected;

    internal Socket(Namespace nsp, Client client, Handshake handshake)
    {
        Namespace = nsp;
        Client = client;
        Handshake = handshake;
        Id = EngineIO.EngineIOServer.NewId();
    }

    public string Id { get; }

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
        var id = Interlocked.Increment(ref _nextAckId);
        var pending = new TaskCompletionSource<JsonNode?[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        var pendingAcks = _pendingAcks
            ?? Interlocked.CompareExchange(ref _pendingAcks, new ConcurrentDictionary<long, TaskCompletionSource<JsonNode?[]>>(), null)
            ?? _pendingAcks;
        pendingAcks[id] = pending;
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
        Volatile.Write(ref _connected, 1);
        Client.Write(SocketPacketEncoder.Connect(Namespace.Name, Id));
    }

    /// <summary>Delivers a broadcast packet (already encoded). Never waits.</summary>
    internal void Deliver(EncodedPacket packet, bool isVolatile)
    {
        if (Connected)
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

        Namespace.Adapter.DelAll(Id);
        Namespace.Remove(this);
        Client.Remove(this);
        Namespace.Server.LogDisconnected(Id, EngineIO.LogText.Bound(Namespace.Name), EngineIO.LogText.Bound(reason));
        try
        {
            Disconnected?.Invoke(this, reason);
        }
        catch (Exception ex)
        {
            Namespace.Server.LogHandlerFailure(ex, "disconnect", Id);
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

using System.Collections.Immutable;
using Evolution.Events.SocketIO.Adapters;
using Evolution.Events.SocketIO.Protocol;

namespace Evolution.Events.SocketIO;

/// <summary>
/// Selects sockets of a namespace (rooms, exceptions, flags) and acts on them. Immutable: each
/// call returns a new operator. An emit encodes its packet once for all the selected sockets.
/// </summary>
public readonly struct BroadcastOperator
{
    private readonly Namespace _nsp;
    private readonly ImmutableHashSet<string> _rooms;
    private readonly ImmutableHashSet<string> _except;
    private readonly BroadcastFlags _flags;

    public BroadcastOperator(Namespace nsp)
        : this(nsp, ImmutableHashSet.Create<string>(StringComparer.Ordinal), ImmutableHashSet.Create<string>(StringComparer.Ordinal), BroadcastFlags.None)
    {
    }

    private BroadcastOperator(Namespace nsp, ImmutableHashSet<string> rooms, ImmutableHashSet<string> except, BroadcastFlags flags)
    {
        _nsp = nsp;
        _rooms = rooms;
        _except = except;
        _flags = flags;
    }

    public BroadcastOperator To(string room) => new(_nsp, _rooms.Add(room), _except, _flags);

    public BroadcastOperator To(IEnumerable<string> rooms) => new(_nsp, _rooms.Union(rooms), _except, _flags);

    public BroadcastOperator In(string room) => To(room);

    public BroadcastOperator Except(string room) => new(_nsp, _rooms, _except.Add(room), _flags);

    public BroadcastOperator Except(IEnumerable<string> rooms) => new(_nsp, _rooms, _except.Union(rooms), _flags);

    /// <summary>The packet may be dropped for a socket that is not ready (its queue is not empty).</summary>
    public BroadcastOperator Volatile => new(_nsp, _rooms, _except, _flags | BroadcastFlags.Volatile);

    /// <summary>Only this node's sockets.</summary>
    public BroadcastOperator Local => new(_nsp, _rooms, _except, _flags | BroadcastFlags.Local);

    public void Emit(string eventName, params object?[] args) =>
        _nsp.Adapter.Broadcast(SocketPacketEncoder.Event(_nsp.Name, eventName, args), Options);

    /// <summary>Writes a packet encoded beforehand for this namespace (the namespace is part of the encoded packet).</summary>
    public void Emit(EncodedPacket packet) => _nsp.Adapter.Broadcast(packet, Options);

    public IReadOnlyList<Socket> FetchSockets()
    {
        var found = new List<Socket>();
        foreach (var id in _nsp.Adapter.Sockets(_rooms))
        {
            if (!_except.Contains(id) && _nsp.SocketsById.TryGetValue(id, out var socket) && !IsExcludedByRoom(id))
            {
                found.Add(socket);
            }
        }

        return found;
    }

    public void SocketsJoin(string room)
    {
        foreach (var socket in FetchSockets())
        {
            socket.Join(room);
        }
    }

    public void SocketsLeave(string room)
    {
        foreach (var socket in FetchSockets())
        {
            socket.Leave(room);
        }
    }

    public void DisconnectSockets(bool close = false)
    {
        foreach (var socket in FetchSockets())
        {
            socket.Disconnect(close);
        }
    }

    private BroadcastOptions Options => new(_rooms, _except, _flags);

    private bool IsExcludedByRoom(string id)
    {
        if (_except.IsEmpty)
        {
            return false;
        }

        var rooms = _nsp.Adapter.SocketRooms(id);
        foreach (var room in rooms)
        {
            if (_except.Contains(room))
            {
                return true;
            }
        }

        return false;
    }
}

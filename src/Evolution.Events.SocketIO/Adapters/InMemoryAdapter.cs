using System.Collections.Concurrent;
using Evolution.Events.SocketIO.Protocol;

namespace Evolution.Events.SocketIO.Adapters;

/// <summary>
/// Rooms and broadcast for one node. Membership changes take a short lock (no I/O under it);
/// broadcasts read lock-free and only enqueue the shared encoded packet on each socket.
/// </summary>
public class InMemoryAdapter : IAdapter
{
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, byte>> _rooms = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, byte>> _sids = new(StringComparer.Ordinal);
    private readonly object _sync = new();

    public InMemoryAdapter(Namespace nsp) => Namespace = nsp;

    public Namespace Namespace { get; }

    public IReadOnlyCollection<string> Rooms => _rooms.Keys.ToArray();

    public void AddAll(string socketId, IEnumerable<string> rooms)
    {
        lock (_sync)
        {
            var mine = _sids.GetOrAdd(socketId, static _ => new ConcurrentDictionary<string, byte>(StringComparer.Ordinal));
            foreach (var room in rooms)
            {
                mine[room] = 0;
                _rooms.GetOrAdd(room, static _ => new ConcurrentDictionary<string, byte>(StringComparer.Ordinal))[socketId] = 0;
            }
        }
    }

    public void Del(string socketId, string room)
    {
        lock (_sync)
        {
            if (_sids.TryGetValue(socketId, out var mine))
            {
                mine.TryRemove(room, out _);
            }

            RemoveFromRoom(socketId, room);
        }
    }

    public void DelAll(string socketId)
    {
        lock (_sync)
        {
            if (!_sids.TryRemove(socketId, out var mine))
            {
                return;
            }

            foreach (var room in mine.Keys)
            {
                RemoveFromRoom(socketId, room);
            }
        }
    }

    public virtual void Broadcast(EncodedPacket packet, BroadcastOptions options)
    {
        var isVolatile = (options.Flags & BroadcastFlags.Volatile) != 0;
        var except = options.Except.Count == 0 ? null : ExpandExcept(options.Except);
        if (options.Rooms.Count == 0)
        {
            foreach (var socket in Namespace.SocketsById.Values)
            {
                if (except is null || !except.Contains(socket.Id))
                {
                    socket.Deliver(packet, isVolatile);
                }
            }

            return;
        }

        HashSet<string>? seen = options.Rooms.Count > 1 ? new HashSet<string>(StringComparer.Ordinal) : null;
        foreach (var room in options.Rooms)
        {
            if (!_rooms.TryGetValue(room, out var members))
            {
                continue;
            }

            foreach (var id in members.Keys)
            {
                if ((except is not null && except.Contains(id)) || (seen is not null && !seen.Add(id)))
                {
                    continue;
                }

                if (Namespace.SocketsById.TryGetValue(id, out var socket))
                {
                    socket.Deliver(packet, isVolatile);
                }
            }
        }
    }

    public IReadOnlyCollection<string> Sockets(IReadOnlySet<string> rooms)
    {
        if (rooms.Count == 0)
        {
            return Namespace.SocketsById.Keys.ToArray();
        }

        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var room in rooms)
        {
            if (_rooms.TryGetValue(room, out var members))
            {
                ids.UnionWith(members.Keys);
            }
        }

        return ids;
    }

    public IReadOnlyCollection<string> SocketRooms(string socketId) =>
        _sids.TryGetValue(socketId, out var mine) ? mine.Keys.ToArray() : [];

    private HashSet<string> ExpandExcept(IReadOnlySet<string> exceptRooms)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var room in exceptRooms)
        {
            if (_rooms.TryGetValue(room, out var members))
            {
                ids.UnionWith(members.Keys);
            }
        }

        return ids;
    }

    private void RemoveFromRoom(string socketId, string room)
    {
        if (_rooms.TryGetValue(room, out var members) && members.TryRemove(socketId, out _) && members.IsEmpty)
        {
            _rooms.TryRemove(new KeyValuePair<string, ConcurrentDictionary<string, byte>>(room, members));
        }
    }
}

public sealed class InMemoryAdapterFactory : IAdapterFactory
{
    public IAdapter Create(Namespace nsp) => new InMemoryAdapter(nsp);
}

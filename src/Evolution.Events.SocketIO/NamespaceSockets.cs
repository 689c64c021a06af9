namespace Evolution.Events.SocketIO;

/// <summary>
/// A connection's sockets by namespace name. Almost every connection joins one namespace, and an idle connection
/// keeps this for its lifetime: one socket is a field (a dictionary of one entry holds about 220 bytes of buckets and
/// entries); a dictionary is made only for a second namespace. Not thread-safe: the owner locks this object.
/// </summary>
internal sealed class NamespaceSockets
{
    private Socket? _one;
    private Dictionary<string, Socket>? _many;

    public int Count => _many?.Count ?? (_one is null ? 0 : 1);

    public bool Contains(string name) => TryGet(name, out _);

    public bool TryGet(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Socket? socket)
    {
        if (_many is { } many)
        {
            return many.TryGetValue(name, out socket);
        }

        socket = _one is { } one && string.Equals(one.Namespace.Name, name, StringComparison.Ordinal) ? one : null;
        return socket is not null;
    }

    /// <summary>Adds <paramref name="socket"/> under its namespace's name, replacing the socket held there.</summary>
    public void Set(Socket socket)
    {
        var name = socket.Namespace.Name;
        if (_many is { } many)
        {
            many[name] = socket;
        }
        else if (_one is null || string.Equals(_one.Namespace.Name, name, StringComparison.Ordinal))
        {
            _one = socket;
        }
        else
        {
            _many = new Dictionary<string, Socket>(StringComparer.Ordinal) { [_one.Namespace.Name] = _one, [name] = socket };
            _one = null;
        }
    }

    /// <summary>Removes <paramref name="socket"/> if it is the one held for its namespace.</summary>
    public void Remove(Socket socket)
    {
        var name = socket.Namespace.Name;
        if (_many is { } many)
        {
            if (many.TryGetValue(name, out var current) && ReferenceEquals(current, socket))
            {
                many.Remove(name);
            }
        }
        else if (ReferenceEquals(_one, socket))
        {
            _one = null;
        }
    }

    public Socket[] ToArray() => _many is { } many ? [.. many.Values] : _one is { } one ? [one] : [];
}

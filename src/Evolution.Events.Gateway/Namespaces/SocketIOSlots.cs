using System.Collections.Concurrent;
using Evolution.Events.EngineIO;
using Evolution.Events.Gateway.Connections;
using Evolution.Events.Gateway.PlainWebSockets;
using Evolution.Events.SocketIO;

namespace Evolution.Events.Gateway.Namespaces;

/// <summary>
/// WEBSOCKET_MAX_CONNECTIONS for Socket.IO: a connection takes a slot of the <see cref="ConnectionGate"/>
/// only when one of its sockets has been authorized into a namespace (the last middleware of every
/// namespace), and gives it back when the connection closes. A connection that has joined nothing
/// holds no slot: it is bounded by WEBSOCKET_MAX_PENDING and WEBSOCKET_CONNECT_TIMEOUT_MS instead, so
/// anonymous handshakes can never lock an authenticated client out.
/// </summary>
public sealed class SocketIOSlots(ConnectionGate gate)
{
    private readonly ConcurrentDictionary<EngineSocket, byte> _holders = new(ReferenceEqualityComparer.Instance);

    /// <summary>Connections holding a slot now.</summary>
    public int Count => _holders.Count;

    /// <summary>Middleware: lets the socket join when its connection holds a slot or can take one, else a CONNECT_ERROR.</summary>
    public ValueTask<ConnectError?> Admit(Socket socket)
    {
        var connection = socket.Connection;
        if (_holders.ContainsKey(connection))
        {
            return ValueTask.FromResult<ConnectError?>(null);
        }

        if (!gate.TryAcquire(out _, out var reason))
        {
            return ValueTask.FromResult<ConnectError?>(new ConnectError(reason));
        }

        if (!_holders.TryAdd(connection, 0))
        {
            gate.Release(); // another namespace of the same connection took its slot meanwhile
        }
        else if (connection.ReadyState != EngineReadyState.Open)
        {
            // the connection closed while this ran: its close may have gone by before the slot was recorded
            Release(connection);
        }

        return ValueTask.FromResult<ConnectError?>(null);
    }

    /// <summary>The connection closed: its slot, if it took one, is given back.</summary>
    public void Release(EngineSocket connection)
    {
        if (_holders.TryRemove(connection, out _))
        {
            gate.Release();
        }
    }
}

using System.Text.Json.Nodes;

namespace Evolution.Events.SocketIO;

/// <summary>An event a client emitted: its name, its arguments (binary ones as JsonValue holding byte[]) and its ack.</summary>
public sealed class SocketEvent
{
    private readonly long? _ackId;
    private int _acked;

    internal SocketEvent(Socket socket, string name, IReadOnlyList<JsonNode?> args, long? ackId)
    {
        Socket = socket;
        Name = name;
        Args = args;
        _ackId = ackId;
    }

    /// <summary>The socket the event came from.</summary>
    public Socket Socket { get; }

    /// <summary>The event name (the first element of the packet's array).</summary>
    public string Name { get; }

    /// <summary>The arguments after the name; a binary one is a <see cref="JsonValue"/> holding a byte[] (<see cref="Protocol.JsonArguments.TryGetBinary"/>).</summary>
    public IReadOnlyList<JsonNode?> Args { get; }

    /// <summary>Whether the client asked for an acknowledgement.</summary>
    public bool HasAck => _ackId is not null;

    /// <summary>Sends the acknowledgement with these arguments; only the first call counts.</summary>
    public bool Ack(params object?[] args)
    {
        if (_ackId is not { } id || Interlocked.Exchange(ref _acked, 1) == 1)
        {
            return false;
        }

        return Socket.SendAck(id, args);
    }
}

/// <summary>Handles an event a client emitted (<see cref="Socket.On(string, SocketEventHandler)"/>, <see cref="Socket.OnAny"/>).</summary>
public delegate ValueTask SocketEventHandler(SocketEvent e);

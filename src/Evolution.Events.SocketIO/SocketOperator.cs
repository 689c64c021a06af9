using System.Text.Json.Nodes;

namespace Evolution.Events.SocketIO;

/// <summary>
/// Flags for emits to one socket (socket.io's <c>socket.volatile</c>, <c>socket.timeout(ms)</c>): made by
/// <see cref="Socket.Volatile"/> and <see cref="Socket.Timeout"/>. Immutable: each call returns a new operator.
/// </summary>
public readonly struct SocketOperator
{
    private readonly Socket _socket;
    private readonly bool _volatile;
    private readonly TimeSpan? _timeout;

    internal SocketOperator(Socket socket)
        : this(socket, false, null)
    {
    }

    private SocketOperator(Socket socket, bool isVolatile, TimeSpan? timeout)
    {
        _socket = socket;
        _volatile = isVolatile;
        _timeout = timeout;
    }

    /// <summary>
    /// The packet is dropped, instead of queued, when the connection is not ready to write it at once (something
    /// is already waiting in its outbound queue, or it would not fit the queue's limits): a volatile emit never
    /// closes the session as a slow consumer.
    /// </summary>
    public SocketOperator Volatile => new(_socket, true, _timeout);

    /// <summary>How long <see cref="EmitWithAckAsync"/> waits for the client's ack.</summary>
    public SocketOperator Timeout(TimeSpan timeout)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);
        return new(_socket, _volatile, timeout);
    }

    /// <summary>Emits to the socket with these flags. Returns false when the packet was not queued (disconnected, or dropped).</summary>
    public bool Emit(string eventName, params object?[] args) => _socket.EmitCore(eventName, args, _volatile);

    /// <summary>
    /// Emits asking the client for an ack and returns the ack's arguments (socket.io's
    /// <c>socket.timeout(ms).emitWithAck()</c>). Needs <see cref="Timeout"/>: past it, throws
    /// <see cref="TimeoutException"/> ("operation has timed out", as socket.io's error); a late ack is ignored.
    /// Throws <see cref="InvalidOperationException"/> when the socket is not connected or disconnects meanwhile.
    /// </summary>
    public async Task<JsonNode?[]> EmitWithAckAsync(string eventName, params object?[] args)
    {
        if (_timeout is not { } timeout)
        {
            throw new InvalidOperationException("an emit with ack needs a timeout: socket.Timeout(…).EmitWithAckAsync(…)");
        }

        try
        {
            return await _socket.EmitWithAckCoreAsync(eventName, args, timeout, _volatile, CancellationToken.None).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException("operation has timed out");
        }
    }
}

/// <summary>A listener of every event sent to a socket (<see cref="Socket.OnAnyOutgoing"/>): the event name and its arguments.</summary>
public delegate void OutgoingEventListener(string eventName, IReadOnlyList<object?> args);

/// <summary>
/// A packet middleware (<see cref="Socket.Use"/>): sees each incoming event, then calls <paramref name="next"/>
/// with null to go on or with an error to reject the event (socket.io's <c>socket.use((event, next) => …)</c>).
/// </summary>
public delegate void SocketPacketMiddleware(SocketEvent packet, Action<Exception?> next);

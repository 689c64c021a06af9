using System.Collections.Concurrent;
using System.Net.WebSockets;
using Evolution.Events.Gateway.Auth;
using Evolution.Events.Gateway.Events;
using Evolution.Events.Gateway.Fanout;
using Evolution.Events.Gateway.Instances;
using Evolution.Events.Gateway.Observability;

namespace Evolution.Events.Gateway.PlainWebSockets;

/// <summary>
/// The plain-WebSocket <see cref="IEventSink"/>: the open connections, each with its subscription.
/// Delivery only enqueues the shared pre-serialized bytes; a full queue aborts that one client.
/// </summary>
public sealed class PlainWebSocketHub : IEventSink
{
    private readonly ConcurrentDictionary<long, PlainWebSocketConnection> _connections = new();
    private readonly ILogger<PlainWebSocketHub> _logger;
    private readonly GatewayMetrics _metrics;
    private readonly InstanceRegistry _registry;
    private readonly LastStateReplay _replay;
    private long _nextId;

    public PlainWebSocketHub(InstanceRegistry registry, LastStateReplay replay, GatewayMetrics metrics,
        ILogger<PlainWebSocketHub> logger)
    {
        _logger = logger;
        _metrics = metrics;
        _registry = registry;
        _replay = replay;
        registry.InstanceDeleted += OnInstanceDeleted;
        registry.TokenRotated += OnTokenRotated;
    }

    public int Count => _connections.Count;

    /// <summary>The open connections (for tests).</summary>
    internal ICollection<PlainWebSocketConnection> Connections => _connections.Values;

    /// <summary>Open connections per scoped instance (global subscribers are not counted here).</summary>
    public IReadOnlyDictionary<string, int> CountByInstance() =>
        _connections.Values.Where(c => c.Subscription.Instance is not null)
            .CountBy(c => c.Subscription.Instance!, StringComparer.Ordinal)
            .ToDictionary(StringComparer.Ordinal);

    public long NextId() => Interlocked.Increment(ref _nextId);

    /// <summary>
    /// Registers a connection. One scoped to an instance first gets that instance's last state
    /// (<see cref="LastStateReplay"/>) in its queue, under the instance's lock, so before any live event.
    /// </summary>
    public void Add(PlainWebSocketConnection connection)
    {
        var instance = connection.Subscription.Instance;
        if (instance is null || !_replay.Enabled)
        {
            _connections[connection.Id] = connection;
            return;
        }

        lock (_replay.LockFor(instance))
        {
            _connections[connection.Id] = connection;
            var settings = _registry.GetSettings(instance);
            foreach (var e in _replay.Replay(instance))
            {
                if (!connection.Subscription.Accepts(e, settings))
                    continue;
                foreach (var frame in connection.Subscription.FramesFor(e))
                    connection.TryEnqueue(frame);
            }
        }
    }

    public void Remove(PlainWebSocketConnection connection) => _connections.TryRemove(connection.Id, out _);

    public void Deliver(GatewayEvent gatewayEvent, InstanceSettings? settings)
    {
        var copies = 0;
        foreach (var (_, connection) in _connections)
        {
            if (!connection.Subscription.Accepts(gatewayEvent, settings))
                continue;
            var sent = connection.Subscription.Simple
                ? gatewayEvent.SimpleFrames.Count > 0 && EnqueueAll(connection, gatewayEvent.SimpleFrames)
                : Enqueue(connection, gatewayEvent.EnvelopeJson);
            if (sent)
                copies++;
        }
        _metrics.Delivered(GatewayMetrics.PlainWebSocketTransport, gatewayEvent, copies);
    }

    /// <summary>Closes every connection scoped to a deleted instance.</summary>
    public void OnInstanceDeleted(InstanceInfo instance)
    {
        foreach (var (_, connection) in _connections)
        {
            if (string.Equals(connection.Subscription.Instance, instance.Name, StringComparison.Ordinal))
                connection.Close(WebSocketCloseStatus.NormalClosure, $"instance '{instance.Name}' was deleted");
        }
    }

    /// <summary>
    /// Tells every connection that logged in with the instance's (now old) token, then closes it with
    /// <see cref="TokenRotation.CloseStatus"/>. Connections of the global key or keyless ones stay.
    /// </summary>
    public void OnTokenRotated(InstanceInfo instance)
    {
        var message = TokenRotation.Message(instance.Name, DateTimeOffset.UtcNow);
        foreach (var (_, connection) in _connections)
        {
            if (connection.Subscription.Auth != AuthKind.Instance
                || !string.Equals(connection.Subscription.Instance, instance.Name, StringComparison.Ordinal))
                continue;
            connection.TryEnqueue(message);
            connection.Close(TokenRotation.CloseStatus, TokenRotation.CloseReason);
        }
    }

    /// <summary>Closes every connection (server shutdown).</summary>
    public void CloseAll(string reason)
    {
        foreach (var (_, connection) in _connections)
            connection.Close(WebSocketCloseStatus.EndpointUnavailable, reason);
    }

    private bool EnqueueAll(PlainWebSocketConnection connection, IReadOnlyList<ReadOnlyMemory<byte>> frames)
    {
        foreach (var frame in frames)
        {
            if (!Enqueue(connection, frame))
                return false;
        }
        return true;
    }

    private bool Enqueue(PlainWebSocketConnection connection, ReadOnlyMemory<byte> frame)
    {
        if (connection.TryEnqueue(frame))
            return true;
        var reason = $"outbound queue full ({connection.QueueLimit} messages or {connection.QueueBytes} bytes): client too slow";
        _logger.LogWarning("Plain WebSocket {ConnectionId} from {RemoteAddress} dropped: {Reason}",
            connection.Id, connection.RemoteAddress, reason);
        connection.Abort(reason);
        _metrics.SlowConsumerDropped(GatewayMetrics.PlainWebSocketTransport);
        return false;
    }
}

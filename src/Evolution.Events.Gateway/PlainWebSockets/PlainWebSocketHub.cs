using System.Collections.Concurrent;
using System.Net.WebSockets;
using Evolution.Events.Gateway.Events;
using Evolution.Events.Gateway.Fanout;
using Evolution.Events.Gateway.Instances;

namespace Evolution.Events.Gateway.PlainWebSockets;

/// <summary>
/// The plain-WebSocket <see cref="IEventSink"/>: the open connections, each with its subscription.
/// Delivery only enqueues the shared pre-serialized bytes; a full queue aborts that one client.
/// </summary>
public sealed class PlainWebSocketHub : IEventSink
{
    private readonly ConcurrentDictionary<long, PlainWebSocketConnection> _connections = new();
    private readonly ILogger<PlainWebSocketHub> _logger;
    private long _nextId;

    public PlainWebSocketHub(InstanceRegistry registry, ILogger<PlainWebSocketHub> logger)
    {
        _logger = logger;
        registry.InstanceDeleted += OnInstanceDeleted;
    }

    public int Count => _connections.Count;

    public long NextId() => Interlocked.Increment(ref _nextId);

    public void Add(PlainWebSocketConnection connection) => _connections[connection.Id] = connection;

    public void Remove(PlainWebSocketConnection connection) => _connections.TryRemove(connection.Id, out _);

    public void Deliver(GatewayEvent gatewayEvent, InstanceSettings? settings)
    {
        foreach (var (_, connection) in _connections)
        {
            if (!connection.Subscription.Accepts(gatewayEvent, settings))
                continue;
            if (connection.Subscription.Simple)
            {
                foreach (var frame in gatewayEvent.SimpleFrames)
                {
                    if (!Enqueue(connection, frame))
                        break;
                }
            }
            else
            {
                Enqueue(connection, gatewayEvent.EnvelopeJson);
            }
        }
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

    /// <summary>Closes every connection (server shutdown).</summary>
    public void CloseAll(string reason)
    {
        foreach (var (_, connection) in _connections)
            connection.Close(WebSocketCloseStatus.EndpointUnavailable, reason);
    }

    private bool Enqueue(PlainWebSocketConnection connection, ReadOnlyMemory<byte> frame)
    {
        if (connection.TryEnqueue(frame))
            return true;
        var reason = $"outbound queue full ({connection.QueueLimit} messages): client too slow";
        _logger.LogWarning("Plain WebSocket {ConnectionId} from {RemoteAddress} dropped: {Reason}",
            connection.Id, connection.RemoteAddress, reason);
        connection.Abort(reason);
        return false;
    }
}

using Evolution.Events.Gateway.PlainWebSockets;
using Evolution.Events.SocketIO;
using Prometheus;

namespace Evolution.Events.Gateway.Observability;

/// <summary>
/// Connection gauges, read from the servers at scrape time:
/// <c>evolution_socketio_connections{transport}</c> (Engine.IO sessions on polling / websocket),
/// <c>evolution_socketio_sockets{namespace}</c> and <c>evolution_plain_websocket_connections</c>.
/// Instance names come from producers and are unbounded, so the namespace label is bounded: <c>/</c>,
/// then the <see cref="NamespaceLabelCap"/> instance namespaces with the most sockets one by one, and the
/// sockets of all the others summed under <c>namespace="(other)"</c>. Series of namespaces that fell out of
/// the top are removed, so a scrape never exposes more than cap + 2 namespace series.
/// </summary>
public sealed class ConnectionGauges
{
    public const int NamespaceLabelCap = 100;
    public const string OtherNamespaces = "(other)";

    private readonly Gauge _sessions;
    private readonly Gauge _namespaceSockets;
    private readonly Gauge _plain;
    private readonly Gauge _recoverySessions;
    private readonly Gauge _recoveryPackets;
    private readonly Gauge _recoveryBytes;
    private readonly Lock _lock = new();
    private HashSet<string> _published = new(StringComparer.Ordinal);
    private SocketIOServer? _io;
    private PlainWebSocketHub? _hub;

    internal ConnectionGauges(MetricFactory factory)
    {
        _sessions = factory.CreateGauge("evolution_socketio_connections",
            "Open Engine.IO sessions (Socket.IO connections) per transport.", "transport");
        _namespaceSockets = factory.CreateGauge("evolution_socketio_sockets",
            $"Connected Socket.IO sockets per namespace: '/', the top {NamespaceLabelCap} instance namespaces, "
            + $"and '{OtherNamespaces}' for the rest.", "namespace");
        _plain = factory.CreateGauge("evolution_plain_websocket_connections", "Open plain WebSocket connections.");
        _recoverySessions = factory.CreateGauge("evolution_socketio_recovery_sessions",
            "Socket.IO sessions kept for connection state recovery (disconnected sockets that may still recover).");
        _recoveryPackets = factory.CreateGauge("evolution_socketio_recovery_packets",
            "Broadcast packets kept for connection state recovery, over all namespaces.");
        _recoveryBytes = factory.CreateGauge("evolution_socketio_recovery_bytes",
            "Bytes of the broadcast packets kept for connection state recovery, over all namespaces.");
    }

    /// <summary>Sets the sources; <paramref name="io"/> is null while WEBSOCKET_ENABLED=false.</summary>
    public void Attach(SocketIOServer? io, PlainWebSocketHub hub)
    {
        _io = io;
        _hub = hub;
    }

    internal void Update()
    {
        _plain.Set(_hub?.Count ?? 0);
        if (_io is not { } io)
            return;
        var total = io.Engine.SessionCount;
        var websocket = io.Engine.WebSocketSessionCount;
        _sessions.WithLabels("websocket").Set(websocket);
        _sessions.WithLabels("polling").Set(Math.Max(0, total - websocket));
        _recoverySessions.Set(io.Recovery.Sessions);
        _recoveryPackets.Set(io.Recovery.Packets);
        _recoveryBytes.Set(io.Recovery.Bytes);
        UpdateNamespaces(io);
    }

    private void UpdateNamespaces(SocketIOServer io)
    {
        var counts = io.Namespaces.Where(n => n.Name != "/" && n.SocketCount > 0)
            .Select(n => (n.Name, Count: n.SocketCount))
            .OrderByDescending(n => n.Count).ThenBy(n => n.Name, StringComparer.Ordinal)
            .ToList();
        var current = new HashSet<string>(StringComparer.Ordinal) { "/", OtherNamespaces };
        lock (_lock)
        {
            _namespaceSockets.WithLabels("/").Set(io.Sockets.SocketCount);
            foreach (var (name, count) in counts.Take(NamespaceLabelCap))
            {
                _namespaceSockets.WithLabels(name).Set(count);
                current.Add(name);
            }
            _namespaceSockets.WithLabels(OtherNamespaces).Set(counts.Skip(NamespaceLabelCap).Sum(n => n.Count));
            foreach (var stale in _published.Where(n => !current.Contains(n)))
                _namespaceSockets.RemoveLabelled(stale);
            _published = current;
        }
    }
}

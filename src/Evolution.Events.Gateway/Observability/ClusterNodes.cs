using System.Globalization;
using Evolution.Events.Gateway.Instances;
using Evolution.Events.Gateway.Options;
using Evolution.Events.Gateway.PlainWebSockets;
using Evolution.Events.SocketIO;
using StackExchange.Redis;

namespace Evolution.Events.Gateway.Observability;

/// <summary>
/// The nodes of the cluster, for <c>GET /dashboard/stats</c>. With REDIS_URI each node advertises itself every
/// NODE_HEARTBEAT_MS: a hash <c>REDIS_KEY_PREFIX + "node:{id}"</c> (its figures) that expires after three beats,
/// and its id in the sorted set <c>REDIS_KEY_PREFIX + "nodes"</c> scored by the time of the beat. A node that
/// stops beating (killed, cut off) disappears within three beats; one that stops cleanly removes itself at once.
/// Without Redis the cluster is this node.
/// </summary>
public sealed class ClusterNodes : BackgroundService
{
    private const int MissedBeats = 3;
    private readonly GatewayOptions _options;
    private readonly RedisInstanceStore? _store;
    private readonly GatewayMetrics _metrics;
    private readonly PlainWebSocketHub _hub;
    private readonly IServiceProvider _services;
    private readonly ILogger<ClusterNodes> _logger;
    private readonly string _nodeKey;
    private readonly RedisKey _nodesKey;

    public ClusterNodes(GatewayOptions options, IInstanceStore store, GatewayMetrics metrics, PlainWebSocketHub hub,
        IServiceProvider services, ILogger<ClusterNodes> logger)
    {
        _options = options;
        _store = store as RedisInstanceStore;
        _metrics = metrics;
        _hub = hub;
        _services = services;
        _logger = logger;
        Id = options.NodeId ?? Environment.MachineName + ":" + options.Port.ToString(CultureInfo.InvariantCulture);
        _nodeKey = options.RedisKeyPrefix + "node:";
        _nodesKey = options.RedisKeyPrefix + "nodes";
    }

    /// <summary>This node's id (NODE_ID, default <c>{host name}:{SERVER_PORT}</c>).</summary>
    public string Id { get; }

    /// <summary>When this node started.</summary>
    public DateTimeOffset UpSince { get; } = DateTimeOffset.UtcNow;

    private TimeSpan Ttl => _options.NodeHeartbeat * MissedBeats;

    /// <summary>This node's figures now.</summary>
    public NodeStats Self()
    {
        var io = _options.WebSocketEnabled ? _services.GetService<SocketIOServer>() : null;
        return new NodeStats(Id, Environment.MachineName, _options.ServerUrl, io?.Engine.SessionCount ?? 0, _hub.Count,
            Math.Round(_metrics.Rates.TotalPerSecond(), 2), UpSince, DateTimeOffset.UtcNow, true);
    }

    /// <summary>
    /// Every live node, this one first (its figures fresh); the others as they last advertised themselves. Just this
    /// node without Redis, or while Redis is unreachable (<paramref name="complete"/> false then).
    /// </summary>
    public async Task<(IReadOnlyList<NodeStats> Nodes, bool Complete)> ListAsync()
    {
        var self = Self();
        if (_store?.Connection is not { } redis)
            return ([self], true);
        try
        {
            var db = redis.GetDatabase();
            var since = DateTimeOffset.UtcNow.Add(-Ttl).ToUnixTimeMilliseconds();
            var ids = await db.SortedSetRangeByScoreAsync(_nodesKey, since, double.PositiveInfinity);
            var reads = ids.Where(id => id != Id).Select(id => (Id: (string)id!, Hash: db.HashGetAllAsync(_nodeKey + id))).ToList();
            await Task.WhenAll(reads.Select(r => r.Hash));
            var nodes = new List<NodeStats> { self };
            foreach (var (id, hash) in reads)
            {
                if (Parse(id, hash.Result) is { } node)
                    nodes.Add(node);
            }
            return (nodes, true);
        }
        catch (Exception ex) when (ex is RedisException or ObjectDisposedException)
        {
            return ([self], false);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_store is null)
            return;
        using var timer = new PeriodicTimer(_options.NodeHeartbeat);
        try
        {
            do
            {
                await BeatAsync();
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        if (_store?.Connection is not { } redis || !redis.IsConnected)
            return;
        try
        {
            var db = redis.GetDatabase();
            await Task.WhenAll(db.KeyDeleteAsync(_nodeKey + Id), db.SortedSetRemoveAsync(_nodesKey, Id));
        }
        catch (Exception ex) when (ex is RedisException or ObjectDisposedException)
        {
            // it expires by itself
        }
    }

    private async Task BeatAsync()
    {
        if (_store?.Connection is not { } redis || !redis.IsConnected)
            return;
        try
        {
            var self = Self();
            var db = redis.GetDatabase();
            var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            var key = _nodeKey + Id;
            var tx = db.CreateTransaction();
            _ = tx.HashSetAsync(key,
            [
                new("host", self.Host),
                new("url", self.Url),
                new("socketIOConnections", self.SocketIOConnections),
                new("plainWebSockets", self.PlainWebSockets),
                new("eventsPerSecond", self.EventsPerSecond.ToString(CultureInfo.InvariantCulture)),
                new("upSince", self.UpSince.ToUnixTimeMilliseconds()),
                new("lastSeen", now),
            ]);
            _ = tx.KeyExpireAsync(key, Ttl);
            _ = tx.SortedSetAddAsync(_nodesKey, Id, now);
            // forget nodes that stopped beating long ago (bounded set)
            _ = tx.SortedSetRemoveRangeByScoreAsync(_nodesKey, double.NegativeInfinity, now - (long)Ttl.TotalMilliseconds * 10);
            await tx.ExecuteAsync();
        }
        catch (Exception ex) when (ex is RedisException or ObjectDisposedException)
        {
            _logger.LogDebug(ex, "Node heartbeat not written (Redis unreachable)");
        }
    }

    private static NodeStats? Parse(string id, HashEntry[] hash)
    {
        if (hash.Length == 0)
            return null; // expired between the two reads
        var fields = hash.ToDictionary(h => (string)h.Name!, h => h.Value);
        static long Long(Dictionary<string, RedisValue> f, string name) => f.TryGetValue(name, out var v) && v.TryParse(out long l) ? l : 0;
        return new NodeStats(
            id,
            fields.TryGetValue("host", out var host) ? (string?)host ?? "" : "",
            fields.TryGetValue("url", out var url) ? (string?)url ?? "" : "",
            (int)Long(fields, "socketIOConnections"),
            (int)Long(fields, "plainWebSockets"),
            fields.TryGetValue("eventsPerSecond", out var rate) && double.TryParse((string?)rate, NumberStyles.Float, CultureInfo.InvariantCulture, out var r) ? r : 0,
            DateTimeOffset.FromUnixTimeMilliseconds(Long(fields, "upSince")),
            DateTimeOffset.FromUnixTimeMilliseconds(Long(fields, "lastSeen")),
            false);
    }
}

/// <summary>One node of the cluster in <c>GET /dashboard/stats</c>.</summary>
/// <param name="Id">NODE_ID (default <c>{host name}:{SERVER_PORT}</c>).</param>
/// <param name="Host">The machine (container) name.</param>
/// <param name="Url">Its SERVER_URL.</param>
/// <param name="SocketIOConnections">Open Engine.IO sessions on that node.</param>
/// <param name="PlainWebSockets">Open plain WebSocket connections on that node.</param>
/// <param name="EventsPerSecond">Events ingested by that node per second over the last 10 s.</param>
/// <param name="UpSince">When the node started.</param>
/// <param name="LastSeen">Its last heartbeat (now for the node that answers).</param>
/// <param name="Self">True for the node that answered this request.</param>
public sealed record NodeStats(
    string Id, string Host, string Url, int SocketIOConnections, int PlainWebSockets, double EventsPerSecond,
    DateTimeOffset UpSince, DateTimeOffset LastSeen, bool Self);

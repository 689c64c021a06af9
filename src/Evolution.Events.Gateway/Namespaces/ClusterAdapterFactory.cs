using Evolution.Events.Gateway.Instances;
using Evolution.Events.Gateway.Options;
using Evolution.Events.SocketIO;
using Evolution.Events.SocketIO.Adapters;
using Evolution.Events.SocketIO.Redis;
using StackExchange.Redis;

namespace Evolution.Events.Gateway.Namespaces;

/// <summary>
/// With REDIS_URI: every namespace gets the library's Redis adapter on a connection of its own — REDIS_ADAPTER=streams:
/// <see cref="RedisStreamsAdapter"/> (stream <c>REDIS_KEY_PREFIX + "socket.io"</c>, <see cref="StreamsRecoveryMode.SessionsOnly"/>);
/// pubsub: <see cref="RedisAdapter"/> (channels <c>REDIS_KEY_PREFIX + "socket.io#/nsp#"</c>, …) — for cluster
/// operations (fetchSockets, serverSideEmit, remote join/leave/disconnect) and for connection state recovery
/// sessions, kept in Redis under <c>REDIS_KEY_PREFIX + "session:{pid}"</c> so that a client recovers on whichever
/// node it reconnects to; offsets and missed packets come from each node's recovery store. The gateway's events never go through it: they travel on the event bus and each node broadcasts them
/// locally (<see cref="SocketIOSink"/>).
/// </summary>
internal sealed class ClusterAdapterFactory : IAdapterFactory, IDisposable
{
    private static readonly TimeSpan StartupWait = TimeSpan.FromSeconds(15);
    private readonly ConnectionMultiplexer _redis;
    private readonly IAdapterFactory _inner;

    public ClusterAdapterFactory(IInstanceStore store, GatewayOptions options, ILoggerFactory loggers)
    {
        var config = (store as RedisInstanceStore ?? throw new InvalidOperationException("The cluster adapter needs the Redis instance store"))
            .BuildConfiguration();
        config.ClientName = "evolution-events-adapter";
        // the server (and its main namespace's adapter) is made before the hosted services start: wait for Redis
        // like the instance store does (which stops the node if Redis stays unreachable)
        _redis = ConnectionMultiplexer.Connect(config);
        var deadline = DateTime.UtcNow + StartupWait;
        while (!_redis.IsConnected && DateTime.UtcNow < deadline)
            Thread.Sleep(100);
        _inner = options.RedisAdapter == RedisAdapterMode.Streams
            ? new RedisStreamsAdapterFactory(_redis, new RedisStreamsAdapterOptions
            {
                StreamName = options.RedisKeyPrefix + "socket.io",
                ChannelPrefix = options.RedisKeyPrefix + "socket.io",
                SessionKeyPrefix = options.RedisKeyPrefix + "session:",
                // offsets and missed packets are this node's recovery store's, fed with the event bus's offsets
                Recovery = StreamsRecoveryMode.SessionsOnly,
            }, loggers)
            : new RedisAdapterFactory(_redis, new RedisAdapterOptions
            {
                Key = options.RedisKeyPrefix + "socket.io",
                SessionKeyPrefix = options.RedisKeyPrefix + "session:",
            }, loggers);
    }

    /// <summary>This node's adapter connection (for tests).</summary>
    public IConnectionMultiplexer Connection => _redis;

    public IAdapter Create(Namespace nsp) => _inner.Create(nsp);

    public void Dispose() => _redis.Dispose();
}

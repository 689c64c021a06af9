using Evolution.Events.SocketIO.Adapters;
using Evolution.Events.SocketIO.Redis;
using Evolution.Events.Testing;
using StackExchange.Redis;

namespace Evolution.Events.SocketIO.Tests.Adapters;

/// <summary>
/// The adapter specification against the <see cref="RedisAdapter"/>: every case on a cluster of nodes over one real
/// redis-server (a new one per test), each node with its own Redis connection.
/// </summary>
public abstract class RedisAdapterSpecificationBase : AdapterSpecification, IAsyncLifetime
{
    private readonly List<ConnectionMultiplexer> _connections = [];
    private RedisServer _redis = null!;

    /// <summary>The options of every node's adapter.</summary>
    protected virtual RedisAdapterOptions Options => new();

    public async Task InitializeAsync() => _redis = await RedisServer.StartAsync();

    public async Task DisposeAsync()
    {
        foreach (var connection in _connections)
        {
            await connection.DisposeAsync();
        }

        await _redis.DisposeAsync();
    }

    protected override IAdapterFactory CreateFactory(AdapterLifecycleLog log)
    {
        var connection = ConnectionMultiplexer.Connect($"127.0.0.1:{_redis.Port}");
        _connections.Add(connection);
        return new Factory(connection, Options, log);
    }

    private sealed class Factory(IConnectionMultiplexer redis, RedisAdapterOptions options, AdapterLifecycleLog log) : IAdapterFactory
    {
        public IAdapter Create(Namespace nsp) => options.Sharded
            ? new RecordingShardedAdapter(nsp, redis, options, log)
            : new RecordingAdapter(nsp, redis, options, log);
    }

    /// <summary>The Redis adapter, reporting its lifecycle calls.</summary>
    private sealed class RecordingAdapter(Namespace nsp, IConnectionMultiplexer redis, RedisAdapterOptions options, AdapterLifecycleLog log)
        : RedisAdapter(nsp, redis, options)
    {
        public override ValueTask InitAsync()
        {
            log.Add("init", Namespace.Name);
            return base.InitAsync();
        }

        public override ValueTask CloseAsync()
        {
            log.Add("close", Namespace.Name);
            return base.CloseAsync();
        }
    }

    /// <summary>The sharded Redis adapter, reporting its lifecycle calls.</summary>
    private sealed class RecordingShardedAdapter(Namespace nsp, IConnectionMultiplexer redis, RedisAdapterOptions options, AdapterLifecycleLog log)
        : ShardedRedisAdapter(nsp, redis, options)
    {
        public override ValueTask InitAsync()
        {
            log.Add("init", Namespace.Name);
            return base.InitAsync();
        }

        public override ValueTask CloseAsync()
        {
            log.Add("close", Namespace.Name);
            return base.CloseAsync();
        }
    }
}

/// <summary>The specification on two Redis nodes (answers on the shared response channel).</summary>
public sealed class RedisAdapterSpecification : RedisAdapterSpecificationBase
{
    protected override int NodeCount => 2;
}

/// <summary>The specification on three Redis nodes, answers on each requester's own response channel.</summary>
public sealed class RedisAdapterThreeNodeSpecification : RedisAdapterSpecificationBase
{
    protected override int NodeCount => 3;

    protected override RedisAdapterOptions Options => new() { PublishOnSpecificResponseChannel = true };
}

/// <summary>
/// The specification on two nodes of the sharded variant (SPUBLISH/SSUBSCRIBE), static subscription mode: one
/// channel per namespace keeps every node's messages in order (a dynamic mode subscribes a room's channel when the
/// room appears, so a broadcast published right after a remote join may precede the subscription, as with Node's).
/// </summary>
public sealed class ShardedRedisAdapterSpecification : RedisAdapterSpecificationBase
{
    protected override int NodeCount => 2;

    protected override RedisAdapterOptions Options => new() { Sharded = true, SubscriptionMode = RedisSubscriptionMode.Static };
}

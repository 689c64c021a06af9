using Evolution.Events.SocketIO.Adapters;
using Evolution.Events.SocketIO.Redis;
using Evolution.Events.Testing;
using StackExchange.Redis;

namespace Evolution.Events.SocketIO.Tests.Adapters;

/// <summary>One real redis-server for the streams adapter's specification run (each cluster gets a stream of its own).</summary>
public sealed class StreamsRedisFixture : IAsyncLifetime
{
    public RedisServer Redis { get; private set; } = null!;

    public ConnectionMultiplexer Connection { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Redis = await RedisServer.StartAsync();
        Connection = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{Redis.Port},abortConnect=false");
    }

    public async Task DisposeAsync()
    {
        await Connection.DisposeAsync();
        await Redis.DisposeAsync();
    }
}

/// <summary>The adapter specification against the <see cref="RedisStreamsAdapter"/>: two nodes, one Redis, one stream per test.</summary>
public sealed class RedisStreamsAdapterSpecification(StreamsRedisFixture fixture) : AdapterSpecification, IClassFixture<StreamsRedisFixture>, IAsyncLifetime
{
    private readonly List<ConnectionMultiplexer> _connections = [];
    private RedisStreamsAdapterOptions _options = new();

    protected override int NodeCount => 2;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var connection in _connections)
        {
            await connection.DisposeAsync();
        }
    }

    protected override void OnNewCluster()
    {
        var name = "spec-" + Guid.NewGuid().ToString("N")[..8];
        _options = new RedisStreamsAdapterOptions { StreamName = name, ChannelPrefix = name, SessionKeyPrefix = name + ":session:" };
    }

    protected override IAdapterFactory CreateFactory(AdapterLifecycleLog log)
    {
        // each node its own connection, as separate processes would have
        var connection = ConnectionMultiplexer.Connect($"127.0.0.1:{fixture.Redis.Port},abortConnect=false");
        lock (_connections)
        {
            _connections.Add(connection);
        }

        return new RedisStreamsAdapterFactory(connection, _options, create: (nsp, cluster) => new RecordingAdapter(nsp, cluster, log));
    }

    protected override async Task ClusterReadyAsync(Node node)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        foreach (var nsp in new[] { node.Nsp }.Concat(node.Peers.Select(p => p.Nsp)))
        {
            while (await nsp.Adapter.ServerCountAsync() < NodeCount)
            {
                Assert.True(DateTime.UtcNow < deadline, "the nodes did not see each other within 20 s");
                await Task.Delay(20);
            }
        }
    }

    protected override async Task<bool> SessionKeptAsync(Node node, string pid) =>
        await fixture.Connection.GetDatabase().KeyExistsAsync(((RedisStreamsAdapter)node.Nsp.Adapter).Options.SessionKeyPrefix + pid);

    /// <summary>The streams adapter, reporting its lifecycle calls.</summary>
    private sealed class RecordingAdapter(Namespace nsp, RedisStreamsAdapterFactory cluster, AdapterLifecycleLog log) : RedisStreamsAdapter(nsp, cluster)
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

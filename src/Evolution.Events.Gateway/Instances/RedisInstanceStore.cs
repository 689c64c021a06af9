using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Evolution.Events.Gateway.Observability;
using Evolution.Events.Gateway.Options;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using StackExchange.Redis;

namespace Evolution.Events.Gateway.Instances;

/// <summary>
/// The shared store (REDIS_URI): every node reads and writes one registry in Redis. Key layout, with
/// <c>p</c> = REDIS_KEY_PREFIX (default <c>evolution-events:</c>), documented in docs/scale-out.md:
/// <list type="bullet">
/// <item><c>p + "instances"</c>: set of instance names.</item>
/// <item><c>p + "instance:" + name</c>: hash <c>token</c>, <c>tokenHash</c> (SHA-256 hex), <c>createdAt</c>
/// (ISO 8601), <c>wsEnabled</c> (<c>1</c>/<c>0</c>), <c>wsEvents</c> (JSON array).</item>
/// <item><c>p + "token:" + sha256hex(token)</c>: the name owning that token (uniqueness across nodes).</item>
/// <item><c>p + "revision"</c>: incremented by every write.</item>
/// <item>channel <c>p + "changes"</c>: <c>"{revision} {name}"</c> published by every write.</item>
/// </list>
/// Every write is one Lua script (atomic: check, write, bump the revision, publish). Commands fail fast
/// while Redis is unreachable (<see cref="InstanceStoreUnavailableException"/>); the multiplexer reconnects
/// by itself and a full reload is asked for when it does, and every REDIS_RELOAD_INTERVAL_MS.
/// </summary>
public sealed class RedisInstanceStore : IInstanceStore, IAsyncDisposable
{
    private const string CreateScript = """
        if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
        if redis.call('EXISTS', KEYS[3]) == 1 then return -2 end
        local rev = redis.call('INCR', KEYS[4])
        redis.call('HSET', KEYS[2], 'token', ARGV[2], 'tokenHash', ARGV[3], 'createdAt', ARGV[4], 'wsEnabled', ARGV[5], 'wsEvents', ARGV[6])
        redis.call('SET', KEYS[3], ARGV[1])
        redis.call('SADD', KEYS[1], ARGV[1])
        redis.call('PUBLISH', ARGV[7], rev .. ' ' .. ARGV[1])
        return rev
        """;

    private const string DeleteScript = """
        local fields = redis.call('HGETALL', KEYS[2])
        if #fields == 0 then return false end
        local hash = redis.call('HGET', KEYS[2], 'tokenHash')
        redis.call('DEL', KEYS[2])
        if hash then redis.call('DEL', ARGV[2] .. hash) end
        redis.call('SREM', KEYS[1], ARGV[1])
        local rev = redis.call('INCR', KEYS[3])
        redis.call('PUBLISH', ARGV[3], rev .. ' ' .. ARGV[1])
        return {rev, fields}
        """;

    private const string SettingsScript = """
        if redis.call('EXISTS', KEYS[1]) == 0 then return false end
        redis.call('HSET', KEYS[1], 'wsEnabled', ARGV[1], 'wsEvents', ARGV[2])
        local rev = redis.call('INCR', KEYS[2])
        redis.call('PUBLISH', ARGV[3], rev .. ' ' .. ARGV[4])
        return {rev, redis.call('HGETALL', KEYS[1])}
        """;

    private const string RotateScript = """
        if redis.call('EXISTS', KEYS[1]) == 0 then return false end
        if redis.call('EXISTS', KEYS[2]) == 1 then return -2 end
        local old = redis.call('HGET', KEYS[1], 'tokenHash')
        if old then redis.call('DEL', ARGV[3] .. old) end
        redis.call('HSET', KEYS[1], 'token', ARGV[1], 'tokenHash', ARGV[2])
        redis.call('SET', KEYS[2], ARGV[4])
        local rev = redis.call('INCR', KEYS[3])
        redis.call('PUBLISH', ARGV[5], rev .. ' ' .. ARGV[4])
        return {rev, redis.call('HGETALL', KEYS[1])}
        """;

    private const string ReadScript = """
        return {tonumber(redis.call('GET', KEYS[2]) or '0'), redis.call('HGETALL', KEYS[1])}
        """;

    private const string ReadAllScript = """
        local out = {tonumber(redis.call('GET', KEYS[2]) or '0')}
        for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
          out[#out + 1] = name
          out[#out + 1] = redis.call('HGETALL', ARGV[1] .. name)
        end
        return out
        """;

    private static readonly TimeSpan StartupWait = TimeSpan.FromSeconds(15);
    private readonly GatewayOptions _options;
    private readonly RedisSettings _settings;
    private readonly GatewayMetrics _metrics;
    private readonly ILogger<RedisInstanceStore> _logger;
    private readonly RedisKey _instancesKey;
    private readonly RedisKey _revisionKey;
    private readonly string _instancePrefix;
    private readonly string _tokenPrefix;
    private readonly RedisChannel _channel;
    private ConnectionMultiplexer? _redis;
    private Timer? _reloadTimer;
    private int _up = 1;

    /// <summary>Creates the store; nothing connects before <see cref="InitializeAsync"/>.</summary>
    public RedisInstanceStore(GatewayOptions options, GatewayMetrics metrics, ILogger<RedisInstanceStore> logger)
    {
        _options = options;
        _settings = options.Redis ?? throw new InvalidOperationException("REDIS_URI is not set");
        _metrics = metrics;
        _logger = logger;
        var prefix = options.RedisKeyPrefix;
        _instancesKey = prefix + "instances";
        _revisionKey = prefix + "revision";
        _instancePrefix = prefix + "instance:";
        _tokenPrefix = prefix + "token:";
        _channel = RedisChannel.Literal(prefix + "changes");
    }

    /// <inheritdoc />
    public event Action<InstanceChange>? Changed;

    /// <inheritdoc />
    public bool IsShared => true;

    /// <summary>True while the last thing heard from Redis was an answer.</summary>
    public bool IsUp => Volatile.Read(ref _up) == 1;

    /// <summary>The shared connection (null before <see cref="InitializeAsync"/>); the Redis event bus rides on it.</summary>
    public IConnectionMultiplexer? Connection => _redis;

    private IDatabase Db => (_redis ?? throw new InvalidOperationException("not initialized")).GetDatabase(_settings.Database);

    /// <summary>Connects (waiting up to 15 s for Redis to answer) and subscribes to the change channel.</summary>
    public async Task InitializeAsync(CancellationToken ct)
    {
        _redis = await ConnectionMultiplexer.ConnectAsync(BuildConfiguration());
        // Up/down follows the interactive connection (commands); the subscription's own drops only ask for a
        // reload when it is back (OnRestored).
        _redis.ConnectionFailed += (_, e) =>
        {
            if (e.ConnectionType == ConnectionType.Interactive)
                MarkDown(e.FailureType.ToString());
        };
        _redis.ConnectionRestored += (_, e) => OnRestored(e.ConnectionType);
        var subscriber = _redis.GetSubscriber();
        Action<RedisChannel, RedisValue> handler = (_, message) => OnMessage(message);
        var deadline = DateTime.UtcNow + StartupWait;
        while (true)
        {
            Exception? failure = null;
            try
            {
                await Db.PingAsync();
                // The subscription has its own connection, which may come up after the interactive one.
                if (subscriber.IsConnected(_channel))
                {
                    await subscriber.SubscribeAsync(_channel, handler);
                    break;
                }
            }
            catch (Exception ex) when (IsConnectionError(ex))
            {
                failure = ex;
                await subscriber.UnsubscribeAsync(_channel, handler, CommandFlags.FireAndForget)
                    .ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
            if (DateTime.UtcNow >= deadline)
            {
                throw new GatewayConfigurationException(
                    $"Invalid configuration: REDIS_URI cannot be reached ({_settings.Display}: "
                    + $"{(failure?.Message ?? "no subscription connection").ReplaceLineEndings(" ")})", failure!);
            }
            await Task.Delay(100, ct);
        }
        _metrics.RedisUp(true);
        _reloadTimer = new Timer(_ => Changed?.Invoke(new InstanceChange(null, 0)), null,
            _options.RedisReloadInterval, _options.RedisReloadInterval);
        _logger.LogInformation("Instance registry in Redis at {Redis} (keys {Prefix}*)", _settings.Display, _options.RedisKeyPrefix);
    }

    public async Task<RegistryRead> ReadAllAsync(CancellationToken ct)
    {
        var result = await RunAsync(ReadAllScript, [_instancesKey, _revisionKey], [_instancePrefix]);
        var items = (RedisResult[])result!;
        var entries = new List<(InstanceInfo, InstanceSettings)>();
        for (var i = 1; i + 1 < items.Length; i += 2)
        {
            if (Parse((string)items[i]!, (RedisResult[])items[i + 1]!) is { } entry)
                entries.Add(entry);
        }
        return new RegistryRead((long)items[0], entries);
    }

    public async Task<InstanceRead> ReadAsync(string name, CancellationToken ct)
    {
        var items = (RedisResult[])(await RunAsync(ReadScript, [_instancePrefix + name, _revisionKey], []))!;
        var entry = Parse(name, (RedisResult[])items[1]!);
        return new InstanceRead((long)items[0], entry?.Info, entry?.Settings);
    }

    public async Task<(CreateInstanceStatus Status, long Revision)> CreateAsync(InstanceInfo info, InstanceSettings settings, CancellationToken ct)
    {
        var tokenHash = TokenHash(info.Token);
        var result = (long)(await RunAsync(CreateScript,
            [_instancesKey, _instancePrefix + info.Name, _tokenPrefix + tokenHash, _revisionKey],
            [info.Name, info.Token, tokenHash, info.CreatedAt.ToString("O", CultureInfo.InvariantCulture),
                settings.Enabled ? "1" : "0", JsonSerializer.Serialize(settings.Events), _channel.ToString()]));
        return result switch
        {
            -1 => (CreateInstanceStatus.NameExists, 0),
            -2 => (CreateInstanceStatus.TokenTaken, 0),
            _ => (CreateInstanceStatus.Created, result),
        };
    }

    public async Task<InstanceRead> DeleteAsync(string name, CancellationToken ct)
    {
        var result = await RunAsync(DeleteScript, [_instancesKey, _instancePrefix + name, _revisionKey],
            [name, _tokenPrefix, _channel.ToString()]);
        return ToRead(name, result);
    }

    public async Task<InstanceRead> UpdateSettingsAsync(string name, InstanceSettings settings, CancellationToken ct)
    {
        var result = await RunAsync(SettingsScript, [_instancePrefix + name, _revisionKey],
            [settings.Enabled ? "1" : "0", JsonSerializer.Serialize(settings.Events), _channel.ToString(), name]);
        return ToRead(name, result);
    }

    public async Task<InstanceRead> RotateTokenAsync(string name, string token, CancellationToken ct)
    {
        var tokenHash = TokenHash(token);
        var result = await RunAsync(RotateScript, [_instancePrefix + name, _tokenPrefix + tokenHash, _revisionKey],
            [token, tokenHash, _tokenPrefix, name, _channel.ToString()]);
        if (result.Resp2Type == ResultType.Integer)
            throw new InvalidOperationException("token already used by another instance");
        return ToRead(name, result);
    }

    /// <summary>Readiness: Redis answers PING.</summary>
    public async Task<HealthCheckResult> CheckHealthAsync(CancellationToken ct)
    {
        if (_redis is null || !_redis.IsConnected)
            return HealthCheckResult.Unhealthy($"Redis store unreachable ({_settings.Display})");
        try
        {
            var latency = await Db.PingAsync().WaitAsync(TimeSpan.FromSeconds(2), ct);
            return HealthCheckResult.Healthy($"Redis store reachable ({latency.TotalMilliseconds:0.0} ms)");
        }
        catch (Exception ex) when (IsConnectionError(ex) || ex is TimeoutException)
        {
            MarkDown(ex.GetType().Name);
            return HealthCheckResult.Unhealthy($"Redis store unreachable ({_settings.Display}: {ex.Message.ReplaceLineEndings(" ")})");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_reloadTimer is not null)
            await _reloadTimer.DisposeAsync();
        if (_redis is not null)
            await _redis.DisposeAsync();
    }

    internal ConfigurationOptions BuildConfiguration()
    {
        var config = new ConfigurationOptions
        {
            AbortOnConnectFail = false,
            // While Redis is away, commands fail at once (writes answer 503) instead of queueing.
            BacklogPolicy = BacklogPolicy.FailFast,
            ConnectTimeout = 3000,
            AsyncTimeout = 3000,
            SyncTimeout = 3000,
            ConnectRetry = 1,
            ReconnectRetryPolicy = new LinearRetry(500),
            ClientName = "evolution-events-gateway",
            DefaultDatabase = _settings.Database,
            User = _settings.User,
            Password = _settings.Password,
            Ssl = _settings.UseTls,
        };
        if (IPAddress.TryParse(_settings.Host, out var address))
            config.EndPoints.Add(new IPEndPoint(address, _settings.Port));
        else
            config.EndPoints.Add(_settings.Host, _settings.Port);
        if (_settings.UseTls)
            config.SslHost = _settings.Host;
        return config;
    }

    private async Task<RedisResult> RunAsync(string script, RedisKey[] keys, RedisValue[] values)
    {
        try
        {
            var result = await Db.ScriptEvaluateAsync(script, keys, values);
            MarkUp();
            return result;
        }
        catch (Exception ex) when (IsConnectionError(ex))
        {
            MarkDown(ex.GetType().Name);
            throw new InstanceStoreUnavailableException(
                $"The instance registry (Redis) is unreachable; try again later ({ex.GetType().Name})", ex);
        }
    }

    private static bool IsConnectionError(Exception ex) =>
        ex is RedisConnectionException or RedisTimeoutException or ObjectDisposedException
        || (ex is RedisServerException server && server.Message.StartsWith("LOADING", StringComparison.Ordinal));

    private void MarkDown(string reason)
    {
        if (Interlocked.Exchange(ref _up, 0) == 0)
            return;
        _metrics.RedisUp(false);
        _metrics.RedisOutage();
        _logger.LogWarning("Redis unreachable ({Redis}, {Reason}): serving the instance registry from memory; writes answer 503",
            _settings.Display, reason);
    }

    private void MarkUp()
    {
        if (Interlocked.Exchange(ref _up, 1) == 1)
            return;
        _metrics.RedisUp(true);
        _logger.LogInformation("Redis reachable again ({Redis}): reloading the instance registry", _settings.Display);
        Changed?.Invoke(new InstanceChange(null, 0));
    }

    private void OnRestored(ConnectionType type)
    {
        // Any notification published while a connection was down is lost: reload everything.
        if (_redis?.IsConnected == true)
            MarkUp();
        Changed?.Invoke(new InstanceChange(null, 0));
    }

    private void OnMessage(RedisValue message)
    {
        var text = (string?)message;
        var space = text?.IndexOf(' ', StringComparison.Ordinal) ?? -1;
        if (space <= 0 || !long.TryParse(text.AsSpan(0, space), NumberStyles.None, CultureInfo.InvariantCulture, out var revision)
            || !InstanceNames.IsValid(text![(space + 1)..]))
        {
            _logger.LogWarning("Ignored a malformed registry change notification");
            return;
        }
        Changed?.Invoke(new InstanceChange(text[(space + 1)..], revision));
    }

    private InstanceRead ToRead(string name, RedisResult result)
    {
        if (result.IsNull)
            return default;
        var items = (RedisResult[])result!;
        var entry = Parse(name, (RedisResult[])items[1]!);
        return new InstanceRead((long)items[0], entry?.Info, entry?.Settings);
    }

    private (InstanceInfo Info, InstanceSettings Settings)? Parse(string name, RedisResult[] fields)
    {
        if (fields.Length == 0)
            return null;
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i + 1 < fields.Length; i += 2)
            map[(string)fields[i]!] = (string)fields[i + 1]!;
        try
        {
            var info = new InstanceInfo(name, map["token"],
                DateTimeOffset.Parse(map["createdAt"], CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind));
            var events = JsonSerializer.Deserialize<string[]>(map.GetValueOrDefault("wsEvents", "[]")) ?? [];
            return (info, new InstanceSettings(map.GetValueOrDefault("wsEnabled", "1") != "0", events));
        }
        catch (Exception ex) when (ex is KeyNotFoundException or FormatException or JsonException)
        {
            _logger.LogWarning("Ignored the malformed Redis entry of instance {Instance} ({Error})", name, ex.GetType().Name);
            return null;
        }
    }

    private static string TokenHash(string token) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token))).ToLowerInvariant();
}

using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Evolution.Events.SocketIO.Redis;

/// <summary>
/// The one reader of the stream for every namespace of a server (as Node's <c>startPolling</c>): a loop of blocking
/// <c>XREAD BLOCK … COUNT … STREAMS {stream} {position}</c> on a connection of its own, handing each entry to the
/// adapter of its namespace, in stream order. A blocking XREAD would stall every other command on a shared
/// StackExchange.Redis multiplexer (one socket, commands pipelined in order), hence the dedicated connection; a
/// short-poll loop on the shared one would add its poll period to every broadcast's latency and load Redis while idle.
/// <see cref="Position"/> (the newest entry handed out) and the delivery of broadcasts change under <see cref="Gate"/>,
/// which also makes the join point of a socket exact. Started by the first adapter, stopped with the last one.
/// </summary>
internal sealed class StreamConsumer
{
    private readonly IConnectionMultiplexer _redis;
    private readonly RedisStreamsAdapterOptions _options;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, RedisStreamsAdapter> _adapters = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _lifecycle = new(1, 1);
    private CancellationTokenSource? _stop;
    private ConnectionMultiplexer? _reader;
    private Task? _loop;
    private string? _position;
    private int _registered; // adapters between InitAsync and CloseAsync, under _lifecycle

    public StreamConsumer(IConnectionMultiplexer redis, RedisStreamsAdapterOptions options, ILogger logger)
    {
        _redis = redis;
        _options = options;
        _logger = logger;
    }

    /// <summary>Serializes broadcasts' delivery from the stream with <see cref="Position"/> reads (join points).</summary>
    public object Gate { get; } = new();

    /// <summary>The id of the newest entry handed out (the stream's last id when reading began), or null before it is known. Read under <see cref="Gate"/>.</summary>
    public string? Position => _position;

    /// <summary>
    /// Hands the namespace's entries to this adapter from now on (called when it is made, before the server may
    /// connect sockets to it, so that none of its entries after a join point is skipped).
    /// </summary>
    public void Add(RedisStreamsAdapter adapter) => _adapters[adapter.Namespace.Name] = adapter;

    /// <summary>Adds an adapter (its namespace's entries go to it); starts the reader with the first one.</summary>
    public async Task RegisterAsync(RedisStreamsAdapter adapter)
    {
        await _lifecycle.WaitAsync().ConfigureAwait(false);
        try
        {
            _adapters[adapter.Namespace.Name] = adapter;
            _registered++;
            if (_loop is not null)
            {
                return;
            }

            var config = ConfigurationOptions.Parse(_redis.Configuration);
            config.AbortOnConnectFail = false;
            config.AsyncTimeout = Math.Max(config.AsyncTimeout, (int)_options.BlockTime.TotalMilliseconds + 5000);
            _reader = await ConnectionMultiplexer.ConnectAsync(config).ConfigureAwait(false);
            _stop = new CancellationTokenSource();
            lock (Gate)
            {
                _position = null;
            }

            try
            {
                // known before any socket connects (a namespace's connects wait for its adapter's init), when Redis
                // answers: the first join points are exact, and no entry after them is skipped
                await InitPositionAsync(_reader.GetDatabase()).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                _logger.LogWarning(ex, "Redis streams adapter: the stream's last id could not be read; the reader retries");
            }

            var stop = _stop.Token;
            _loop = Task.Run(() => RunAsync(stop));
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>Removes an adapter; stops the reader (and closes its connection) with the last one registered.</summary>
    public async Task UnregisterAsync(RedisStreamsAdapter adapter)
    {
        await _lifecycle.WaitAsync().ConfigureAwait(false);
        try
        {
            _adapters.TryRemove(new KeyValuePair<string, RedisStreamsAdapter>(adapter.Namespace.Name, adapter));
            if (--_registered > 0 || _loop is null)
            {
                return;
            }

            _stop!.Cancel();
            await _reader!.CloseAsync(allowCommandsToComplete: false).ConfigureAwait(false);
            await _loop.ConfigureAwait(false);
            _reader.Dispose();
            _stop.Dispose();
            (_loop, _reader, _stop) = (null, null, null);
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    private async Task InitPositionAsync(IDatabase db)
    {
        var last = await LastGeneratedIdAsync(db, _options.StreamName).ConfigureAwait(false);
        lock (Gate)
        {
            _position ??= last;
        }
    }

    /// <summary>The stream's <c>last-generated-id</c>, or <c>0-0</c> when it does not exist.</summary>
    internal static async Task<string> LastGeneratedIdAsync(IDatabase db, string stream)
    {
        var info = await StreamInfoAsync(db, stream).ConfigureAwait(false);
        return info?.GetValueOrDefault("last-generated-id") ?? "0-0";
    }

    /// <summary><c>XINFO STREAM</c>'s scalar fields, or null when the stream does not exist.</summary>
    internal static async Task<Dictionary<string, string>?> StreamInfoAsync(IDatabase db, string stream)
    {
        RedisResult result;
        try
        {
            result = await db.ExecuteAsync("XINFO", "STREAM", stream).ConfigureAwait(false);
        }
        catch (RedisServerException ex) when (ex.Message.Contains("no such key", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        var items = (RedisResult[])result!;
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i + 1 < items.Length; i += 2)
        {
            if (items[i + 1].Resp2Type is ResultType.BulkString or ResultType.SimpleString or ResultType.Integer)
            {
                fields[(string)items[i]!] = (string)items[i + 1]!;
            }
        }

        return fields;
    }

    private async Task RunAsync(CancellationToken stop)
    {
        var failures = 0;
        var db = _reader!.GetDatabase();
        var block = ((long)_options.BlockTime.TotalMilliseconds).ToString(CultureInfo.InvariantCulture);
        var count = _options.ReadCount.ToString(CultureInfo.InvariantCulture);
        while (!stop.IsCancellationRequested)
        {
            try
            {
                string? position;
                lock (Gate)
                {
                    position = _position;
                }

                if (position is null)
                {
                    await InitPositionAsync(db).ConfigureAwait(false);
                    continue;
                }

                var result = await db.ExecuteAsync("XREAD", "COUNT", count, "BLOCK", block, "STREAMS", _options.StreamName, position).ConfigureAwait(false);
                if (failures > 0)
                {
                    _logger.LogInformation("Redis streams adapter: reading the stream again");
                    failures = 0;
                }

                if (result.IsNull)
                {
                    continue;
                }

                foreach (var entry in Entries(result))
                {
                    var parts = (RedisResult[])entry!;
                    Dispatch((string)parts[0]!, Fields(parts[1]));
                }
            }
            catch (Exception ex) when (!stop.IsCancellationRequested)
            {
                if (failures++ == 0)
                {
                    _logger.LogWarning(ex, "Redis streams adapter: reading the stream failed; retrying until Redis answers");
                }

                try
                {
                    await Task.Delay(Math.Min(100 * failures, 2000), stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
            catch (Exception)
            {
                return; // stopping: the closed connection failed the pending read
            }
        }
    }

    /// <summary>The entries of an XREAD answer for one stream: <c>[[key, entries]]</c> (RESP2) or <c>{key: entries}</c> (RESP3).</summary>
    private static RedisResult[] Entries(RedisResult result)
    {
        var items = (RedisResult[])result!;
        if (items.Length == 0)
        {
            return [];
        }

        if (result.Resp3Type == ResultType.Map || items[0].Resp2Type != ResultType.Array)
        {
            return (RedisResult[])items[1]!; // a map, flattened: key, entries
        }

        return (RedisResult[])((RedisResult[])items[0]!)[1]!;
    }

    /// <summary>The field/value pairs of an entry.</summary>
    internal static Dictionary<string, RedisValue> Fields(RedisResult values)
    {
        var items = (RedisResult[])values!;
        var fields = new Dictionary<string, RedisValue>(StringComparer.Ordinal);
        for (var i = 0; i + 1 < items.Length; i += 2)
        {
            fields[(string)items[i]!] = (RedisValue)items[i + 1];
        }

        return fields;
    }

    private void Dispatch(string id, Dictionary<string, RedisValue> fields)
    {
        ClusterMessage? message = null;
        RedisStreamsAdapter? adapter = null;
        try
        {
            message = StreamsWireCodec.DecodeEntry(fields);
            _adapters.TryGetValue(message.Nsp, out adapter);
            if (adapter is not null && message.Type != ClusterMessageType.Broadcast)
            {
                adapter.OnStreamMessage(message);
            }
        }
        catch (Exception ex)
        {
            // a malformed entry costs that entry only
            _logger.LogWarning(ex, "Redis streams adapter: ignored a malformed stream entry {Id}", id);
        }

        lock (Gate)
        {
            if (adapter is not null && message is { Type: ClusterMessageType.Broadcast })
            {
                try
                {
                    adapter.OnStreamBroadcast(message, id);
                }
                catch (Exception ex)
                {
                    _logger.LogWarning(ex, "Redis streams adapter: ignored a malformed broadcast entry {Id}", id);
                }
            }

            _position = id;
        }
    }
}

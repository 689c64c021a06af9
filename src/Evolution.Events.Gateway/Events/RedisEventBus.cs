using System.Buffers.Binary;
using System.Text;
using System.Threading.Channels;
using Evolution.Events.Gateway.Instances;
using Evolution.Events.Gateway.Observability;
using Evolution.Events.Gateway.Options;
using StackExchange.Redis;

namespace Evolution.Events.Gateway.Events;

/// <summary>
/// The cluster bus (REDIS_URI). <see cref="PublishAsync"/> runs one Lua script per batch that advances the shared
/// event counter (<c>REDIS_KEY_PREFIX + "offset"</c>) by the batch's size and, in the same atomic step, appends the
/// batch whole as one message: to the stream <c>REDIS_KEY_PREFIX + "stream"</c> (<c>REDIS_ADAPTER=streams</c>,
/// <c>XADD … MAXLEN ~ REDIS_STREAM_MAXLEN</c>) or to the channel <c>REDIS_KEY_PREFIX + "events"</c>
/// (<c>REDIS_ADAPTER=pubsub</c>). Every node, the publisher included, reads it (streams: <c>XREAD</c> from the
/// last entry it read, so a node whose connection dropped catches up; a new node starts at the end) and feeds its
/// local <see cref="InProcessEventBus"/> (bounded, backpressure) in order, so each node delivers each event once to
/// its own sockets. Each event gets the counter's value (<see cref="GatewayEvent.Offset"/>, times
/// <see cref="OffsetScale"/>): identical on every node, the Socket.IO recovery offset that lets a client recover on
/// any node. A hole in the counter is a batch this node never received (<c>evolution_events_bus_missed_total</c>).
/// <para>
/// While Redis is unreachable a batch is delivered to this node only (<c>evolution_events_local_only_total</c>,
/// a warning per outage). Each message carries the node's id and a sequence number: a batch this node
/// delivered locally after a doubtful publish (a timeout) is skipped if it comes back from Redis anyway, so
/// it is never delivered twice here.
/// </para>
/// Message: pub/sub <c>"{counter} "</c> + frame; stream entry fields <c>o</c> (counter) and <c>b</c> (frame). Frame
/// (big-endian): <c>"EVB1"</c>, node id (16 bytes), sequence (int64), event count (int32), then per event: instance
/// (uint16 length + UTF-8), dotted event name (uint16 length + UTF-8), envelope (int32 length + the envelope bytes as
/// serialized at ingestion). The counter is the value after the batch: its events are counter-count+1 … counter.
/// </summary>
public sealed class RedisEventBus : IEventBus, IHostedService, IAsyncDisposable
{
    private static readonly byte[] Magic = "EVB1"u8.ToArray();
    private const int HeaderLength = 4 + 16 + 8 + 4;
    private const int MaxDoubtful = 10_000;

    /// <summary>
    /// Offsets are the shared counter times this: a node delivering events locally while Redis is away numbers
    /// them in between (its own last offset + 1) without colliding with the next shared one.
    /// </summary>
    public const long OffsetScale = 1024;

    private const string PubSubScript = """
        local last = redis.call('INCRBY', KEYS[1], ARGV[2])
        redis.call('PUBLISH', KEYS[2], string.format('%d', last) .. ' ' .. ARGV[1])
        return last
        """;

    private const string StreamScript = """
        local last = redis.call('INCRBY', KEYS[1], ARGV[2])
        redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'o', string.format('%d', last), 'b', ARGV[1])
        return last
        """;

    /// <summary>How long <see cref="Complete"/> waits for this node's own batches to come back from Redis.</summary>
    public static readonly TimeSpan DrainWait = TimeSpan.FromSeconds(5);

    private readonly InProcessEventBus _local;
    private readonly RedisInstanceStore? _store;
    private readonly GatewayMetrics _metrics;
    private readonly ILogger<RedisEventBus> _logger;
    private readonly RedisAdapterMode _mode;
    private readonly int _maxLength;
    private readonly RedisChannel _channel;
    private readonly RedisKey _streamKey;
    private readonly RedisKey _counterKey;
    private readonly Guid _nodeId = Guid.NewGuid();
    private readonly HashSet<long> _deliveredLocally = [];
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stopping = new();
    private ChannelMessageQueue? _queue;
    private ConnectionMultiplexer? _reader;
    private volatile bool _reading;
    private string _from = "0-0";
    private int _readerReconnects;
    private Task? _pump;
    private long _sequence;
    private long _lastCounter;
    private int _outage;
    private int _stopped;
    private readonly Lock _flight = new();
    private int _inflight;
    private volatile bool _completing;
    private int _disposed;

    /// <summary>Creates the bus on the instance store's Redis connection.</summary>
    public RedisEventBus(IInstanceStore store, GatewayOptions options, GatewayMetrics metrics, ILogger<RedisEventBus> logger)
    {
        _store = store as RedisInstanceStore ?? throw new InvalidOperationException("The Redis event bus needs the Redis instance store");
        _local = new InProcessEventBus();
        _metrics = metrics;
        _logger = logger;
        _mode = options.RedisAdapter;
        _maxLength = options.RedisStreamMaxLength;
        _channel = RedisChannel.Literal(options.RedisKeyPrefix + "events");
        _streamKey = options.RedisKeyPrefix + "stream";
        _counterKey = options.RedisKeyPrefix + "offset";
        metrics.LocalOnlyPublished();
    }

    /// <inheritdoc />
    public bool IsCompleted => _completing;

    /// <summary>The channel every node publishes to and subscribes on (pub/sub mode).</summary>
    public string ChannelName => _channel.ToString();

    /// <summary>The stream every node appends to and reads (streams mode).</summary>
    public string StreamKey => _streamKey.ToString();

    /// <summary>The Redis client name of this node's stream reader connection (streams mode).</summary>
    public string ReaderClientName => "evolution-events-stream-reader-" + _nodeId.ToString("N")[..8];

    /// <summary>Times the stream reader lost Redis and caught up after it came back (streams mode).</summary>
    public int ReaderReconnects => Volatile.Read(ref _readerReconnects);

    /// <summary>Streams or pub/sub (REDIS_ADAPTER).</summary>
    public RedisAdapterMode Mode => _mode;

    private bool CanPublish(IConnectionMultiplexer redis) =>
        redis.IsConnected && (_mode == RedisAdapterMode.Streams ? _reading : _queue is not null && redis.GetSubscriber().IsConnected(_channel));

    /// <inheritdoc />
    public async ValueTask PublishAsync(IReadOnlyList<GatewayEvent> batch, CancellationToken cancellationToken = default)
    {
        if (_completing)
            throw new EventBusCompletedException();
        var sequence = Interlocked.Increment(ref _sequence);
        var redis = _store?.Connection;
        if (redis is not null && CanPublish(redis))
        {
            lock (_flight)
            {
                if (_completing)
                    throw new EventBusCompletedException();
                _inflight++;
            }
            try
            {
                var frame = Encode(batch, sequence);
                if (_mode == RedisAdapterMode.Streams)
                    await redis.GetDatabase().ScriptEvaluateAsync(StreamScript, [_counterKey, _streamKey], [frame, batch.Count, _maxLength]);
                else
                    await redis.GetDatabase().ScriptEvaluateAsync(PubSubScript, [_counterKey, _channel.ToString()], [frame, batch.Count]);
                if (Interlocked.Exchange(ref _outage, 0) == 1)
                    _logger.LogInformation("Redis event bus reachable again: events reach every node");
                return;
            }
            catch (RedisTimeoutException)
            {
                // Maybe sent: deliver here, and skip it if it comes back.
                lock (_gate)
                {
                    if (_deliveredLocally.Count >= MaxDoubtful)
                        _deliveredLocally.Clear(); // bounded: those never came back
                    _deliveredLocally.Add(sequence);
                }
                Returned();
            }
            catch (Exception ex) when (ex is RedisConnectionException or ObjectDisposedException)
            {
                // Not sent.
                Returned();
            }
            catch
            {
                Returned();
                throw;
            }
        }
        if (Interlocked.Exchange(ref _outage, 1) == 0)
            _logger.LogWarning("Redis event bus unreachable: events ingested here reach this node's clients only until it is back");
        await _local.PublishAsync(batch, cancellationToken);
        _metrics.LocalOnly(batch.Count);
    }

    /// <inheritdoc />
    public IEventSubscription Subscribe() => _local.Subscribe();

    /// <summary>
    /// Refuses publishes from now on; the batches this node already published through Redis are still delivered
    /// here as they come back (at most <see cref="DrainWait"/>), then the local bus completes.
    /// </summary>
    public void Complete()
    {
        lock (_flight)
        {
            if (_completing)
                return;
            _completing = true;
            if (_inflight > 0)
            {
                _ = Task.Delay(DrainWait).ContinueWith(_ => Finish(), TaskScheduler.Default);
                return;
            }
        }
        Finish();
    }

    private void Returned()
    {
        bool finish;
        lock (_flight)
            finish = --_inflight == 0 && _completing;
        if (finish)
            Finish();
    }

    private void Finish()
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 1)
            return;
        _local.Complete();
        _stopping.Cancel();
    }

    /// <summary>
    /// Subscribes to the events channel, or opens the stream reader's own connection (its <c>XREAD BLOCK</c> would
    /// hold up the shared one) and starts at the stream's end; then feeds the local bus.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var redis = _store!.Connection ?? throw new InvalidOperationException("The instance store is not connected");
        if (_mode == RedisAdapterMode.PubSub)
        {
            _queue = await redis.GetSubscriber().SubscribeAsync(_channel);
            _pump = PumpAsync(_queue);
            _logger.LogInformation("Event bus on Redis channel {Channel}", ChannelName);
            return;
        }

        var config = _store.BuildConfiguration();
        config.ClientName = ReaderClientName;
        config.AsyncTimeout = config.SyncTimeout = 5000;
        _reader = await ConnectionMultiplexer.ConnectAsync(config);
        var newest = await redis.GetDatabase().StreamRangeAsync(_streamKey, "-", "+", 1, Order.Descending);
        var from = newest.Length > 0 ? newest[0].Id.ToString() : "0-0";
        _reading = true;
        _from = from;
        _pump = ReadStreamAsync(_reader);
        _logger.LogInformation("Event bus on Redis stream {Stream}, reading after {Id}", StreamKey, from);
    }

    /// <inheritdoc />
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        // Registered under two services: the container may dispose it twice.
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
            return;
        Complete();
        Finish();
        if (_queue is not null)
            await _queue.UnsubscribeAsync().ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (_pump is not null)
            await _pump.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (_reader is not null)
            await _reader.DisposeAsync();
        _stopping.Dispose();
    }

    private async Task PumpAsync(ChannelMessageQueue queue)
    {
        try
        {
            await foreach (var message in queue.WithCancellation(_stopping.Token))
            {
                if (!TrySplitPubSub(message.Message, out var counter, out var frame))
                {
                    _logger.LogWarning("Ignored a malformed message on the Redis event bus");
                    continue;
                }
                if (!await ReceiveAsync(counter, frame))
                    return;
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
        catch (ChannelClosedException)
        {
        }
    }

    private async Task ReadStreamAsync(ConnectionMultiplexer reader)
    {
        var db = reader.GetDatabase();
        var lost = false;
        try
        {
            while (!_stopping.IsCancellationRequested)
            {
                RedisResult result;
                try
                {
                    result = await db.ExecuteAsync("XREAD", "COUNT", 512, "BLOCK", 1000, "STREAMS", _streamKey, _from);
                    if (lost)
                    {
                        lost = false;
                        Interlocked.Increment(ref _readerReconnects);
                        _logger.LogInformation("Redis event stream reachable again: catching up after {Id}", _from);
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // RedisConnectionException, RedisTimeoutException (not a RedisException), …: retry from where it was
                    if (_stopping.IsCancellationRequested)
                        return;
                    if (!lost)
                    {
                        lost = true;
                        _logger.LogWarning("Redis event stream unreachable ({Reason}); this node will catch up after {Id} when it is back",
                            ex.GetType().Name, _from);
                    }
                    await Task.Delay(500, _stopping.Token);
                    continue;
                }
                if (result.IsNull || result.Resp2Type != ResultType.Array)
                    continue;
                try
                {
                    await ReceiveEntriesAsync(result);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // a reply of an unexpected shape costs that reply only
                    _logger.LogError(ex, "Redis event stream: could not read the entries after {Id}", _from);
                    await Task.Delay(500, _stopping.Token);
                }
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
        finally
        {
            _reading = false;
        }
    }

    /// <summary>Feeds the entries of one XREAD reply to the local bus, moving <see cref="_from"/> past each.</summary>
    private async Task ReceiveEntriesAsync(RedisResult result)
    {
        // RESP2: [[key, entries]]; RESP3 (a map): [key, entries]
        var outer = (RedisResult[])result!;
        var lists = outer.Length > 0 && outer[0].Resp2Type == ResultType.Array
            ? outer.Select(s => ((RedisResult[])s!)[1])
            : outer.Where((_, i) => i % 2 == 1);
        foreach (var list in lists)
        {
            foreach (var entry in (RedisResult[])list!)
            {
                var pair = (RedisResult[])entry!;
                var id = _from = (string)pair[0]!;
                RedisValue counterValue = RedisValue.Null, frame = RedisValue.Null;
                var fields = pair[1].Resp2Type == ResultType.Array ? (RedisResult[])pair[1]! : [];
                for (var i = 0; i + 1 < fields.Length; i += 2)
                {
                    var name = (string?)fields[i];
                    if (name == "o")
                        counterValue = (RedisValue)fields[i + 1];
                    else if (name == "b")
                        frame = (RedisValue)fields[i + 1];
                }
                if (!counterValue.TryParse(out long counter) || frame.IsNull)
                {
                    _logger.LogWarning("Ignored a malformed entry {Id} on the Redis event stream", id);
                    continue;
                }
                if (!await ReceiveAsync(counter, frame))
                    throw new OperationCanceledException(_stopping.Token);
            }
        }
    }

    /// <summary>Decodes one bus message and queues it for the fan-out; false once the local bus is completed.</summary>
    private async ValueTask<bool> ReceiveAsync(long counter, RedisValue frame)
    {
        if (!TryDecode(frame, out var node, out var sequence, out var batch) || counter < batch.Count)
        {
            _logger.LogWarning("Ignored a malformed message on the Redis event bus");
            return true;
        }
        var first = counter - batch.Count + 1;
        var previous = Interlocked.Exchange(ref _lastCounter, counter);
        if (previous != 0 && first > previous + 1)
        {
            _metrics.BusMissed(first - previous - 1);
            _logger.LogWarning("Redis event bus: this node missed {Count} events (counter {From} to {To}); its clients never get them",
                first - previous - 1, previous + 1, first - 1);
        }
        else if (previous != 0 && first <= previous)
        {
            _logger.LogWarning("Redis event bus: the shared counter went back from {Previous} to {Counter} (Redis lost its data?)", previous, counter);
        }
        for (var i = 0; i < batch.Count; i++)
            batch[i].Offset = (first + i) * OffsetScale;

        var own = node == _nodeId;
        if (own)
        {
            lock (_gate)
            {
                if (_deliveredLocally.Remove(sequence))
                    return true;
            }
        }
        try
        {
            await _local.PublishAsync(batch, _stopping.Token);
        }
        catch (EventBusCompletedException)
        {
            return false;
        }
        if (own)
            Returned();
        return true;
    }

    private static bool TrySplitPubSub(RedisValue message, out long counter, out RedisValue frame)
    {
        counter = 0;
        frame = RedisValue.Null;
        if (message.IsNull)
            return false;
        var bytes = (byte[])message!;
        var space = Array.IndexOf(bytes, (byte)' ');
        if (space <= 0 || space > 20 || !long.TryParse(bytes.AsSpan(0, space), System.Globalization.NumberStyles.None, null, out counter))
            return false;
        frame = bytes.AsSpan(space + 1).ToArray();
        return true;
    }

    /// <summary>Encodes a batch as one bus message (see the class remarks for the layout).</summary>
    internal byte[] Encode(IReadOnlyList<GatewayEvent> batch, long sequence)
    {
        var length = HeaderLength;
        foreach (var e in batch)
            length += 2 + Encoding.UTF8.GetByteCount(e.Instance) + 2 + Encoding.UTF8.GetByteCount(e.EventName) + 4 + e.EnvelopeJson.Length;
        var buffer = new byte[length];
        var span = buffer.AsSpan();
        Magic.CopyTo(span);
        _nodeId.TryWriteBytes(span[4..]);
        BinaryPrimitives.WriteInt64BigEndian(span[20..], sequence);
        BinaryPrimitives.WriteInt32BigEndian(span[28..], batch.Count);
        var at = HeaderLength;
        foreach (var e in batch)
        {
            at += WriteShortString(span[at..], e.Instance);
            at += WriteShortString(span[at..], e.EventName);
            BinaryPrimitives.WriteInt32BigEndian(span[at..], e.EnvelopeJson.Length);
            e.EnvelopeJson.Span.CopyTo(span[(at + 4)..]);
            at += 4 + e.EnvelopeJson.Length;
        }
        return buffer;
    }

    private static int WriteShortString(Span<byte> span, string text)
    {
        var written = Encoding.UTF8.GetBytes(text, span[2..]);
        BinaryPrimitives.WriteUInt16BigEndian(span, checked((ushort)written));
        return 2 + written;
    }

    /// <summary>Decodes a bus message; false for anything malformed (never throws on bad input).</summary>
    internal static bool TryDecode(RedisValue value, out Guid node, out long sequence, out List<GatewayEvent> batch)
    {
        node = default;
        sequence = 0;
        batch = [];
        if (value.IsNull)
            return false;
        ReadOnlyMemory<byte> memory = (byte[])value!;
        var span = memory.Span;
        if (span.Length < HeaderLength || !span[..4].SequenceEqual(Magic))
            return false;
        node = new Guid(span[4..20]);
        sequence = BinaryPrimitives.ReadInt64BigEndian(span[20..]);
        var count = BinaryPrimitives.ReadInt32BigEndian(span[28..]);
        if (count < 0 || count > span.Length)
            return false;
        var at = HeaderLength;
        for (var i = 0; i < count; i++)
        {
            if (!TryReadShortString(span, ref at, out var instance) || !TryReadShortString(span, ref at, out var name)
                || !EventNames.TryParse(name, out var eventName) || span.Length - at < 4)
                return false;
            var envelopeLength = BinaryPrimitives.ReadInt32BigEndian(span[at..]);
            at += 4;
            if (envelopeLength < 0 || envelopeLength > span.Length - at)
                return false;
            batch.Add(new GatewayEvent(instance, eventName, memory.Slice(at, envelopeLength)));
            at += envelopeLength;
        }
        return at == span.Length;
    }

    private static bool TryReadShortString(ReadOnlySpan<byte> span, ref int at, out string text)
    {
        text = "";
        if (span.Length - at < 2)
            return false;
        var length = BinaryPrimitives.ReadUInt16BigEndian(span[at..]);
        if (length > span.Length - at - 2)
            return false;
        text = Encoding.UTF8.GetString(span.Slice(at + 2, length));
        at += 2 + length;
        return true;
    }
}

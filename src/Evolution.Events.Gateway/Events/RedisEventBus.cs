using System.Buffers.Binary;
using System.Text;
using System.Threading.Channels;
using Evolution.Events.Gateway.Instances;
using Evolution.Events.Gateway.Observability;
using Evolution.Events.Gateway.Options;
using StackExchange.Redis;

namespace Evolution.Events.Gateway.Events;

/// <summary>
/// The cluster bus (REDIS_URI): <see cref="PublishAsync"/> publishes each batch whole, as one message, on the
/// channel <c>REDIS_KEY_PREFIX + "events"</c>; every node, the publisher included, receives it from its
/// subscription and feeds its local <see cref="InProcessEventBus"/> (bounded, backpressure) in order, so each
/// node delivers each event once to its own sockets. It rides on the instance store's connection.
/// <para>
/// While Redis is unreachable a batch is delivered to this node only (<c>evolution_events_local_only_total</c>,
/// a warning per outage). Each message carries the node's id and a sequence number: a batch this node
/// delivered locally after a doubtful publish (a timeout) is skipped if it comes back from Redis anyway, so
/// it is never delivered twice here.
/// </para>
/// Frame (big-endian): <c>"EVB1"</c>, node id (16 bytes), sequence (int64), event count (int32), then per
/// event: instance (uint16 length + UTF-8), dotted event name (uint16 length + UTF-8), envelope (int32 length +
/// the envelope bytes as serialized at ingestion).
/// </summary>
public sealed class RedisEventBus : IEventBus, IHostedService, IAsyncDisposable
{
    private static readonly byte[] Magic = "EVB1"u8.ToArray();
    private const int HeaderLength = 4 + 16 + 8 + 4;
    private const int MaxDoubtful = 10_000;

    /// <summary>How long <see cref="Complete"/> waits for this node's own batches to come back from Redis.</summary>
    public static readonly TimeSpan DrainWait = TimeSpan.FromSeconds(5);

    private readonly InProcessEventBus _local;
    private readonly RedisInstanceStore? _store;
    private readonly GatewayMetrics _metrics;
    private readonly ILogger<RedisEventBus> _logger;
    private readonly RedisChannel _channel;
    private readonly Guid _nodeId = Guid.NewGuid();
    private readonly HashSet<long> _deliveredLocally = [];
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stopping = new();
    private ChannelMessageQueue? _queue;
    private Task? _pump;
    private long _sequence;
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
        _channel = RedisChannel.Literal(options.RedisKeyPrefix + "events");
        metrics.LocalOnlyPublished();
    }

    /// <inheritdoc />
    public bool IsCompleted => _completing;

    /// <summary>The channel every node publishes to and subscribes on.</summary>
    public string ChannelName => _channel.ToString();

    /// <inheritdoc />
    public async ValueTask PublishAsync(IReadOnlyList<GatewayEvent> batch, CancellationToken cancellationToken = default)
    {
        if (_completing)
            throw new EventBusCompletedException();
        var sequence = Interlocked.Increment(ref _sequence);
        var redis = _store?.Connection;
        if (redis is not null && _queue is not null && redis.IsConnected && redis.GetSubscriber().IsConnected(_channel))
        {
            lock (_flight)
            {
                if (_completing)
                    throw new EventBusCompletedException();
                _inflight++;
            }
            try
            {
                await redis.GetSubscriber().PublishAsync(_channel, Encode(batch, sequence));
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

    /// <summary>Subscribes to the events channel (the instance store is connected by then) and starts feeding the local bus.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var redis = _store!.Connection ?? throw new InvalidOperationException("The instance store is not connected");
        _queue = await redis.GetSubscriber().SubscribeAsync(_channel);
        _pump = PumpAsync(_queue);
        _logger.LogInformation("Event bus on Redis channel {Channel}", ChannelName);
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
        _stopping.Dispose();
    }

    private async Task PumpAsync(ChannelMessageQueue queue)
    {
        try
        {
            await foreach (var message in queue.WithCancellation(_stopping.Token))
            {
                if (!TryDecode(message.Message, out var node, out var sequence, out var batch))
                {
                    _logger.LogWarning("Ignored a malformed message on the Redis event bus");
                    continue;
                }
                var own = node == _nodeId;
                if (own)
                {
                    lock (_gate)
                    {
                        if (_deliveredLocally.Remove(sequence))
                            continue;
                    }
                }
                try
                {
                    await _local.PublishAsync(batch, _stopping.Token);
                }
                catch (EventBusCompletedException)
                {
                    return;
                }
                if (own)
                    Returned();
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
        catch (ChannelClosedException)
        {
        }
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

using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Evolution.Events.SocketIO.Adapters;
using Evolution.Events.SocketIO.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace Evolution.Events.SocketIO.Redis;

/// <summary>Where the <see cref="RedisStreamsAdapter"/> takes connection state recovery's offsets and missed packets from.</summary>
public enum StreamsRecoveryMode
{
    /// <summary>
    /// The stream (as <c>@socket.io/redis-streams-adapter</c>): a broadcast's offset is its stream entry id, a socket's
    /// join point the newest entry this node delivered before it joined, and the missed packets are read back from the
    /// stream, so a session recovers on any node (ours or Node's).
    /// </summary>
    Stream,

    /// <summary>
    /// Only the sessions live in Redis (any node can claim them); offsets, join points and missed packets are the
    /// node's own, as the <see cref="InMemoryAdapter"/> has them (the server's recovery store, or what a subclass
    /// overrides). For an application that broadcasts node-locally and recovers from a log of its own.
    /// </summary>
    SessionsOnly,
}

/// <summary>Options of the <see cref="RedisStreamsAdapter"/> (named as <c>@socket.io/redis-streams-adapter</c>'s).</summary>
public sealed record RedisStreamsAdapterOptions
{
    /// <summary>The stream's key (<c>streamName</c>). Default <c>socket.io</c>.</summary>
    public string StreamName { get; init; } = "socket.io";

    /// <summary>
    /// The stream's length bound (<c>maxLen</c>: <c>XADD MAXLEN ~</c>, so Redis may keep a few more). It bounds the
    /// recovery window: a client whose offset was trimmed gets a fresh session. Default 10,000.
    /// </summary>
    public int MaxLength { get; init; } = 10_000;

    /// <summary>Entries read per <c>XREAD</c>/<c>XRANGE</c> (<c>readCount</c>). Default 100.</summary>
    public int ReadCount { get; init; } = 100;

    /// <summary>How long one blocking <c>XREAD</c> waits for new entries (<c>blockTimeInMs</c>). Default 5 s.</summary>
    public TimeSpan BlockTime { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The pub/sub channels' prefix (<c>channelPrefix</c>): <c>{prefix}#/nsp#</c> and <c>{prefix}#/nsp#{uid}#</c>. Default <c>socket.io</c>.</summary>
    public string ChannelPrefix { get; init; } = "socket.io";

    /// <summary>The prefix of the sessions' keys (<c>sessionKeyPrefix</c>): <c>{prefix}{pid}</c>. Default <c>sio:session:</c>.</summary>
    public string SessionKeyPrefix { get; init; } = "sio:session:";

    /// <summary>How long fetching remote sockets and server-side emits with ack wait for the other nodes. Default 5 s (socket.io-adapter's).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Where recovery's offsets and missed packets come from. Default <see cref="StreamsRecoveryMode.Stream"/>.</summary>
    public StreamsRecoveryMode Recovery { get; init; } = StreamsRecoveryMode.Stream;

    internal void Validate()
    {
        if (string.IsNullOrEmpty(StreamName) || string.IsNullOrEmpty(ChannelPrefix) || MaxLength < 1 || ReadCount < 1
            || BlockTime <= TimeSpan.Zero || RequestTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException("RedisStreamsAdapterOptions: StreamName and ChannelPrefix must be set; MaxLength, ReadCount, BlockTime and RequestTimeout must be positive");
        }
    }
}

/// <summary>
/// A scale-out adapter over one Redis stream that speaks <c>@socket.io/redis-streams-adapter</c> 0.3.x's wire format
/// (socket.io-adapter's <c>ClusterAdapter</c> messages), so our nodes and Node.js socket.io nodes share one cluster,
/// with connection state recovery across nodes. Broadcasts and room/disconnect requests are entries of the stream
/// (<c>XADD … MAXLEN ~</c>), read by every node in order (<see cref="StreamConsumer"/>); ephemeral requests (broadcasts
/// with acks, server-side emits, fetching sockets) go through pub/sub on <c>{prefix}#/nsp#</c>, and their responses to
/// the requester's <c>{prefix}#/nsp#{uid}#</c>. The cluster size is <c>PUBSUB NUMSUB</c> of the public channel.
/// <para>
/// Connection state recovery (<see cref="StreamsRecoveryMode.Stream"/>): a broadcast's offset is its entry id; this
/// node's own recoverable broadcasts (events without ack, not volatile) reach its sockets through the stream too, so
/// every socket sees the stream's order and a client's offset says exactly what it got. Sessions are kept in Redis under
/// <c>{sessionKeyPrefix}{pid}</c> (base64 msgpack, as Node keeps them) for the recovery's <c>MaxDisconnectionDuration</c>;
/// a restore claims the session (<c>GETDEL</c>), checks that the offset is still in the stream, and reads the
/// missed broadcasts with <c>XRANGE</c> in batches, filtered by the session's rooms.
/// </para>
/// </summary>
public class RedisStreamsAdapter : InMemoryAdapter
{
    private static readonly Regex StreamId = new("^[0-9]+-[0-9]+$", RegexOptions.CultureInvariant);
    private readonly IConnectionMultiplexer _redis;
    private readonly StreamConsumer _consumer;
    private readonly RedisStreamsAdapterOptions _options;
    private readonly ILogger _logger;
    private readonly string _publicChannel;
    private readonly string _privateChannel;
    private readonly ConcurrentDictionary<string, PendingRequest> _requests = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (Action<int> ClientCount, Action<JsonNode?[]> Ack)> _ackRequests = new(StringComparer.Ordinal);
    private ChannelMessageQueue? _publicQueue;
    private readonly CancellationTokenSource _closed = new();
    private ChannelMessageQueue? _privateQueue;

    /// <summary>
    /// An adapter for <paramref name="nsp"/> in the cluster of <paramref name="cluster"/> (its Redis connection, stream
    /// reader and options). For subclasses: pass a creation function to the <see cref="RedisStreamsAdapterFactory"/>.
    /// </summary>
    public RedisStreamsAdapter(Namespace nsp, RedisStreamsAdapterFactory cluster)
        : base(nsp)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        _redis = cluster.Redis;
        _consumer = cluster.Consumer;
        _options = cluster.Options;
        _logger = (ILogger?)cluster.LoggerFactory?.CreateLogger<RedisStreamsAdapter>() ?? NullLogger.Instance;
        Uid = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        _publicChannel = _options.ChannelPrefix + "#" + nsp.Name + "#";
        _privateChannel = _publicChannel + Uid + "#";
        _consumer.Add(this);
    }

    /// <summary>This node's id on the wire (16 hex characters, as socket.io-adapter's <c>randomId()</c>).</summary>
    public string Uid { get; }

    /// <summary>The options in use.</summary>
    public RedisStreamsAdapterOptions Options => _options;

    private bool RecoveryOn => Namespace.Server.Options.ConnectionStateRecovery is not null;

    private bool StreamRecovery => RecoveryOn && _options.Recovery == StreamsRecoveryMode.Stream;

    /// <summary>
    /// Starts reading the stream (shared by the namespaces) and subscribes the public and this node's private
    /// channel; while Redis cannot be reached, the subscription is retried every second until it succeeds.
    /// </summary>
    public override async ValueTask InitAsync()
    {
        var subscribed = await TrySubscribeAsync().ConfigureAwait(false);
        await _consumer.RegisterAsync(this).ConfigureAwait(false);
        if (!subscribed)
        {
            _ = SubscribeUntilDoneAsync();
        }
    }

    private async Task<bool> TrySubscribeAsync()
    {
        if (_closed.IsCancellationRequested)
        {
            return true;
        }

        try
        {
            var subscriber = _redis.GetSubscriber();
            if (_publicQueue is null)
            {
                var queue = await subscriber.SubscribeAsync(RedisChannel.Literal(_publicChannel)).ConfigureAwait(false);
                queue.OnMessage(OnPubSubMessage);
                _publicQueue = queue;
            }

            if (_privateQueue is null)
            {
                var queue = await subscriber.SubscribeAsync(RedisChannel.Literal(_privateChannel)).ConfigureAwait(false);
                queue.OnMessage(OnPubSubMessage);
                _privateQueue = queue;
            }

            return true;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            _logger.LogWarning(ex, "Redis streams adapter {Nsp}: subscribing failed; retrying every second", Namespace.Name);
            return false;
        }
    }

    private async Task SubscribeUntilDoneAsync()
    {
        while (!_closed.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(1000, _closed.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            if (await TrySubscribeAsync().ConfigureAwait(false))
            {
                return;
            }
        }
    }

    /// <summary>Unsubscribes, stops reading the stream for this namespace, and fails the requests still waiting.</summary>
    public override async ValueTask CloseAsync()
    {
        await _closed.CancelAsync().ConfigureAwait(false);
        await _consumer.UnregisterAsync(this).ConfigureAwait(false);
        foreach (var queue in new[] { _publicQueue, _privateQueue })
        {
            if (queue is not null)
            {
                try
                {
                    await queue.UnsubscribeAsync().ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is RedisException or TimeoutException)
                {
                    _logger.LogDebug(ex, "Redis streams adapter {Nsp}: unsubscribing failed", Namespace.Name);
                }
            }
        }

        foreach (var request in _requests.Values)
        {
            request.Fail(new ObjectDisposedException(nameof(RedisStreamsAdapter), "the adapter closed"));
        }

        _requests.Clear();
        _ackRequests.Clear();
    }

    /// <summary>The number of nodes subscribed to this namespace's public channel (<c>PUBSUB NUMSUB</c>), at least 1.</summary>
    public override async ValueTask<int> ServerCountAsync()
    {
        var result = await _redis.GetDatabase().ExecuteAsync("PUBSUB", "NUMSUB", _publicChannel).ConfigureAwait(false);
        var pair = (RedisResult[])result!;
        return pair.Length >= 2 ? Math.Max(1, (int)pair[1]) : 1;
    }

    /// <summary>
    /// Appends the broadcast to the stream (unless <see cref="BroadcastFlags.Local"/>). With stream recovery, a
    /// recoverable one reaches this node's sockets from the stream, with its entry id as offset (if appending fails,
    /// it is delivered here without offset); anything else is delivered here at once.
    /// </summary>
    public override void Broadcast(EncodedPacket packet, BroadcastOptions options)
    {
        if ((options.Flags & BroadcastFlags.Local) != 0)
        {
            if (StreamRecovery)
            {
                DeliverLocal(packet, options); // no offset: stream offsets only come from the stream
            }
            else
            {
                base.Broadcast(packet, options);
            }

            return;
        }

        NameValueEntry[] entry;
        try
        {
            var data = new JsonObject { ["packet"] = StreamsWireCodec.PacketObject(packet), ["opts"] = StreamsWireCodec.Options(options) };
            entry = StreamsWireCodec.EncodeEntry(Uid, Namespace.Name, ClusterMessageType.Broadcast, data, packet.Attachments);
        }
        catch (Exception ex) when (ex is FormatException or JsonException)
        {
            _logger.LogWarning(ex, "Redis streams adapter {Nsp}: a broadcast could not be encoded for the cluster; delivered locally only", Namespace.Name);
            DeliverLocal(packet, options);
            return;
        }

        if (StreamRecovery && IsRecoverable(packet, options))
        {
            _ = AppendAsync(entry, () => DeliverLocal(packet, options));
            return;
        }

        _ = AppendAsync(entry, null);
        if (RecoveryOn)
        {
            base.Broadcast(packet, options); // SessionsOnly: the node's store; Stream: not recoverable, delivered as is
        }
        else
        {
            DeliverLocal(packet, options);
        }
    }

    /// <summary>Publishes the broadcast for the other nodes (their clients' counts and acks come back here), and applies it here.</summary>
    public override void BroadcastWithAck(EncodedPacket packet, long ackId, BroadcastOptions options, TimeSpan timeout, Action<int> clientCount, Action<JsonNode?[]> ack)
    {
        if ((options.Flags & BroadcastFlags.Local) == 0)
        {
            var requestId = NewRequestId();
            _ackRequests[requestId] = (clientCount, ack);
            var data = new JsonObject
            {
                ["packet"] = StreamsWireCodec.PacketObject(packet),
                ["requestId"] = requestId,
                ["opts"] = StreamsWireCodec.Options(options, timeout),
            };
            _ = PublishAsync(_publicChannel, StreamsWireCodec.EncodePubSub(Uid, Namespace.Name, ClusterMessageType.Broadcast, data, packet.Attachments));
            _ = ForgetAfterAsync(requestId, timeout);
        }

        base.BroadcastWithAck(packet, ackId, options, timeout, clientCount, ack);
    }

    /// <summary>Applies here and appends <c>SOCKETS_JOIN</c> to the stream, unless local.</summary>
    public override void AddSockets(BroadcastOptions options, IReadOnlyCollection<string> rooms)
    {
        base.AddSockets(options, rooms);
        AppendRequest(options, ClusterMessageType.SocketsJoin, "rooms", new JsonArray([.. rooms.Select(r => (JsonNode?)r)]));
    }

    /// <summary>Applies here and appends <c>SOCKETS_LEAVE</c> to the stream, unless local.</summary>
    public override void DelSockets(BroadcastOptions options, IReadOnlyCollection<string> rooms)
    {
        base.DelSockets(options, rooms);
        AppendRequest(options, ClusterMessageType.SocketsLeave, "rooms", new JsonArray([.. rooms.Select(r => (JsonNode?)r)]));
    }

    /// <summary>Applies here and appends <c>DISCONNECT_SOCKETS</c> to the stream, unless local.</summary>
    public override void DisconnectSockets(BroadcastOptions options, bool close)
    {
        base.DisconnectSockets(options, close);
        AppendRequest(options, ClusterMessageType.DisconnectSockets, "close", JsonValue.Create(close));
    }

    /// <summary>Publishes <c>SERVER_SIDE_EMIT</c> <c>{packet: [event, ...args]}</c> for the other nodes.</summary>
    public override void ServerSideEmit(string eventName, IReadOnlyList<object?> args)
    {
        var data = new JsonObject { ["packet"] = EventArray(eventName, args) };
        _ = PublishAsync(_publicChannel, StreamsWireCodec.EncodePubSub(Uid, Namespace.Name, ClusterMessageType.ServerSideEmit, data, []));
    }

    /// <summary>Publishes <c>SERVER_SIDE_EMIT</c> with a request id and waits for one answer (its first argument) per other node.</summary>
    public override async Task<IReadOnlyList<JsonNode?[]>> ServerSideEmitWithAckAsync(string eventName, IReadOnlyList<object?> args, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var expected = await ServerCountAsync().ConfigureAwait(false) - 1;
        if (expected <= 0)
        {
            return [];
        }

        var requestId = NewRequestId();
        var request = new PendingRequest(expected);
        _requests[requestId] = request;
        try
        {
            var data = new JsonObject { ["requestId"] = requestId, ["packet"] = EventArray(eventName, args) };
            await PublishAsync(_publicChannel, StreamsWireCodec.EncodePubSub(Uid, Namespace.Name, ClusterMessageType.ServerSideEmit, data, [])).ConfigureAwait(false);
            try
            {
                await request.Done.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                throw new BroadcastAckTimeoutException(request.Snapshot().Select(r => new[] { r }).ToArray());
            }

            return [.. request.Snapshot().Select(r => new[] { r })];
        }
        finally
        {
            _requests.TryRemove(requestId, out _);
        }
    }

    /// <summary>
    /// This node's selected sockets and, unless local, the other nodes' (<c>FETCH_SOCKETS</c>, answered within
    /// <see cref="RedisStreamsAdapterOptions.RequestTimeout"/>, else a <see cref="TimeoutException"/>).
    /// </summary>
    public override async ValueTask<IReadOnlyList<IClusterSocket>> FetchSocketsAsync(BroadcastOptions options)
    {
        var local = await base.FetchSocketsAsync(options).ConfigureAwait(false);
        if ((options.Flags & BroadcastFlags.Local) != 0)
        {
            return local;
        }

        var expected = await ServerCountAsync().ConfigureAwait(false) - 1;
        if (expected <= 0)
        {
            return local;
        }

        var requestId = NewRequestId();
        var request = new PendingRequest(expected);
        _requests[requestId] = request;
        try
        {
            var data = new JsonObject { ["opts"] = StreamsWireCodec.Options(options), ["requestId"] = requestId };
            await PublishAsync(_publicChannel, StreamsWireCodec.EncodePubSub(Uid, Namespace.Name, ClusterMessageType.FetchSockets, data, [])).ConfigureAwait(false);
            try
            {
                await request.Done.Task.WaitAsync(_options.RequestTimeout).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                throw new TimeoutException($"timeout reached: only {request.Current} responses received out of {expected}");
            }

            var all = new List<IClusterSocket>(local);
            foreach (var socket in request.Snapshot())
            {
                if (RemoteSockets.From(Namespace, socket) is { } remote)
                {
                    all.Add(remote);
                }
            }

            return all;
        }
        finally
        {
            _requests.TryRemove(requestId, out _);
        }
    }

    /// <summary>
    /// Keeps the session in Redis under <c>{sessionKeyPrefix}{pid}</c> (base64 msgpack, Node's encoding) for the
    /// recovery's <c>MaxDisconnectionDuration</c>. A failure is logged (the session is then lost, not the server).
    /// </summary>
    public override async ValueTask PersistSessionAsync(PersistedSession session)
    {
        if (Namespace.Server.Options.ConnectionStateRecovery is not { } recovery)
        {
            return;
        }

        try
        {
            await _redis.GetDatabase().StringSetAsync(_options.SessionKeyPrefix + session.Pid, StreamsWireCodec.EncodeSession(session), recovery.MaxDisconnectionDuration).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            _logger.LogWarning(ex, "Redis streams adapter {Nsp}: a session could not be kept", Namespace.Name);
        }
    }

    /// <summary>
    /// Claims the session (<c>GETDEL</c>); with stream recovery, it is recovered when <paramref name="offset"/> is a
    /// stream id still in the stream (nothing after it was trimmed). Missed packets: <see cref="MissedPacketsAsync"/>.
    /// </summary>
    public override async ValueTask<SessionRestoreResult> RestoreSessionAsync(string pid, string offset)
    {
        if (StreamRecovery && !StreamId.IsMatch(offset))
        {
            return SessionRestoreResult.Unknown; // as Node: an offset that is no stream id claims nothing
        }

        var session = await ClaimSessionAsync(pid).ConfigureAwait(false);
        if (session is null)
        {
            return SessionRestoreResult.Unknown;
        }

        if (StreamRecovery && !await IsInStreamAsync(offset).ConfigureAwait(false))
        {
            return SessionRestoreResult.TooLate;
        }

        return new SessionRestoreResult(RecoveryOutcome.Recovered, session);
    }

    /// <summary>
    /// Claims the session (<c>GETDEL</c>) of a client that received no broadcast; with stream recovery, it is recovered
    /// from its join point (<see cref="PersistedSession.JoinOffset"/>: the newest entry this node had delivered when the
    /// socket joined) when nothing after that point was trimmed from the stream.
    /// </summary>
    public override async ValueTask<SessionRestoreResult> RestoreSessionAsync(string pid)
    {
        var session = await ClaimSessionAsync(pid).ConfigureAwait(false);
        if (session is null)
        {
            return SessionRestoreResult.Unknown;
        }

        if (session.JoinOffset is not { } joinedAt || (StreamRecovery && !await IsInStreamAsync(joinedAt).ConfigureAwait(false)))
        {
            return SessionRestoreResult.TooLate;
        }

        return new SessionRestoreResult(RecoveryOutcome.Recovered, session);
    }

    /// <summary>
    /// With stream recovery: the broadcasts of this namespace after <paramref name="offset"/> up to the newest entry
    /// this node delivered (later ones reach the socket live), that a socket in <paramref name="rooms"/> would have
    /// received, each with its entry id as offset; null when some are no longer in the stream. Otherwise the node's own.
    /// </summary>
    public override async ValueTask<IReadOnlyList<EncodedPacket>?> MissedPacketsAsync(string offset, IReadOnlyCollection<string> rooms)
    {
        if (!StreamRecovery)
        {
            return await base.MissedPacketsAsync(offset, rooms).ConfigureAwait(false);
        }

        if (!TryParseId(offset, out var after))
        {
            return null;
        }

        // the client may hold an offset another node delivered before this one read it: wait until this node has
        var end = await PositionAtLeastAsync(after).ConfigureAwait(false);
        if (end is null)
        {
            return null;
        }

        var db = _redis.GetDatabase();
        var missed = new List<EncodedPacket>();
        var start = offset;
        var first = true;
        while (true)
        {
            var result = (RedisResult[])(await db.ExecuteAsync("XRANGE", _options.StreamName, first ? start : "(" + start, end, "COUNT", _options.ReadCount).ConfigureAwait(false))!;
            if (first && offset != "0-0" && (result.Length == 0 || (string)((RedisResult[])result[0]!)[0]! != offset))
            {
                return null; // trimmed since the session was claimed
            }

            foreach (var item in result)
            {
                var parts = (RedisResult[])item!;
                var id = (string)parts[0]!;
                start = id;
                if (id == offset)
                {
                    continue;
                }

                if (MissedPacket(id, StreamConsumer.Fields(parts[1]), rooms) is { } packet)
                {
                    missed.Add(packet);
                }
            }

            first = false;
            if (result.Length < _options.ReadCount || start == end)
            {
                return missed;
            }
        }
    }

    /// <summary>With stream recovery, the newest entry this node delivered, read under the delivery lock while the socket connects.</summary>
    public override string? ConnectAtJoinPoint(Action connect)
    {
        if (!StreamRecovery)
        {
            return base.ConnectAtJoinPoint(connect);
        }

        lock (_consumer.Gate)
        {
            connect();
            return _consumer.Position;
        }
    }

    /// <summary>An entry of the stream that is no broadcast, for this namespace (the consumer's loop).</summary>
    internal void OnStreamMessage(ClusterMessage message)
    {
        if (message.Uid == Uid || message.Data is not { } data)
        {
            return; // applied here already
        }

        switch (message.Type)
        {
            case ClusterMessageType.SocketsJoin:
                base.AddSockets(StreamsWireCodec.ReadOptions(data["opts"], out _), StreamsWireCodec.Strings(data["rooms"]));
                break;
            case ClusterMessageType.SocketsLeave:
                base.DelSockets(StreamsWireCodec.ReadOptions(data["opts"], out _), StreamsWireCodec.Strings(data["rooms"]));
                break;
            case ClusterMessageType.DisconnectSockets:
                base.DisconnectSockets(StreamsWireCodec.ReadOptions(data["opts"], out _), data["close"] is JsonValue close && close.GetValueKind() == JsonValueKind.True);
                break;
            default:
                OnEphemeral(message);
                break;
        }
    }

    /// <summary>A broadcast entry of the stream for this namespace, under the consumer's delivery lock.</summary>
    internal void OnStreamBroadcast(ClusterMessage message, string id)
    {
        if (message.Data is not { } data || data["requestId"] is not null || data["packet"] is not JsonObject packetObject)
        {
            return; // broadcasts with acks go through pub/sub
        }

        var packet = StreamsWireCodec.ToPacket(packetObject, message.Attachments);
        var options = StreamsWireCodec.ReadOptions(data["opts"], out _);
        var recoverable = StreamRecovery && IsRecoverable(packet, options);
        if (message.Uid == Uid && !recoverable)
        {
            return; // delivered when it was sent
        }

        if (recoverable)
        {
            DeliverLocal(packet.WithOffset(id), options);
        }
        else if (RecoveryOn)
        {
            base.Broadcast(packet, options);
        }
        else
        {
            DeliverLocal(packet, options);
        }
    }

    private void OnPubSubMessage(ChannelMessage channelMessage)
    {
        try
        {
            var message = StreamsWireCodec.DecodePubSub((ReadOnlyMemory<byte>)channelMessage.Message);
            if (message.Uid == Uid || message.Nsp != Namespace.Name)
            {
                return;
            }

            OnEphemeral(message);
        }
        catch (Exception ex)
        {
            // a malformed message from the cluster costs this message only
            _logger.LogWarning(ex, "Redis streams adapter {Nsp}: ignored a malformed pub/sub message", Namespace.Name);
        }
    }

    private void OnEphemeral(ClusterMessage message)
    {
        if (message.Data is not { } data)
        {
            return;
        }

        var requestId = StreamsWireCodec.Text(data["requestId"]);
        switch (message.Type)
        {
            case ClusterMessageType.Broadcast when requestId is not null && data["packet"] is JsonObject packetObject:
                var ackId = Namespace.NextAckId();
                var packet = StreamsWireCodec.ToPacket(packetObject, message.Attachments, ackId);
                var options = StreamsWireCodec.ReadOptions(data["opts"], out var timeout);
                var requester = message.Uid;
                base.BroadcastWithAck(
                    packet,
                    ackId,
                    options,
                    timeout ?? _options.RequestTimeout,
                    count => Respond(requester, ClusterMessageType.BroadcastClientCount, new JsonObject { ["requestId"] = requestId, ["clientCount"] = count }),
                    args => Respond(requester, ClusterMessageType.BroadcastAck, new JsonObject { ["requestId"] = requestId, ["packet"] = args.Length == 0 ? null : args[0]?.DeepClone() }));
                break;
            case ClusterMessageType.ServerSideEmit when data["packet"] is JsonArray { Count: > 0 } eventArray:
                Action<object?[]>? ack = null;
                if (requestId is not null)
                {
                    var called = 0;
                    var from = message.Uid;
                    ack = args =>
                    {
                        if (Interlocked.Exchange(ref called, 1) == 0)
                        {
                            // only one argument is expected (as socket.io's)
                            Respond(from, ClusterMessageType.ServerSideEmitResponse, new JsonObject
                            {
                                ["requestId"] = requestId,
                                ["packet"] = args.Length == 0 ? null : args[0] as JsonNode ?? JsonSerializer.SerializeToNode(args[0]),
                            });
                        }
                    };
                }

                Namespace.DispatchServerSideEvent(StreamsWireCodec.Text(eventArray[0]) ?? "", [.. eventArray.Skip(1).Select(n => n?.DeepClone())], ack);
                break;
            case ClusterMessageType.FetchSockets when requestId is not null:
                var selected = LocalSockets(StreamsWireCodec.ReadOptions(data["opts"], out _));
                var sockets = new JsonArray([.. selected.Select(s => (JsonNode?)RemoteSockets.Describe(s))]);
                Respond(message.Uid, ClusterMessageType.FetchSocketsResponse, new JsonObject { ["requestId"] = requestId, ["sockets"] = sockets });
                break;
            case ClusterMessageType.BroadcastClientCount when requestId is not null:
                if (_ackRequests.TryGetValue(requestId, out var counted) && data["clientCount"] is JsonValue c && c.TryGetValue<int>(out var clients))
                {
                    counted.ClientCount(clients);
                }

                break;
            case ClusterMessageType.BroadcastAck when requestId is not null:
                if (_ackRequests.TryGetValue(requestId, out var acked))
                {
                    acked.Ack([data["packet"]?.DeepClone()]);
                }

                break;
            case ClusterMessageType.FetchSocketsResponse when requestId is not null:
                if (_requests.TryGetValue(requestId, out var fetch) && data["sockets"] is JsonArray found)
                {
                    fetch.Answer(found.Select(s => s?.DeepClone()));
                }

                break;
            case ClusterMessageType.ServerSideEmitResponse when requestId is not null:
                if (_requests.TryGetValue(requestId, out var emit))
                {
                    emit.Answer([data["packet"]?.DeepClone()]);
                }

                break;
        }
    }

    private void AppendRequest(BroadcastOptions options, ClusterMessageType type, string name, JsonNode value)
    {
        if ((options.Flags & BroadcastFlags.Local) != 0)
        {
            return;
        }

        var data = new JsonObject { ["opts"] = StreamsWireCodec.Options(options), [name] = value };
        _ = AppendAsync(StreamsWireCodec.EncodeEntry(Uid, Namespace.Name, type, data, []), null);
    }

    private void Respond(string requesterUid, ClusterMessageType type, JsonObject data) =>
        _ = PublishAsync(_options.ChannelPrefix + "#" + Namespace.Name + "#" + requesterUid + "#", StreamsWireCodec.EncodePubSub(Uid, Namespace.Name, type, data, []));

    private async Task AppendAsync(NameValueEntry[] entry, Action? onFailure)
    {
        try
        {
            await _redis.GetDatabase().StreamAddAsync(_options.StreamName, entry, maxLength: _options.MaxLength, useApproximateMaxLength: true).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            _logger.LogWarning(ex, "Redis streams adapter {Nsp}: appending to the stream failed", Namespace.Name);
            onFailure?.Invoke();
        }
    }

    private async Task PublishAsync(string channel, byte[] message)
    {
        try
        {
            await _redis.GetSubscriber().PublishAsync(RedisChannel.Literal(channel), message).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            _logger.LogWarning(ex, "Redis streams adapter {Nsp}: publishing failed", Namespace.Name);
        }
    }

    private async Task ForgetAfterAsync(string requestId, TimeSpan timeout)
    {
        await Task.Delay(timeout).ConfigureAwait(false);
        _ackRequests.TryRemove(requestId, out _);
    }

    private async Task<PersistedSession?> ClaimSessionAsync(string pid)
    {
        var raw = await _redis.GetDatabase().StringGetDeleteAsync(_options.SessionKeyPrefix + pid).ConfigureAwait(false);
        if (raw.IsNullOrEmpty)
        {
            return null;
        }

        try
        {
            return StreamsWireCodec.DecodeSession((string)raw!);
        }
        catch (Exception ex) when (ex is FormatException or MessagePack.MessagePackSerializationException or JsonException or InvalidOperationException)
        {
            _logger.LogWarning(ex, "Redis streams adapter {Nsp}: ignored a malformed session", Namespace.Name);
            return null;
        }
    }

    /// <summary>
    /// Whether every entry after <paramref name="id"/> is still in the stream: the entry itself is (trimming drops the
    /// oldest first), or, for <c>0-0</c> (a join point before the first entry), nothing was ever trimmed.
    /// </summary>
    private async Task<bool> IsInStreamAsync(string id)
    {
        var db = _redis.GetDatabase();
        if (id == "0-0")
        {
            var info = await StreamConsumer.StreamInfoAsync(db, _options.StreamName).ConfigureAwait(false);
            return info is null || info.GetValueOrDefault("max-deleted-entry-id", "0-0") == "0-0";
        }

        var found = (RedisResult[])(await db.ExecuteAsync("XRANGE", _options.StreamName, id, id, "COUNT", 1).ConfigureAwait(false))!;
        return found.Length == 1;
    }

    /// <summary>The consumer's position once it reached <paramref name="after"/> (waits up to the request timeout), else null.</summary>
    private async Task<string?> PositionAtLeastAsync((ulong, ulong) after)
    {
        var deadline = Environment.TickCount64 + (long)_options.RequestTimeout.TotalMilliseconds;
        while (true)
        {
            string? position;
            lock (_consumer.Gate)
            {
                position = _consumer.Position;
            }

            if (position is not null && TryParseId(position, out var at) && at.CompareTo(after) >= 0)
            {
                return position;
            }

            if (Environment.TickCount64 > deadline)
            {
                return null;
            }

            await Task.Delay(10).ConfigureAwait(false);
        }
    }

    private EncodedPacket? MissedPacket(string id, Dictionary<string, RedisValue> fields, IReadOnlyCollection<string> rooms)
    {
        try
        {
            var message = StreamsWireCodec.DecodeEntry(fields);
            if (message.Nsp != Namespace.Name || message.Type != ClusterMessageType.Broadcast || message.Data is not { } data
                || data["requestId"] is not null || data["packet"] is not JsonObject packetObject)
            {
                return null;
            }

            var packet = StreamsWireCodec.ToPacket(packetObject, message.Attachments);
            var options = StreamsWireCodec.ReadOptions(data["opts"], out _);
            return IsRecoverable(packet, options) && Includes(rooms, options) ? packet.WithOffset(id) : null;
        }
        catch (Exception ex)
        {
            _logger.LogWarning(ex, "Redis streams adapter {Nsp}: ignored a malformed stream entry {Id}", Namespace.Name, id);
            return null;
        }
    }

    private static bool IsRecoverable(EncodedPacket packet, BroadcastOptions options) =>
        packet.IsEventWithoutAck && (options.Flags & BroadcastFlags.Volatile) == 0;

    /// <summary>socket.io-adapter's <c>shouldIncludePacket</c>: in one of the rooms (or to all), in none of the exceptions.</summary>
    private static bool Includes(IReadOnlyCollection<string> rooms, BroadcastOptions options)
    {
        var included = options.Rooms.Count == 0;
        foreach (var room in rooms)
        {
            if (options.Except.Contains(room))
            {
                return false;
            }

            included |= options.Rooms.Contains(room);
        }

        return included;
    }

    internal static bool TryParseId(string id, out (ulong Ms, ulong Seq) parsed)
    {
        parsed = default;
        var dash = id.IndexOf('-');
        return dash > 0 && ulong.TryParse(id.AsSpan(0, dash), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out parsed.Ms)
            && ulong.TryParse(id.AsSpan(dash + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out parsed.Seq);
    }

    private static string NewRequestId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));

    private static JsonArray EventArray(string eventName, IReadOnlyList<object?> args)
    {
        var array = new JsonArray { eventName };
        foreach (var arg in args)
        {
            array.Add(arg is JsonNode node ? node.DeepClone() : JsonSerializer.SerializeToNode(arg));
        }

        return array;
    }

    /// <summary>A request waiting for one answer per other node.</summary>
    private sealed class PendingRequest(int expected)
    {
        private readonly List<JsonNode?> _answers = [];

        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Current { get; private set; }

        public void Answer(IEnumerable<JsonNode?> items)
        {
            lock (_answers)
            {
                _answers.AddRange(items);
                if (++Current >= expected)
                {
                    Done.TrySetResult();
                }
            }
        }

        public List<JsonNode?> Snapshot()
        {
            lock (_answers)
            {
                return [.. _answers];
            }
        }

        public void Fail(Exception error) => Done.TrySetException(error);
    }
}

/// <summary>Makes a <see cref="RedisStreamsAdapter"/> for each namespace: one stream reader and one Redis connection for commands, shared.</summary>
public sealed class RedisStreamsAdapterFactory : IAdapterFactory
{
    private readonly Func<Namespace, RedisStreamsAdapterFactory, RedisStreamsAdapter> _create;

    /// <summary>
    /// A factory over <paramref name="redis"/> (owned by the caller; best made with <c>AbortOnConnectFail=false</c>
    /// so that it reconnects by itself). The stream is read on a second connection made from its configuration.
    /// <paramref name="create"/> makes each adapter (default: a <see cref="RedisStreamsAdapter"/>), e.g. a subclass
    /// that takes its missed packets elsewhere.
    /// </summary>
    public RedisStreamsAdapterFactory(
        IConnectionMultiplexer redis,
        RedisStreamsAdapterOptions? options = null,
        ILoggerFactory? loggerFactory = null,
        Func<Namespace, RedisStreamsAdapterFactory, RedisStreamsAdapter>? create = null)
    {
        Redis = redis ?? throw new ArgumentNullException(nameof(redis));
        Options = options ?? new RedisStreamsAdapterOptions();
        Options.Validate();
        LoggerFactory = loggerFactory;
        _create = create ?? ((nsp, factory) => new RedisStreamsAdapter(nsp, factory));
        Consumer = new StreamConsumer(redis, Options, (ILogger?)loggerFactory?.CreateLogger<RedisStreamsAdapter>() ?? NullLogger.Instance);
    }

    /// <summary>The connection for commands and pub/sub.</summary>
    public IConnectionMultiplexer Redis { get; }

    /// <summary>The options of every adapter made here.</summary>
    public RedisStreamsAdapterOptions Options { get; }

    internal ILoggerFactory? LoggerFactory { get; }

    internal StreamConsumer Consumer { get; }

    /// <inheritdoc />
    public IAdapter Create(Namespace nsp) => _create(nsp, this);
}

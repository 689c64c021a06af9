using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Evolution.Events.SocketIO.Adapters;
using Evolution.Events.SocketIO.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;
using static Evolution.Events.SocketIO.Redis.RedisAdapter;

namespace Evolution.Events.SocketIO.Redis;

/// <summary>Which channels a <see cref="ShardedRedisAdapter"/> subscribes (<c>subscriptionMode</c> of <c>createShardedAdapter</c>).</summary>
public enum RedisSubscriptionMode
{
    /// <summary>One channel per namespace (<c>{key}#/nsp#</c>) carries everything: every node receives every broadcast.</summary>
    Static,

    /// <summary>
    /// Also one channel per public room (<c>{key}#/nsp#room#</c>), subscribed by the nodes that have the room: a
    /// broadcast to one room that is not a socket id goes there (the default of <c>createShardedAdapter</c>).
    /// </summary>
    Dynamic,

    /// <summary>As <see cref="Dynamic"/>, with a channel per socket id too (a broadcast to one socket reaches its node only).</summary>
    DynamicPrivate,
}

/// <summary>
/// A scale-out adapter over Redis 7 sharded pub/sub (<c>SPUBLISH</c>/<c>SSUBSCRIBE</c>) that speaks
/// <c>createShardedAdapter</c> of <c>@socket.io/redis-adapter</c> 8.x (socket.io-adapter's cluster messages
/// <c>{uid, nsp, type, data}</c>, JSON, or msgpack when the data holds binary). Every node subscribes
/// <c>{key}#/nsp#</c> and its own response channel <c>{key}#/nsp#uid#</c> (and room channels, see
/// <see cref="RedisSubscriptionMode"/>); the cluster size is <c>PUBSUB SHARDNUMSUB {key}#/nsp#</c>. Broadcasts (with
/// and without acks), join/leave/disconnect of selected sockets, fetching sockets and server-side events (with and
/// without ack) go to every node. Every node of the cluster must use the same mode. Made by
/// <see cref="RedisAdapterFactory"/> when <see cref="RedisAdapterOptions.Sharded"/> is set.
/// </summary>
public class ShardedRedisAdapter : InMemoryAdapter
{
    private readonly IConnectionMultiplexer _redis;
    private readonly RedisAdapterOptions _options;
    private readonly ILogger _logger;
    private readonly string _channel;
    private readonly string _responseChannel;
    private readonly ConcurrentDictionary<string, PendingAnswers> _requests = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (Action<int> ClientCount, Action<JsonNode?[]> Ack)> _ackRequests = new(StringComparer.Ordinal);
    private readonly List<ChannelMessageQueue> _queues = [];
    private volatile bool _started;
    private volatile bool _closed;

    /// <summary>An adapter for <paramref name="nsp"/> over <paramref name="redis"/> (a Redis 7 server or cluster; shared by every namespace).</summary>
    public ShardedRedisAdapter(Namespace nsp, IConnectionMultiplexer redis, RedisAdapterOptions? options = null, ILogger? logger = null)
        : base(nsp)
    {
        _redis = redis;
        _options = options ?? new RedisAdapterOptions { Sharded = true };
        _logger = logger ?? NullLogger.Instance;
        Uid = NewId(8);
        _channel = _options.Key + "#" + nsp.Name + "#";
        _responseChannel = _channel + Uid + "#";
    }

    /// <summary>This node's id on the wire.</summary>
    public string Uid { get; }

    /// <summary>This node's requests awaiting answers now (at most <see cref="RedisAdapterOptions.MaxPendingRequests"/>).</summary>
    public int PendingRequests => _requests.Count + _ackRequests.Count;

    /// <summary>Subscribes this node's response channel, the namespace's channel and, in a dynamic mode, its rooms' channels.</summary>
    public override async ValueTask InitAsync()
    {
        // the response channel first: once the namespace's channel counts this node, its answers reach it
        await SubscribeAsync(_responseChannel);
        await SubscribeAsync(_channel);
        _started = true;
        if (_options.SubscriptionMode != RedisSubscriptionMode.Static)
        {
            foreach (var room in Rooms)
            {
                OnRoomCreated(room);
            }
        }

        if (_options.SubscriptionMode == RedisSubscriptionMode.DynamicPrivate)
        {
            Namespace.OnConnection(socket =>
            {
                if (!_closed)
                {
                    _ = SubscribeAsync(RoomChannel(socket.Id));
                    socket.Disconnected += (s, reason) => _ = UnsubscribeAsync(RoomChannel(s.Id));
                }
            });
        }
    }

    /// <summary>Unsubscribes every channel; pending requests fail at once.</summary>
    public override async ValueTask CloseAsync()
    {
        _closed = true;
        foreach (var (id, pending) in _requests)
        {
            if (_requests.TryRemove(id, out _))
            {
                pending.Fail(new OperationCanceledException("the adapter closed"));
            }
        }

        _ackRequests.Clear();
        ChannelMessageQueue[] queues;
        lock (_queues)
        {
            queues = [.. _queues];
            _queues.Clear();
        }

        foreach (var queue in queues)
        {
            try
            {
                await queue.UnsubscribeAsync();
            }
            catch (Exception ex)
            {
                _logger.LogDebug(ex, "Sharded Redis adapter {Nsp}: unsubscribing {Channel} failed", Namespace.Name, (string?)queue.Channel);
            }
        }
    }

    /// <inheritdoc />
    protected override void OnRoomCreated(string room)
    {
        if (_started && !_closed && UsesRoomChannel(room))
        {
            _ = SubscribeAsync(RoomChannel(room));
        }
    }

    /// <inheritdoc />
    protected override void OnRoomDeleted(string room)
    {
        if (_started && !_closed && UsesRoomChannel(room))
        {
            _ = UnsubscribeAsync(RoomChannel(room));
        }
    }

    /// <summary>The number of nodes subscribed to the namespace's channel (<c>PUBSUB SHARDNUMSUB</c>).</summary>
    public override async ValueTask<int> ServerCountAsync()
    {
        var result = await _redis.GetDatabase().ExecuteAsync("PUBSUB", "SHARDNUMSUB", _channel);
        var pair = (RedisResult[])result!;
        return pair.Length >= 2 ? Math.Max(1, (int)pair[1]) : 1;
    }

    /// <summary>Delivers to this node's sockets and, unless local, publishes a <c>BROADCAST</c> message.</summary>
    public override void Broadcast(EncodedPacket packet, BroadcastOptions options)
    {
        if ((options.Flags & BroadcastFlags.Local) == 0)
        {
            Publish(MessageType.Broadcast, new JsonObject { ["packet"] = PacketNode(packet, withId: true), ["opts"] = OptsWithFlags(options, null) }, options);
        }

        base.Broadcast(packet, options);
    }

    /// <summary>Publishes a <c>BROADCAST</c> with a request id (answered by client counts and acks), then writes to this node's sockets.</summary>
    public override void BroadcastWithAck(EncodedPacket packet, long ackId, BroadcastOptions options, TimeSpan timeout, Action<int> clientCount, Action<JsonNode?[]> ack)
    {
        if ((options.Flags & BroadcastFlags.Local) == 0)
        {
            if (_requests.Count + _ackRequests.Count >= _options.MaxPendingRequests)
            {
                _logger.LogWarning("Sharded Redis adapter {Nsp}: too many pending requests; a broadcast with acks reaches this node only", Namespace.Name);
            }
            else
            {
                var requestId = NewId(8);
                _ackRequests[requestId] = (clientCount, ack);
                _ = ForgetAsync(requestId, timeout);
                Publish(MessageType.Broadcast, new JsonObject
                {
                    ["packet"] = PacketNode(packet, withId: false),
                    ["requestId"] = requestId,
                    ["opts"] = OptsWithFlags(options, (long)Math.Ceiling(timeout.TotalMilliseconds)),
                }, null);
            }
        }

        base.BroadcastWithAck(packet, ackId, options, timeout, clientCount, ack);
    }

    /// <summary>This node's selected sockets plus every other node's (<c>FETCH_SOCKETS</c>); <see cref="TimeoutException"/> past the requests timeout.</summary>
    public override async ValueTask<IReadOnlyList<IClusterSocket>> FetchSocketsAsync(BroadcastOptions options)
    {
        var local = await base.FetchSocketsAsync(options);
        var others = await ServerCountAsync() - 1;
        if ((options.Flags & BroadcastFlags.Local) != 0 || others <= 0)
        {
            return local;
        }

        var answers = await RequestAsync(MessageType.FetchSockets, new JsonObject { ["opts"] = OptsWithFlags(options, null) }, others, _options.RequestsTimeout, CancellationToken.None)
            ?? throw new TimeoutException("timeout reached while waiting for fetchSockets response");
        var all = new List<IClusterSocket>(local);
        var seen = local.Select(s => s.Id).ToHashSet(StringComparer.Ordinal);
        foreach (var answer in answers)
        {
            foreach (var node in answer["sockets"] as JsonArray ?? [])
            {
                if (node is JsonObject socket && RemoteSocketFrom(Namespace, socket) is { } remote && seen.Add(remote.Id))
                {
                    all.Add(remote);
                }
            }
        }

        return all;
    }

    /// <summary>Applies to this node's sockets and publishes <c>SOCKETS_JOIN</c>, unless local.</summary>
    public override void AddSockets(BroadcastOptions options, IReadOnlyCollection<string> rooms)
    {
        base.AddSockets(options, rooms);
        PublishSelection(MessageType.SocketsJoin, options, "rooms", new JsonArray([.. rooms.Select(r => (JsonNode?)r)]));
    }

    /// <summary>Applies to this node's sockets and publishes <c>SOCKETS_LEAVE</c>, unless local.</summary>
    public override void DelSockets(BroadcastOptions options, IReadOnlyCollection<string> rooms)
    {
        base.DelSockets(options, rooms);
        PublishSelection(MessageType.SocketsLeave, options, "rooms", new JsonArray([.. rooms.Select(r => (JsonNode?)r)]));
    }

    /// <summary>Applies to this node's sockets and publishes <c>DISCONNECT_SOCKETS</c>, unless local.</summary>
    public override void DisconnectSockets(BroadcastOptions options, bool close)
    {
        base.DisconnectSockets(options, close);
        PublishSelection(MessageType.DisconnectSockets, options, "close", JsonValue.Create(close));
    }

    /// <summary>Publishes <c>SERVER_SIDE_EMIT</c> for the other nodes.</summary>
    public override void ServerSideEmit(string eventName, IReadOnlyList<object?> args) =>
        Publish(MessageType.ServerSideEmit, new JsonObject { ["packet"] = EventData(eventName, args) }, null);

    /// <summary>
    /// Publishes <c>SERVER_SIDE_EMIT</c> with a request id and waits for one answer per other node; past
    /// <paramref name="timeout"/>, throws <see cref="BroadcastAckTimeoutException"/> with the answers received.
    /// </summary>
    public override async Task<IReadOnlyList<JsonNode?[]>> ServerSideEmitWithAckAsync(string eventName, IReadOnlyList<object?> args, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var others = await ServerCountAsync() - 1;
        if (others <= 0)
        {
            return [];
        }

        PendingAnswers? timedOut = null;
        var answers = await RequestAsync(MessageType.ServerSideEmit, new JsonObject { ["packet"] = EventData(eventName, args) }, others, timeout, cancellationToken, p => timedOut = p);
        if (answers is null)
        {
            throw new BroadcastAckTimeoutException([.. timedOut!.Snapshot().Select(Args)]);
        }

        return [.. answers.Select(Args)];

        static JsonNode?[] Args(JsonObject answer) =>
            answer["args"] is JsonArray all ? [.. all.Select(a => a?.DeepClone())] : [answer["packet"]?.DeepClone()];
    }

    private async Task<List<JsonObject>?> RequestAsync(MessageType type, JsonObject data, int expected, TimeSpan timeout, CancellationToken cancellationToken, Action<PendingAnswers>? onTimeout = null)
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        if (_requests.Count + _ackRequests.Count >= _options.MaxPendingRequests)
        {
            throw new InvalidOperationException($"too many pending cluster requests ({_options.MaxPendingRequests}) on namespace {Namespace.Name}");
        }

        var pending = new PendingAnswers(expected);
        string requestId;
        do
        {
            requestId = NewId(8);
        }
        while (!_requests.TryAdd(requestId, pending));

        data["requestId"] = requestId;
        try
        {
            await _redis.GetSubscriber().PublishAsync(RedisChannel.Sharded(_channel), Encode(Message(type, data)));
            return await pending.Task.WaitAsync(timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            onTimeout?.Invoke(pending);
            return null;
        }
        finally
        {
            _requests.TryRemove(requestId, out _);
        }
    }

    private async Task ForgetAsync(string requestId, TimeSpan timeout)
    {
        await Task.Delay(timeout);
        _ackRequests.TryRemove(requestId, out _);
    }

    private void PublishSelection(MessageType type, BroadcastOptions options, string name, JsonNode value)
    {
        if ((options.Flags & BroadcastFlags.Local) == 0)
        {
            Publish(type, new JsonObject { ["opts"] = OptsWithFlags(options, null), [name] = value }, null);
        }
    }

    /// <summary>Publishes a message on the namespace's channel, or on a room's channel for a broadcast to one room in a dynamic mode.</summary>
    private void Publish(MessageType type, JsonObject data, BroadcastOptions? broadcast)
    {
        byte[] bytes;
        try
        {
            bytes = Encode(Message(type, data));
        }
        catch (Exception ex) when (ex is FormatException or JsonException or NotSupportedException)
        {
            _logger.LogWarning(ex, "Sharded Redis adapter {Nsp}: a message could not be encoded for the cluster", Namespace.Name);
            return;
        }

        var channel = broadcast is { Rooms.Count: 1 } && UsesRoomChannel(broadcast.Rooms.First(), forPublish: true)
            ? RoomChannel(broadcast.Rooms.First())
            : _channel;
        _ = PublishAsync(channel, bytes);
    }

    private void PublishResponse(string requesterUid, MessageType type, JsonObject data)
    {
        try
        {
            _ = PublishAsync(_channel + requesterUid + "#", Encode(Message(type, data)));
        }
        catch (Exception ex) when (ex is FormatException or JsonException or NotSupportedException)
        {
            _logger.LogWarning(ex, "Sharded Redis adapter {Nsp}: an answer could not be encoded for the cluster", Namespace.Name);
        }
    }

    private async Task PublishAsync(string channel, byte[] message)
    {
        try
        {
            await _redis.GetSubscriber().PublishAsync(RedisChannel.Sharded(channel), message);
        }
        catch (Exception ex)
        {
            _logger.LogWarning(ex, "Sharded Redis adapter {Nsp}: publishing to {Channel} failed", Namespace.Name, channel);
        }
    }

    private JsonObject Message(MessageType type, JsonObject data) =>
        new() { ["uid"] = Uid, ["nsp"] = Namespace.Name, ["type"] = (int)type, ["data"] = data };

    /// <summary>As <c>createShardedAdapter</c>: JSON, or msgpack when the data holds binary.</summary>
    private static byte[] Encode(JsonObject message) =>
        HasBinary(message) ? RedisWireCodec.EncodeNode(message) : Json(message);

    private static bool HasBinary(JsonNode? node) => node switch
    {
        JsonArray array => array.Any(HasBinary),
        JsonObject obj => obj.Any(p => HasBinary(p.Value)),
        _ => RedisWireCodec.IsBinary(node, out _),
    };

    private static JsonObject PacketNode(EncodedPacket packet, bool withId) => RedisWireCodec.PacketToNode(packet, withId);

    private static JsonObject OptsWithFlags(BroadcastOptions options, long? timeoutMs)
    {
        var opts = Opts(options);
        var flags = new JsonObject();
        if ((options.Flags & BroadcastFlags.Volatile) != 0)
        {
            flags["volatile"] = true;
        }

        if (timeoutMs is { } ms)
        {
            flags["timeout"] = ms;
        }

        opts["flags"] = flags;
        return opts;
    }

    private bool UsesRoomChannel(string room, bool forPublish = false) => _options.SubscriptionMode switch
    {
        RedisSubscriptionMode.Dynamic => forPublish ? room.Length != 20 : !Namespace.SocketsById.ContainsKey(room),
        RedisSubscriptionMode.DynamicPrivate => true,
        _ => false,
    };

    private string RoomChannel(string room) => _channel + room + "#";

    private async Task SubscribeAsync(string channel)
    {
        try
        {
            var queue = await _redis.GetSubscriber().SubscribeAsync(RedisChannel.Sharded(channel));
            queue.OnMessage(m => OnMessage(channel, m));
            lock (_queues)
            {
                _queues.Add(queue);
            }
        }
        catch (Exception ex)
        {
            _logger.LogWarning(ex, "Sharded Redis adapter {Nsp}: subscribing {Channel} failed", Namespace.Name, channel);
            if (channel == _channel || channel == _responseChannel)
            {
                throw;
            }
        }
    }

    private async Task UnsubscribeAsync(string channel)
    {
        ChannelMessageQueue[] found;
        lock (_queues)
        {
            found = [.. _queues.Where(q => (string?)q.Channel == channel)];
            _queues.RemoveAll(q => (string?)q.Channel == channel);
        }

        foreach (var queue in found)
        {
            try
            {
                await queue.UnsubscribeAsync();
            }
            catch (Exception ex)
            {
                _logger.LogDebug(ex, "Sharded Redis adapter {Nsp}: unsubscribing {Channel} failed", Namespace.Name, channel);
            }
        }
    }

    private void OnMessage(string channel, ChannelMessage raw)
    {
        try
        {
            var message = RedisWireCodec.ReadMessage((ReadOnlyMemory<byte>)raw.Message);
            if (Scalar(message["uid"]) == Uid || Scalar(message["nsp"]) != Namespace.Name || message["data"] is not JsonObject data)
            {
                return;
            }

            var from = Scalar(message["uid"]) ?? "";
            var type = (MessageType?)Int(message["type"]);
            if (channel == _responseChannel || type is MessageType.BroadcastClientCount or MessageType.BroadcastAck or MessageType.FetchSocketsResponse or MessageType.ServerSideEmitResponse)
            {
                OnResponse(type, data);
                return;
            }

            var requestId = Scalar(data["requestId"]);
            switch (type)
            {
                case MessageType.Broadcast when data["packet"] is JsonObject packet && data["opts"] is JsonObject opts:
                    var selection = Selection(opts);
                    if (opts["flags"] is JsonObject { } flags && flags["volatile"] is JsonValue v && v.GetValueKind() == JsonValueKind.True)
                    {
                        selection = selection with { Flags = BroadcastFlags.Volatile };
                    }

                    if (requestId is null)
                    {
                        base.Broadcast(RedisWireCodec.PacketFromNode(packet, Namespace.Name, null), selection);
                    }
                    else
                    {
                        OnBroadcastWithAck(from, requestId, packet, selection, opts);
                    }

                    break;
                case MessageType.SocketsJoin when data["opts"] is JsonObject opts:
                    base.AddSockets(Selection(opts), Strings(data["rooms"]));
                    break;
                case MessageType.SocketsLeave when data["opts"] is JsonObject opts:
                    base.DelSockets(Selection(opts), Strings(data["rooms"]));
                    break;
                case MessageType.DisconnectSockets when data["opts"] is JsonObject opts:
                    base.DisconnectSockets(Selection(opts), data["close"] is JsonValue close && close.GetValueKind() == JsonValueKind.True);
                    break;
                case MessageType.FetchSockets when requestId is not null && data["opts"] is JsonObject opts:
                    var sockets = new JsonArray();
                    foreach (var socket in LocalSockets(Selection(opts)))
                    {
                        sockets.Add(Describe(socket));
                    }

                    PublishResponse(from, MessageType.FetchSocketsResponse, new JsonObject { ["requestId"] = requestId, ["sockets"] = sockets });
                    break;
                case MessageType.ServerSideEmit when data["packet"] is JsonArray { Count: > 0 } eventData:
                    Action<object?[]>? ack = null;
                    if (requestId is not null)
                    {
                        var called = 0;
                        ack = args =>
                        {
                            if (Interlocked.Exchange(ref called, 1) == 0)
                            {
                                // the cluster adapter reads one argument ("packet"); "args" keeps all of them for our nodes
                                PublishResponse(from, MessageType.ServerSideEmitResponse, new JsonObject
                                {
                                    ["requestId"] = requestId,
                                    ["packet"] = args.Length == 0 ? null : ToNode(args[0]),
                                    ["args"] = new JsonArray([.. args.Select(ToNode)]),
                                });
                            }
                        };
                    }

                    Namespace.DispatchServerSideEvent(Scalar(eventData[0]) ?? "", [.. eventData.Skip(1).Select(n => n?.DeepClone())], ack);
                    break;
            }
        }
        catch (Exception ex)
        {
            // a malformed message from the cluster costs this message only
            _logger.LogWarning(ex, "Sharded Redis adapter {Nsp}: ignored a malformed message on {Channel}", Namespace.Name, channel);
        }
    }

    private void OnBroadcastWithAck(string from, string requestId, JsonObject packet, BroadcastOptions selection, JsonObject opts)
    {
        var id = Namespace.NextAckId();
        var timeout = _options.RequestsTimeout;
        if (opts["flags"] is JsonObject flags && Number(flags["timeout"]) is { } ms && ms > 0)
        {
            timeout = TimeSpan.FromMilliseconds(Math.Min(ms, TimeSpan.FromHours(1).TotalMilliseconds));
        }

        base.BroadcastWithAck(
            RedisWireCodec.PacketFromNode(packet, Namespace.Name, id),
            id,
            selection,
            timeout,
            count => PublishResponse(from, MessageType.BroadcastClientCount, new JsonObject { ["requestId"] = requestId, ["clientCount"] = count }),
            args =>
            {
                var data = new JsonObject { ["requestId"] = requestId, ["packet"] = args.Length == 0 ? null : args[0]?.DeepClone() };
                if (args.Length != 1)
                {
                    data["args"] = new JsonArray([.. args.Select(a => a?.DeepClone())]);
                }

                PublishResponse(from, MessageType.BroadcastAck, data);
            });
    }

    private void OnResponse(MessageType? type, JsonObject data)
    {
        if (Scalar(data["requestId"]) is not { } requestId)
        {
            return;
        }

        switch (type)
        {
            case MessageType.BroadcastClientCount when _ackRequests.TryGetValue(requestId, out var request) && Int(data["clientCount"]) is { } count:
                request.ClientCount(count);
                break;
            case MessageType.BroadcastAck when _ackRequests.TryGetValue(requestId, out var request):
                request.Ack(data["args"] is JsonArray args ? [.. args.Select(a => a?.DeepClone())] : [data["packet"]?.DeepClone()]);
                break;
            case MessageType.FetchSocketsResponse or MessageType.ServerSideEmitResponse when _requests.TryGetValue(requestId, out var pending):
                pending.Add(data);
                break;
        }
    }

    /// <summary>socket.io-adapter's cluster message types.</summary>
    private enum MessageType
    {
        InitialHeartbeat = 1,
        Heartbeat = 2,
        Broadcast = 3,
        SocketsJoin = 4,
        SocketsLeave = 5,
        DisconnectSockets = 6,
        FetchSockets = 7,
        FetchSocketsResponse = 8,
        ServerSideEmit = 9,
        ServerSideEmitResponse = 10,
        BroadcastClientCount = 11,
        BroadcastAck = 12,
        AdapterClose = 13,
    }

    /// <summary>Answers to one request of this node, complete when <c>expected</c> came.</summary>
    private sealed class PendingAnswers(int expected)
    {
        private readonly List<JsonObject> _answers = [];
        private readonly TaskCompletionSource<List<JsonObject>> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<List<JsonObject>> Task => _done.Task;

        public void Add(JsonObject answer)
        {
            lock (_answers)
            {
                if (_answers.Count < expected)
                {
                    _answers.Add(answer);
                    if (_answers.Count == expected)
                    {
                        _done.TrySetResult([.. _answers]);
                    }
                }
            }
        }

        public List<JsonObject> Snapshot()
        {
            lock (_answers)
            {
                return [.. _answers];
            }
        }

        public void Fail(Exception error) => _done.TrySetException(error);
    }
}

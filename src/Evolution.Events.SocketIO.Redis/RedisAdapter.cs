using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Evolution.Events.EngineIO;
using Evolution.Events.SocketIO.Adapters;
using Evolution.Events.SocketIO.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace Evolution.Events.SocketIO.Redis;

/// <summary>Options of the <see cref="RedisAdapter"/> (named as <c>@socket.io/redis-adapter</c>'s).</summary>
public sealed record RedisAdapterOptions
{
    /// <summary>The channels' prefix (<c>key</c>): <c>{Key}#/nsp#</c>, <c>{Key}-request#/nsp#</c>, <c>{Key}-response#/nsp#</c>. Default <c>socket.io</c>.</summary>
    public string Key { get; init; } = "socket.io";

    /// <summary>
    /// How long a request to the other nodes waits for their answers (<c>requestsTimeout</c>, default 5 s):
    /// <see cref="IAdapter.FetchSocketsAsync"/> then fails with a <see cref="TimeoutException"/>. A server-side
    /// event with ack waits for its own timeout instead.
    /// </summary>
    public TimeSpan RequestsTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Answers a request on the requester's own channel <c>{Key}-response#/nsp#{uid}#</c> rather than on the shared
    /// <c>{Key}-response#/nsp#</c> (<c>publishOnSpecificResponseChannel</c>; default false). Every node, Node's
    /// included, listens on both, so nodes with either setting interoperate.
    /// </summary>
    public bool PublishOnSpecificResponseChannel { get; init; }

    /// <summary>
    /// At most this many requests of this node (fetch, server-side event with ack, broadcast with acks) await
    /// answers at once, per namespace (default 1024); past it a new request fails at once (a broadcast with acks
    /// then only counts this node's clients).
    /// </summary>
    public int MaxPendingRequests { get; init; } = 1024;

    /// <summary>
    /// Use Redis 7 sharded pub/sub (<c>SPUBLISH</c>/<c>SSUBSCRIBE</c>) as <c>createShardedAdapter</c> does: the
    /// factory makes a <see cref="ShardedRedisAdapter"/> (default false: <see cref="RedisAdapter"/>, classic pub/sub).
    /// The two variants do not talk to each other. <see cref="Key"/> is then the <c>channelPrefix</c>.
    /// </summary>
    public bool Sharded { get; init; }

    /// <summary>The sharded variant's <c>subscriptionMode</c> (default <see cref="RedisSubscriptionMode.Dynamic"/>, as Node's).</summary>
    public RedisSubscriptionMode SubscriptionMode { get; init; } = RedisSubscriptionMode.Dynamic;

    /// <summary>
    /// Connection state recovery across nodes: when set, a persisted session is also written to Redis under
    /// <c>{SessionKeyPrefix}{pid}</c> (JSON, expiring after the recovery window) and claimed from there (<c>GETDEL</c>)
    /// by whichever node the client reconnects to, which recovers it when its own recovery store still holds every
    /// broadcast after the client's offset (the nodes must give broadcasts identical offsets, e.g.
    /// <see cref="SocketIOServer.EmitLocalAt"/>). Null (the default): sessions stay on the node that kept them.
    /// </summary>
    public string? SessionKeyPrefix { get; init; }
}

/// <summary>
/// A scale-out adapter over Redis pub/sub that speaks <c>@socket.io/redis-adapter</c> 8.x's wire format, so our
/// nodes and Node.js socket.io nodes (and <c>@socket.io/redis-emitter</c> or <see cref="RedisEmitter"/>
/// publishers) share one cluster.
/// <list type="bullet">
/// <item>A broadcast is delivered to this node's sockets and published once (msgpack of <c>[uid, packet, opts]</c>
/// on <c>{key}#/nsp#</c>, or <c>{key}#/nsp#room#</c> for a single room); every node delivers what others published
/// to its own sockets. A <see cref="BroadcastFlags.Local"/> operation is not published.</item>
/// <item>Requests go to <c>{key}-request#/nsp#</c> (JSON, or msgpack for a broadcast with acks), answers to
/// <c>{key}-response#/nsp#</c> or the requester's <c>{key}-response#/nsp#uid#</c>: join, leave and disconnect of
/// selected sockets, fetching sockets (<c>REMOTE_FETCH</c>), server-side events with or without ack, broadcasts
/// with acks (<c>BROADCAST</c>, answered by <c>BROADCAST_CLIENT_COUNT</c> and one <c>BROADCAST_ACK</c> per client),
/// and <c>SOCKETS</c>/<c>ALL_ROOMS</c> asked by Node peers.</item>
/// <item>The cluster size is <c>PUBSUB NUMSUB</c> of the request channel, which every node subscribes.</item>
/// </list>
/// Every message of a namespace arrives through one pattern subscription (<c>{key}*#/nsp#*</c>), so this node
/// applies another node's broadcasts and requests in the order that node published them. A request waits at most
/// <see cref="RedisAdapterOptions.RequestsTimeout"/> (or its own timeout); a malformed message is logged and ignored.
/// </summary>
public class RedisAdapter : InMemoryAdapter
{
    private readonly IConnectionMultiplexer _redis;
    private readonly RedisAdapterOptions _options;
    private readonly ILogger _logger;
    private readonly string _channel;
    private readonly string _requestChannel;
    private readonly string _responseChannel;
    private readonly string _specificResponseChannel;
    private readonly ConcurrentDictionary<string, PendingRequest> _requests = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, AckRequest> _ackRequests = new(StringComparer.Ordinal);
    private readonly Action<RedisChannel, RedisValue> _countOnly;
    private ChannelMessageQueue? _messages;
    private bool _countSubscribed;
    private volatile bool _closed;

    /// <summary>An adapter for <paramref name="nsp"/> over the connection <paramref name="redis"/> (shared by every namespace).</summary>
    public RedisAdapter(Namespace nsp, IConnectionMultiplexer redis, RedisAdapterOptions? options = null, ILogger? logger = null)
        : base(nsp)
    {
        _redis = redis;
        _options = options ?? new RedisAdapterOptions();
        _logger = logger ?? NullLogger.Instance;
        Uid = NewId(3);
        _channel = _options.Key + "#" + nsp.Name + "#";
        _requestChannel = _options.Key + "-request#" + nsp.Name + "#";
        _responseChannel = _options.Key + "-response#" + nsp.Name + "#";
        _specificResponseChannel = _responseChannel + Uid + "#";
        _countOnly = CountOnly; // a delegate of this adapter's own, so closing removes this one only
    }

    /// <summary>This node's id on the wire (6 characters, as uid2(6)).</summary>
    public string Uid { get; }

    /// <summary>This node's requests awaiting answers now (at most <see cref="RedisAdapterOptions.MaxPendingRequests"/>).</summary>
    public int PendingRequests => _requests.Count + _ackRequests.Count;

    /// <summary>
    /// Subscribes every channel of this namespace with one pattern (<c>{key}*#/nsp#*</c>: broadcasts, requests,
    /// responses, in arrival order), then the request channel itself (what <see cref="ServerCountAsync"/> counts).
    /// </summary>
    public override async ValueTask InitAsync()
    {
        var subscriber = _redis.GetSubscriber();
        _messages = await subscriber.SubscribeAsync(RedisChannel.Pattern(Glob(_options.Key) + "*#" + Glob(Namespace.Name) + "#*"));
        _messages.OnMessage(OnMessage);

        // counted by PUBSUB NUMSUB only: its messages also match the pattern, where they are handled
        await subscriber.SubscribeAsync(RedisChannel.Literal(_requestChannel), _countOnly);
        _countSubscribed = true;
    }

    /// <summary>Unsubscribes what <see cref="InitAsync"/> subscribed; pending requests fail at once.</summary>
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
        if (_messages is { } messages)
        {
            await messages.UnsubscribeAsync();
        }

        if (_countSubscribed)
        {
            // this adapter's handler only: another namespace object on the same connection keeps its subscription
            await _redis.GetSubscriber().UnsubscribeAsync(RedisChannel.Literal(_requestChannel), _countOnly);
        }
    }

    /// <summary>Delivers to this node's sockets and, unless <see cref="BroadcastFlags.Local"/>, publishes the packet once.</summary>
    public override void Broadcast(EncodedPacket packet, BroadcastOptions options)
    {
        if ((options.Flags & BroadcastFlags.Local) == 0)
        {
            byte[]? message = null;
            try
            {
                message = RedisWireCodec.EncodeBroadcast(Uid, packet, options);
            }
            catch (Exception ex) when (ex is FormatException or JsonException)
            {
                _logger.LogWarning(ex, "Redis adapter {Nsp}: a broadcast could not be encoded for the cluster; delivered locally only", Namespace.Name);
            }

            if (message is not null)
            {
                var channel = options.Rooms.Count == 1 ? _channel + options.Rooms.First() + "#" : _channel;
                _ = PublishAsync(channel, message);
            }
        }

        base.Broadcast(packet, options);
    }

    /// <summary>
    /// Publishes a <c>BROADCAST</c> request (the other nodes answer with their client count, then each client's
    /// ack, until <paramref name="timeout"/>), then writes to this node's sockets. Unless local.
    /// </summary>
    public override void BroadcastWithAck(EncodedPacket packet, long ackId, BroadcastOptions options, TimeSpan timeout, Action<int> clientCount, Action<JsonNode?[]> ack)
    {
        if ((options.Flags & BroadcastFlags.Local) == 0)
        {
            if (_requests.Count + _ackRequests.Count >= _options.MaxPendingRequests)
            {
                _logger.LogWarning("Redis adapter {Nsp}: too many pending requests; a broadcast with acks reaches this node only", Namespace.Name);
            }
            else
            {
                try
                {
                    var requestId = NewId(6);
                    var message = RedisWireCodec.EncodeBroadcastRequest(Uid, requestId, packet, options, timeout);
                    _ackRequests[requestId] = new AckRequest(clientCount, ack);
                    _ = ForgetAckRequestAsync(requestId, timeout);
                    _ = PublishAsync(_requestChannel, message);
                }
                catch (Exception ex) when (ex is FormatException or JsonException)
                {
                    _logger.LogWarning(ex, "Redis adapter {Nsp}: a broadcast with acks could not be encoded for the cluster; delivered locally only", Namespace.Name);
                }
            }
        }

        base.BroadcastWithAck(packet, ackId, options, timeout, clientCount, ack);
    }

    /// <summary>
    /// This node's selected sockets plus every other node's (<c>REMOTE_FETCH</c>, as <see cref="RemoteSocket"/>s).
    /// Throws <see cref="TimeoutException"/> when a node does not answer within <see cref="RedisAdapterOptions.RequestsTimeout"/>.
    /// </summary>
    public override async ValueTask<IReadOnlyList<IClusterSocket>> FetchSocketsAsync(BroadcastOptions options)
    {
        var local = await base.FetchSocketsAsync(options);
        if ((options.Flags & BroadcastFlags.Local) != 0)
        {
            return local;
        }

        var others = await ServerCountAsync() - 1;
        if (others <= 0)
        {
            return local;
        }

        var request = new JsonObject { ["opts"] = Opts(options) };
        List<JsonObject> responses;
        try
        {
            responses = await RequestAsync(RequestType.RemoteFetch, request, others, _options.RequestsTimeout, CancellationToken.None);
        }
        catch (RequestTimeoutException)
        {
            throw new TimeoutException("timeout reached while waiting for fetchSockets response");
        }

        var all = new List<IClusterSocket>(local);
        var seen = local.Select(s => s.Id).ToHashSet(StringComparer.Ordinal);
        foreach (var response in responses)
        {
            if (response["sockets"] is not JsonArray sockets)
            {
                continue;
            }

            foreach (var node in sockets)
            {
                if (node is JsonObject socket && RemoteSocketFrom(Namespace, socket) is { } remote && seen.Add(remote.Id))
                {
                    all.Add(remote);
                }
            }
        }

        return all;
    }

    /// <summary>Keeps the session here and, with <see cref="RedisAdapterOptions.SessionKeyPrefix"/>, in Redis for the recovery window.</summary>
    public override async ValueTask PersistSessionAsync(PersistedSession session)
    {
        await base.PersistSessionAsync(session);
        if (_options.SessionKeyPrefix is not { } prefix || Namespace.Server.Options.ConnectionStateRecovery is not { } recovery)
        {
            return;
        }

        try
        {
            await _redis.GetDatabase().StringSetAsync(prefix + session.Pid, SessionCodec.Encode(Namespace.Name, session), recovery.MaxDisconnectionDuration);
        }
        catch (Exception ex)
        {
            // the session stays recoverable on this node
            _logger.LogWarning(ex, "Redis adapter {Nsp}: a session could not be persisted in Redis", Namespace.Name);
        }
    }

    /// <inheritdoc />
    public override ValueTask<SessionRestoreResult> RestoreSessionAsync(string pid, string offset) => RestoreAsync(pid, offset);

    /// <inheritdoc />
    public override ValueTask<SessionRestoreResult> RestoreSessionAsync(string pid) => RestoreAsync(pid, null);

    private async ValueTask<SessionRestoreResult> RestoreAsync(string pid, string? offset)
    {
        // claims the local copy (if this node kept it): a pid recovers once
        var local = offset is null ? await base.RestoreSessionAsync(pid) : await base.RestoreSessionAsync(pid, offset);
        if (_options.SessionKeyPrefix is not { } prefix)
        {
            return local;
        }

        RedisValue stored;
        try
        {
            stored = await _redis.GetDatabase().StringGetDeleteAsync(prefix + pid);
        }
        catch (Exception ex)
        {
            _logger.LogWarning(ex, "Redis adapter {Nsp}: a session could not be read from Redis", Namespace.Name);
            return local;
        }

        if (local.Outcome != RecoveryOutcome.UnknownSession)
        {
            return local;
        }

        if (stored.IsNull || SessionCodec.Decode((byte[])stored!, Namespace.Name) is not { } session)
        {
            return SessionRestoreResult.Unknown;
        }

        var from = offset ?? session.JoinOffset;
        return from is not null && IsRecoverableFrom(from)
            ? new SessionRestoreResult(RecoveryOutcome.Recovered, session)
            : SessionRestoreResult.TooLate;
    }

    /// <summary>Applies to this node's sockets and asks the other nodes to (<c>REMOTE_JOIN</c>), unless local.</summary>
    public override void AddSockets(BroadcastOptions options, IReadOnlyCollection<string> rooms)
    {
        base.AddSockets(options, rooms);
        PublishSelection(options, RequestType.RemoteJoin, "rooms", new JsonArray([.. rooms.Select(r => (JsonNode?)r)]));
    }

    /// <summary>Applies to this node's sockets and asks the other nodes to (<c>REMOTE_LEAVE</c>), unless local.</summary>
    public override void DelSockets(BroadcastOptions options, IReadOnlyCollection<string> rooms)
    {
        base.DelSockets(options, rooms);
        PublishSelection(options, RequestType.RemoteLeave, "rooms", new JsonArray([.. rooms.Select(r => (JsonNode?)r)]));
    }

    /// <summary>Applies to this node's sockets and asks the other nodes to (<c>REMOTE_DISCONNECT</c>), unless local.</summary>
    public override void DisconnectSockets(BroadcastOptions options, bool close)
    {
        base.DisconnectSockets(options, close);
        PublishSelection(options, RequestType.RemoteDisconnect, "close", JsonValue.Create(close));
    }

    /// <summary>Publishes <c>{uid, type: SERVER_SIDE_EMIT, data: [event, ...args]}</c> for the other nodes.</summary>
    public override void ServerSideEmit(string eventName, IReadOnlyList<object?> args)
    {
        var request = new JsonObject { ["uid"] = Uid, ["type"] = (int)RequestType.ServerSideEmit, ["data"] = EventData(eventName, args) };
        _ = PublishAsync(_requestChannel, Encoding.UTF8.GetBytes(request.ToJsonString()));
    }

    /// <summary>
    /// Publishes the event with a request id and waits for one answer per other node (<c>PUBSUB NUMSUB</c> minus
    /// one). Each answer is the arguments of that node's ack (a Node peer answers with its ack's first argument).
    /// Past <paramref name="timeout"/>, throws <see cref="BroadcastAckTimeoutException"/> with the answers received.
    /// </summary>
    public override async Task<IReadOnlyList<JsonNode?[]>> ServerSideEmitWithAckAsync(string eventName, IReadOnlyList<object?> args, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var others = await ServerCountAsync() - 1;
        if (others <= 0)
        {
            return [];
        }

        var request = new JsonObject { ["data"] = EventData(eventName, args) };
        try
        {
            var responses = await RequestAsync(RequestType.ServerSideEmit, request, others, timeout, cancellationToken);
            return [.. responses.Select(AnswerArgs)];
        }
        catch (RequestTimeoutException ex)
        {
            throw new BroadcastAckTimeoutException([.. ex.Responses.Select(AnswerArgs)]);
        }
    }

    /// <summary>The number of nodes subscribed to this namespace's request channel (<c>PUBSUB NUMSUB</c>).</summary>
    public override async ValueTask<int> ServerCountAsync()
    {
        var result = await _redis.GetDatabase().ExecuteAsync("PUBSUB", "NUMSUB", _requestChannel);
        var pair = (RedisResult[])result!;
        return pair.Length >= 2 ? Math.Max(1, (int)pair[1]) : 1;
    }

    /// <summary>Publishes a request and waits for <paramref name="expected"/> answers (bounded, timed out, cleaned up).</summary>
    private async Task<List<JsonObject>> RequestAsync(RequestType type, JsonObject request, int expected, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        if (_requests.Count + _ackRequests.Count >= _options.MaxPendingRequests)
        {
            throw new InvalidOperationException($"too many pending cluster requests ({_options.MaxPendingRequests}) on namespace {Namespace.Name}");
        }

        var pending = new PendingRequest(expected);
        string requestId;
        do
        {
            requestId = NewId(6);
        }
        while (!_requests.TryAdd(requestId, pending));

        request["uid"] = Uid;
        request["requestId"] = requestId;
        request["type"] = (int)type;
        try
        {
            await _redis.GetSubscriber().PublishAsync(RedisChannel.Literal(_requestChannel), Encoding.UTF8.GetBytes(request.ToJsonString()));
            return await pending.Task.WaitAsync(timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            throw new RequestTimeoutException(pending.Snapshot());
        }
        finally
        {
            _requests.TryRemove(requestId, out _);
        }
    }

    private async Task ForgetAckRequestAsync(string requestId, TimeSpan timeout)
    {
        // as redis-adapter: nothing tells when every client answered, so the entry goes after the timeout
        await Task.Delay(timeout);
        _ackRequests.TryRemove(requestId, out _);
    }

    private void PublishSelection(BroadcastOptions options, RequestType type, string name, JsonNode value)
    {
        if ((options.Flags & BroadcastFlags.Local) != 0)
        {
            return;
        }

        var request = new JsonObject { ["uid"] = Uid, ["type"] = (int)type, ["opts"] = Opts(options), [name] = value };
        _ = PublishAsync(_requestChannel, Encoding.UTF8.GetBytes(request.ToJsonString()));
    }

    private void OnMessage(ChannelMessage message)
    {
        try
        {
            var channel = (string?)message.Channel ?? "";
            var bytes = (ReadOnlyMemory<byte>)message.Message;
            if (channel == _requestChannel)
            {
                OnRequest(bytes);
            }
            else if (channel == _responseChannel || channel == _specificResponseChannel)
            {
                OnResponse(bytes);
            }
            else if (channel.StartsWith(_channel, StringComparison.Ordinal))
            {
                OnBroadcast(channel, bytes);
            }
        }
        catch (Exception ex)
        {
            // a malformed message from the cluster costs this message only
            _logger.LogWarning(ex, "Redis adapter {Nsp}: ignored a malformed message on {Channel}", Namespace.Name, (string?)message.Channel);
        }
    }

    private void CountOnly(RedisChannel channel, RedisValue message)
    {
        // the request channel's own subscription is there to be counted: its messages are read through the pattern
    }

    private void OnBroadcast(string channel, ReadOnlyMemory<byte> bytes)
    {
        var room = channel.Length > _channel.Length ? channel[_channel.Length..^1] : "";
        if (room.Length > 0 && !HasRoom(room))
        {
            return;
        }

        var received = RedisWireCodec.DecodeBroadcast(bytes);
        if (received.Uid == Uid || received.Nsp != Namespace.Name)
        {
            return;
        }

        base.Broadcast(received.Packet, received.Options);
    }

    private void OnRequest(ReadOnlyMemory<byte> bytes)
    {
        var request = RedisWireCodec.ReadMessage(bytes);
        if ((string?)Scalar(request["uid"]) == Uid)
        {
            return; // applied here already
        }

        var requestId = Scalar(request["requestId"]);
        switch ((RequestType?)Int(request["type"]))
        {
            case RequestType.RemoteJoin when request["opts"] is JsonObject opts:
                base.AddSockets(Selection(opts), Strings(request["rooms"]));
                break;
            case RequestType.RemoteLeave when request["opts"] is JsonObject opts:
                base.DelSockets(Selection(opts), Strings(request["rooms"]));
                break;
            case RequestType.RemoteDisconnect when request["opts"] is JsonObject opts:
                base.DisconnectSockets(Selection(opts), request["close"] is JsonValue close && close.GetValueKind() == JsonValueKind.True);
                break;
            case RequestType.ServerSideEmit when request["data"] is JsonArray { Count: > 0 } data:
                OnServerSideEmit(data, requestId);
                break;
            case RequestType.RemoteFetch when requestId is not null && request["opts"] is JsonObject opts:
                var sockets = new JsonArray();
                foreach (var socket in LocalSockets(Selection(opts)))
                {
                    sockets.Add(Describe(socket));
                }

                PublishResponse(request, Json(new JsonObject { ["requestId"] = requestId, ["sockets"] = sockets }));
                break;
            case RequestType.Sockets when requestId is not null:
                var ids = Sockets(Strings(request["rooms"]).ToHashSet(StringComparer.Ordinal));
                PublishResponse(request, Json(new JsonObject { ["requestId"] = requestId, ["sockets"] = new JsonArray([.. ids.Select(i => (JsonNode?)i)]) }));
                break;
            case RequestType.AllRooms when requestId is not null:
                PublishResponse(request, Json(new JsonObject { ["requestId"] = requestId, ["rooms"] = new JsonArray([.. Rooms.Select(r => (JsonNode?)r)]) }));
                break;
            case RequestType.Broadcast when requestId is not null && request["packet"] is JsonObject packet && request["opts"] is JsonObject opts:
                OnBroadcastWithAck(request, requestId, packet, opts);
                break;
        }
    }

    private void OnServerSideEmit(JsonArray data, string? requestId)
    {
        Action<object?[]>? ack = null;
        if (requestId is not null)
        {
            var called = 0;
            ack = args =>
            {
                if (Interlocked.Exchange(ref called, 1) != 0)
                {
                    return; // one answer per node
                }

                // redis-adapter reads one argument ("data"); "args" keeps all of them for our nodes
                var response = new JsonObject
                {
                    ["type"] = (int)RequestType.ServerSideEmit,
                    ["requestId"] = requestId,
                    ["data"] = args.Length == 0 ? null : ToNode(args[0]),
                    ["args"] = new JsonArray([.. args.Select(ToNode)]),
                };
                _ = PublishAsync(_responseChannel, Json(response));
            };
        }

        Namespace.DispatchServerSideEvent((string?)Scalar(data[0]) ?? "", [.. data.Skip(1).Select(n => n?.DeepClone())], ack);
    }

    private void OnBroadcastWithAck(JsonObject request, string requestId, JsonObject packet, JsonObject opts)
    {
        if (_ackRequests.ContainsKey(requestId))
        {
            return; // ours
        }

        var id = Namespace.NextAckId();
        var encoded = RedisWireCodec.PacketFromNode(packet, Namespace.Name, id);
        var selection = Selection(opts);
        var timeout = _options.RequestsTimeout;
        if (opts["flags"] is JsonObject flags)
        {
            if (flags["volatile"] is JsonValue v && v.GetValueKind() == JsonValueKind.True)
            {
                selection = selection with { Flags = BroadcastFlags.Volatile };
            }

            if (Number(flags["timeout"]) is { } ms && ms > 0)
            {
                timeout = TimeSpan.FromMilliseconds(Math.Min(ms, TimeSpan.FromHours(1).TotalMilliseconds));
            }
        }

        base.BroadcastWithAck(
            encoded,
            id,
            selection,
            timeout,
            count => PublishResponse(request, Json(new JsonObject
            {
                ["type"] = (int)RequestType.BroadcastClientCount,
                ["requestId"] = requestId,
                ["clientCount"] = count,
            })),
            args =>
            {
                // redis-adapter reads the ack's first argument ("packet"); "args" keeps all of them for our nodes
                var response = new JsonObject
                {
                    ["type"] = (int)RequestType.BroadcastAck,
                    ["requestId"] = requestId,
                    ["packet"] = args.Length == 0 ? null : args[0]?.DeepClone(),
                };
                if (args.Length != 1)
                {
                    response["args"] = new JsonArray([.. args.Select(a => a?.DeepClone())]);
                }

                try
                {
                    PublishResponse(request, RedisWireCodec.EncodeNode(response));
                }
                catch (Exception ex) when (ex is FormatException or JsonException)
                {
                    _logger.LogWarning(ex, "Redis adapter {Nsp}: an ack could not be encoded for the cluster", Namespace.Name);
                }
            });
    }

    private void OnResponse(ReadOnlyMemory<byte> bytes)
    {
        var response = RedisWireCodec.ReadMessage(bytes);
        if (Scalar(response["requestId"]) is not { } requestId)
        {
            return;
        }

        if (_ackRequests.TryGetValue(requestId, out var ackRequest))
        {
            switch ((RequestType?)Int(response["type"]))
            {
                case RequestType.BroadcastClientCount when Int(response["clientCount"]) is { } n:
                    ackRequest.ClientCount(n);
                    break;
                case RequestType.BroadcastAck:
                    ackRequest.Ack(response["args"] is JsonArray args ? [.. args.Select(a => a?.DeepClone())] : [response["packet"]?.DeepClone()]);
                    break;
            }

            return;
        }

        if (_requests.TryGetValue(requestId, out var pending))
        {
            pending.Add(response);
        }
    }

    private void PublishResponse(JsonObject request, byte[] response)
    {
        var channel = _options.PublishOnSpecificResponseChannel && Scalar(request["uid"]) is { } uid
            ? _responseChannel + uid + "#"
            : _responseChannel;
        _ = PublishAsync(channel, response);
    }

    private async Task PublishAsync(string channel, byte[] message)
    {
        try
        {
            await _redis.GetSubscriber().PublishAsync(RedisChannel.Literal(channel), message);
        }
        catch (Exception ex)
        {
            _logger.LogWarning(ex, "Redis adapter {Nsp}: publishing to {Channel} failed", Namespace.Name, channel);
        }
    }

    private bool HasRoom(string room) => Namespace.SocketsById.ContainsKey(room) || Rooms.Contains(room);

    /// <summary>A socket as <c>REMOTE_FETCH</c> describes it: <c>{id, handshake, rooms, data}</c> (socket.io's handshake fields).</summary>
    internal static JsonObject Describe(Socket socket)
    {
        var handshake = socket.Handshake;
        var data = new JsonObject();
        foreach (var (key, value) in socket.Data)
        {
            try
            {
                data[key] = ToNode(value);
            }
            catch (Exception ex) when (ex is NotSupportedException or JsonException or InvalidOperationException)
            {
                // a value that has no JSON form stays on its node
            }
        }

        return new JsonObject
        {
            ["id"] = socket.Id,
            ["handshake"] = new JsonObject
            {
                ["headers"] = Map(handshake.Headers),
                ["time"] = handshake.Time.ToString("R", CultureInfo.InvariantCulture),
                ["address"] = handshake.Address,
                ["xdomain"] = handshake.Headers.ContainsKey("origin"),
                ["secure"] = handshake.Secure,
                ["issued"] = handshake.Time.ToUnixTimeMilliseconds(),
                ["url"] = handshake.Url,
                ["query"] = Map(handshake.Query),
                ["auth"] = handshake.CopyAuth(),
            },
            ["rooms"] = new JsonArray([.. socket.Rooms.Select(r => (JsonNode?)r)]),
            ["data"] = data,
        };
    }

    /// <summary>A socket of another node from its <c>REMOTE_FETCH</c> description; null when it has no id.</summary>
    internal static RemoteSocket? RemoteSocketFrom(Namespace nsp, JsonObject socket)
    {
        if (Scalar(socket["id"]) is not { } id)
        {
            return null;
        }

        var shake = socket["handshake"] as JsonObject ?? [];
        var time = Number(shake["issued"]) is { } ms && Math.Abs(ms) < 8.64e15
            ? DateTimeOffset.FromUnixTimeMilliseconds((long)ms)
            : DateTimeOffset.UtcNow;
        var address = IPAddress.TryParse(Scalar(shake["address"]), out var parsed) ? parsed : null;
        var request = EngineRequest.Describe(
            Dictionary(shake["query"], StringComparer.Ordinal),
            Dictionary(shake["headers"], StringComparer.OrdinalIgnoreCase),
            address,
            Scalar(shake["url"]) ?? "",
            shake["secure"] is JsonValue secure && secure.GetValueKind() == JsonValueKind.True,
            time);
        var auth = shake["auth"] as JsonObject ?? []; // the handshake keeps its own UTF-8 copy
        var data = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (socket["data"] is JsonObject values)
        {
            foreach (var (key, value) in values)
            {
                data[key] = value?.DeepClone();
            }
        }

        var rooms = Strings(socket["rooms"]);
        return new RemoteSocket(nsp, id, new Handshake(request, request, auth), rooms.Length == 0 ? [id] : rooms, data);
    }

    internal static JsonObject Map(IReadOnlyDictionary<string, string> values)
    {
        var map = new JsonObject();
        foreach (var (key, value) in values)
        {
            map[key] = value;
        }

        return map;
    }

    internal static Dictionary<string, string> Dictionary(JsonNode? node, StringComparer comparer)
    {
        var values = new Dictionary<string, string>(comparer);
        if (node is JsonObject map)
        {
            foreach (var (key, value) in map)
            {
                // Node gives repeated headers and query parameters as arrays
                values[key] = value is JsonArray many ? string.Join(",", Strings(many)) : Scalar(value) ?? value?.ToJsonString() ?? "";
            }
        }

        return values;
    }

    internal static JsonObject Opts(BroadcastOptions options) => new()
    {
        ["rooms"] = new JsonArray([.. options.Rooms.Select(r => (JsonNode?)r)]),
        ["except"] = new JsonArray([.. options.Except.Select(r => (JsonNode?)r)]),
    };

    internal static JsonArray EventData(string eventName, IReadOnlyList<object?> args)
    {
        var data = new JsonArray { eventName };
        foreach (var arg in args)
        {
            data.Add(ToNode(arg));
        }

        return data;
    }

    internal static JsonNode? ToNode(object? value) => value as JsonNode is { } node ? node.DeepClone() : JsonSerializer.SerializeToNode(value);

    internal static JsonNode?[] AnswerArgs(JsonObject response) =>
        response["args"] is JsonArray args ? [.. args.Select(a => a?.DeepClone())] : [response["data"]?.DeepClone()];

    internal static double? Number(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && double.TryParse(v.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null;

    internal static int? Int(JsonNode? node) => Number(node) is { } d && d is >= int.MinValue and <= int.MaxValue ? (int)d : null;

    internal static byte[] Json(JsonObject message) => Encoding.UTF8.GetBytes(message.ToJsonString());

    internal static string? Scalar(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    internal static BroadcastOptions Selection(JsonObject opts) =>
        new(Strings(opts["rooms"]).ToHashSet(StringComparer.Ordinal), Strings(opts["except"]).ToHashSet(StringComparer.Ordinal));

    internal static string[] Strings(JsonNode? node) =>
        node is JsonArray array ? [.. array.Select(n => Scalar(n) ?? n?.ToJsonString() ?? "")] : [];

    /// <summary>A glob pattern matching <paramref name="text"/> literally.</summary>
    internal static string Glob(string text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (c is '*' or '?' or '[' or ']' or '\\')
            {
                builder.Append('\\');
            }

            builder.Append(c);
        }

        return builder.ToString();
    }

    internal static string NewId(int bytes) => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(bytes));

    /// <summary>Answers to one request of this node, complete when <c>expected</c> came.</summary>
    private sealed class PendingRequest(int expected)
    {
        private readonly List<JsonObject> _responses = [];
        private readonly TaskCompletionSource<List<JsonObject>> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<List<JsonObject>> Task => _done.Task;

        public void Add(JsonObject response)
        {
            lock (_responses)
            {
                if (_responses.Count < expected)
                {
                    _responses.Add(response);
                    if (_responses.Count == expected)
                    {
                        _done.TrySetResult([.. _responses]);
                    }
                }
            }
        }

        public List<JsonObject> Snapshot()
        {
            lock (_responses)
            {
                return [.. _responses];
            }
        }

        public void Fail(Exception error) => _done.TrySetException(error);
    }

    private sealed record AckRequest(Action<int> ClientCount, Action<JsonNode?[]> Ack);

    private sealed class RequestTimeoutException(List<JsonObject> responses) : Exception("timed out")
    {
        public List<JsonObject> Responses { get; } = responses;
    }
}

/// <summary>The request types of <c>@socket.io/redis-adapter</c> (its numbering).</summary>
internal enum RequestType
{
    Sockets = 0,
    AllRooms = 1,
    RemoteJoin = 2,
    RemoteLeave = 3,
    RemoteDisconnect = 4,
    RemoteFetch = 5,
    ServerSideEmit = 6,
    Broadcast = 7,
    BroadcastClientCount = 8,
    BroadcastAck = 9,
}

/// <summary>Makes a <see cref="RedisAdapter"/> for each namespace, all over one Redis connection.</summary>
public sealed class RedisAdapterFactory : IAdapterFactory
{
    private readonly IConnectionMultiplexer _redis;
    private readonly RedisAdapterOptions _options;
    private readonly ILoggerFactory? _loggerFactory;

    /// <summary>A factory over <paramref name="redis"/> (owned by the caller).</summary>
    public RedisAdapterFactory(IConnectionMultiplexer redis, RedisAdapterOptions? options = null, ILoggerFactory? loggerFactory = null)
    {
        _redis = redis;
        _options = options ?? new RedisAdapterOptions();
        _loggerFactory = loggerFactory;
    }

    /// <inheritdoc />
    public IAdapter Create(Namespace nsp) => _options.Sharded
        ? new ShardedRedisAdapter(nsp, _redis, _options, _loggerFactory?.CreateLogger<ShardedRedisAdapter>())
        : new RedisAdapter(nsp, _redis, _options, _loggerFactory?.CreateLogger<RedisAdapter>());
}

/// <summary>A persisted session as JSON: <c>{nsp, sid, pid, rooms, data, joinOffset}</c>.</summary>
internal static class SessionCodec
{
    public static byte[] Encode(string nsp, PersistedSession session)
    {
        var data = new JsonObject();
        foreach (var (key, value) in session.Data ?? new System.Collections.Concurrent.ConcurrentDictionary<string, object?>())
        {
            data[key] = value as JsonNode ?? JsonSerializer.SerializeToNode(value);
        }

        var json = new JsonObject
        {
            ["nsp"] = nsp,
            ["sid"] = session.Sid,
            ["pid"] = session.Pid,
            ["rooms"] = new JsonArray([.. session.Rooms.Select(r => (JsonNode?)r)]),
            ["data"] = data,
            ["joinOffset"] = session.JoinOffset,
        };
        return Encoding.UTF8.GetBytes(json.ToJsonString());
    }

    /// <summary>The session, or null when malformed or of another namespace.</summary>
    public static PersistedSession? Decode(byte[] bytes, string nsp)
    {
        try
        {
            if (JsonNode.Parse(bytes, documentOptions: new JsonDocumentOptions { MaxDepth = 64 }) is not JsonObject json
                || (string?)json["nsp"] != nsp || json["sid"] is not JsonValue sid || json["pid"] is not JsonValue pid
                || json["rooms"] is not JsonArray rooms)
            {
                return null;
            }

            var data = new System.Collections.Concurrent.ConcurrentDictionary<string, object?>(StringComparer.Ordinal);
            if (json["data"] is JsonObject values)
            {
                foreach (var (key, value) in values)
                {
                    data[key] = value?.DeepClone();
                }
            }

            return new PersistedSession(sid.GetValue<string>(), pid.GetValue<string>(), [.. rooms.Select(r => r?.GetValue<string>() ?? "")], data)
            {
                JoinOffset = json["joinOffset"] is JsonValue join ? join.GetValue<string>() : null,
            };
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException)
        {
            return null;
        }
    }
}

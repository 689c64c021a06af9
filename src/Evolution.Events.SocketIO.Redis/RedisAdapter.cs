using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
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
/// nodes and Node.js socket.io nodes can share one cluster. A broadcast is delivered to this node's sockets and
/// published once (msgpack of <c>[uid, packet, opts]</c> on <c>{key}#/nsp#</c>, or <c>{key}#/nsp#room#</c> for a
/// single room); every node decodes what others published (once per message) and delivers it to its own
/// sockets. Its own messages (same uid) are ignored. A <see cref="BroadcastFlags.Local"/> broadcast is not published.
/// The cluster size is <c>PUBSUB NUMSUB</c> of the request channel, which every node subscribes.
/// Join, leave and disconnect of selected sockets and server-side events (without ack) are JSON requests on
/// <c>{key}-request#/nsp#</c>, applied by every node (answering a Node peer's server-side event with ack too).
/// Not carried to other nodes (yet): broadcasts with acks, fetching remote sockets, and awaiting answers to our
/// own server-side events with ack — those act on this node only.
/// </summary>
public class RedisAdapter : InMemoryAdapter
{
    private readonly IConnectionMultiplexer _redis;
    private readonly RedisAdapterOptions _options;
    private readonly ILogger _logger;
    private readonly string _channel;
    private readonly string _requestChannel;
    private readonly string _responseChannel;
    private ChannelMessageQueue? _messages;
    private ChannelMessageQueue? _requests;

    /// <summary>An adapter for <paramref name="nsp"/> over the connection <paramref name="redis"/> (shared by every namespace).</summary>
    public RedisAdapter(Namespace nsp, IConnectionMultiplexer redis, RedisAdapterOptions? options = null, ILogger? logger = null)
        : base(nsp)
    {
        _redis = redis;
        _options = options ?? new RedisAdapterOptions();
        _logger = logger ?? NullLogger.Instance;
        Uid = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        _channel = _options.Key + "#" + nsp.Name + "#";
        _requestChannel = _options.Key + "-request#" + nsp.Name + "#";
        _responseChannel = _options.Key + "-response#" + nsp.Name + "#";
    }

    /// <summary>This node's id on the wire (6 characters, as uid2(6)).</summary>
    public string Uid { get; }

    /// <summary>Subscribes <c>{key}#/nsp#*</c> (broadcasts) and the request channel (counted by <see cref="ServerCountAsync"/>).</summary>
    public override async ValueTask InitAsync()
    {
        var subscriber = _redis.GetSubscriber();
        _messages = await subscriber.SubscribeAsync(RedisChannel.Pattern(_channel + "*"));
        _messages.OnMessage(OnMessage);
        _requests = await subscriber.SubscribeAsync(RedisChannel.Literal(_requestChannel));
        _requests.OnMessage(OnRequest);
    }

    /// <summary>Unsubscribes what <see cref="InitAsync"/> subscribed.</summary>
    public override async ValueTask CloseAsync()
    {
        if (_messages is { } messages)
        {
            await messages.UnsubscribeAsync();
        }

        if (_requests is { } requests)
        {
            await requests.UnsubscribeAsync();
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
            catch (Exception ex) when (ex is FormatException or System.Text.Json.JsonException)
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
        var data = new JsonArray { eventName };
        foreach (var arg in args)
        {
            data.Add(arg as JsonNode ?? JsonSerializer.SerializeToNode(arg));
        }

        var request = new JsonObject { ["uid"] = Uid, ["type"] = (int)RequestType.ServerSideEmit, ["data"] = data };
        _ = PublishAsync(_requestChannel, Encoding.UTF8.GetBytes(request.ToJsonString()));
    }

    private void PublishSelection(BroadcastOptions options, RequestType type, string name, JsonNode value)
    {
        if ((options.Flags & BroadcastFlags.Local) != 0)
        {
            return;
        }

        var request = new JsonObject
        {
            ["uid"] = Uid,
            ["type"] = (int)type,
            ["opts"] = new JsonObject
            {
                ["rooms"] = new JsonArray([.. options.Rooms.Select(r => (JsonNode?)r)]),
                ["except"] = new JsonArray([.. options.Except.Select(r => (JsonNode?)r)]),
            },
            [name] = value,
        };
        _ = PublishAsync(_requestChannel, Encoding.UTF8.GetBytes(request.ToJsonString()));
    }

    private void OnRequest(ChannelMessage message)
    {
        try
        {
            var bytes = (ReadOnlyMemory<byte>)message.Message;
            if (bytes.Length == 0 || bytes.Span[0] != (byte)'{')
            {
                return; // msgpack requests (broadcasts with acks, fetch) are not handled yet
            }

            var request = JsonNode.Parse(bytes.Span)!.AsObject();
            if ((string?)request["uid"] == Uid)
            {
                return; // applied here already
            }

            switch ((RequestType)(int)request["type"]!)
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
                    var requestId = (string?)request["requestId"];
                    Action<object?[]>? ack = requestId is null ? null : args =>
                    {
                        // only one argument is expected (as socket.io's)
                        var response = new JsonObject
                        {
                            ["type"] = (int)RequestType.ServerSideEmit,
                            ["requestId"] = requestId,
                            ["data"] = args.Length == 0 ? null : args[0] as JsonNode ?? JsonSerializer.SerializeToNode(args[0]),
                        };
                        _ = PublishAsync(_responseChannel, Encoding.UTF8.GetBytes(response.ToJsonString()));
                    };
                    Namespace.DispatchServerSideEvent((string?)data[0] ?? "", [.. data.Skip(1).Select(n => n?.DeepClone())], ack);
                    break;
            }
        }
        catch (Exception ex)
        {
            // a malformed request from the cluster costs this message only
            _logger.LogWarning(ex, "Redis adapter {Nsp}: ignored a malformed request", Namespace.Name);
        }
    }

    private static BroadcastOptions Selection(JsonObject opts) =>
        new(Strings(opts["rooms"]).ToHashSet(StringComparer.Ordinal), Strings(opts["except"]).ToHashSet(StringComparer.Ordinal));

    private static string[] Strings(JsonNode? node) =>
        node is JsonArray array ? [.. array.Select(n => n is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : n?.ToJsonString() ?? "")] : [];

    /// <summary>The number of nodes subscribed to this namespace's request channel (<c>PUBSUB NUMSUB</c>).</summary>
    public override async ValueTask<int> ServerCountAsync()
    {
        var result = await _redis.GetDatabase().ExecuteAsync("PUBSUB", "NUMSUB", _requestChannel);
        var pair = (RedisResult[])result!;
        return pair.Length >= 2 ? Math.Max(1, (int)pair[1]) : 1;
    }

    private async Task PublishAsync(string channel, byte[] message)
    {
        try
        {
            await _redis.GetSubscriber().PublishAsync(RedisChannel.Literal(channel), message);
        }
        catch (Exception ex)
        {
            _logger.LogWarning(ex, "Redis adapter {Nsp}: publishing a broadcast failed", Namespace.Name);
        }
    }

    private void OnMessage(ChannelMessage message)
    {
        try
        {
            var channel = (string?)message.Channel ?? "";
            if (!channel.StartsWith(_channel, StringComparison.Ordinal))
            {
                return;
            }

            var room = channel.Length > _channel.Length ? channel[_channel.Length..^1] : "";
            if (room.Length > 0 && !HasRoom(room))
            {
                return;
            }

            var bytes = (ReadOnlyMemory<byte>)message.Message;
            var received = RedisWireCodec.DecodeBroadcast(bytes);
            if (received.Uid == Uid || received.Nsp != Namespace.Name)
            {
                return;
            }

            base.Broadcast(received.Packet, received.Options);
        }
        catch (Exception ex)
        {
            // a malformed message from the cluster costs this message only
            _logger.LogWarning(ex, "Redis adapter {Nsp}: ignored a malformed broadcast message", Namespace.Name);
        }
    }

    private bool HasRoom(string room) => Namespace.SocketsById.ContainsKey(room) || Rooms.Contains(room);
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
    public IAdapter Create(Namespace nsp) => new RedisAdapter(nsp, _redis, _options, _loggerFactory?.CreateLogger<RedisAdapter>());
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

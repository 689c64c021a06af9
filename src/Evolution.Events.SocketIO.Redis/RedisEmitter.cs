using System.Collections.Immutable;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Evolution.Events.SocketIO.Adapters;
using Evolution.Events.SocketIO.Protocol;
using StackExchange.Redis;

namespace Evolution.Events.SocketIO.Redis;

/// <summary>Options of a <see cref="RedisEmitter"/> (named as <c>@socket.io/redis-emitter</c>'s).</summary>
public sealed record RedisEmitterOptions
{
    /// <summary>The channels' prefix: the <see cref="RedisAdapterOptions.Key"/> of the cluster's adapters. Default <c>socket.io</c>.</summary>
    public string Key { get; init; } = "socket.io";
}

/// <summary>
/// Publishes into a Socket.IO cluster without serving clients (<c>@socket.io/redis-emitter</c> 5.x's wire format):
/// every node with a <see cref="RedisAdapter"/> or Node's <c>@socket.io/redis-adapter</c> on the same Redis and
/// key delivers the events to its sockets and applies the operations. Immutable: <see cref="Of"/>, <see cref="To(string)"/>,
/// <see cref="Except(string)"/> and <see cref="Volatile"/> return new emitters. Fire-and-forget like the Node emitter
/// (no acks); each call completes when Redis took the message.
/// </summary>
/// <example>
/// <code>
/// var redis = await ConnectionMultiplexer.ConnectAsync("127.0.0.1:6379");
/// var emitter = new RedisEmitter(redis);
/// await emitter.To("room1").EmitAsync("news", "hello");
/// await emitter.Of("/admin").Except("banned").EmitAsync("notice", new { level = 2 });
/// </code>
/// </example>
public sealed class RedisEmitter
{
    /// <summary>The uid the emitter writes in its messages (as <c>@socket.io/redis-emitter</c>).</summary>
    public const string EmitterUid = "emitter";

    private static readonly HashSet<string> Reserved = ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];
    private readonly IConnectionMultiplexer _redis;
    private readonly RedisEmitterOptions _options;
    private readonly ImmutableHashSet<string> _rooms;
    private readonly ImmutableHashSet<string> _except;
    private readonly BroadcastFlags _flags;

    /// <summary>An emitter of the main namespace <c>/</c> over <paramref name="redis"/> (owned by the caller).</summary>
    public RedisEmitter(IConnectionMultiplexer redis, RedisEmitterOptions? options = null)
        : this(redis, options ?? new RedisEmitterOptions(), SocketPacket.MainNamespace, ImmutableHashSet<string>.Empty, ImmutableHashSet<string>.Empty, BroadcastFlags.None)
    {
    }

    private RedisEmitter(IConnectionMultiplexer redis, RedisEmitterOptions options, string nsp, ImmutableHashSet<string> rooms, ImmutableHashSet<string> except, BroadcastFlags flags)
    {
        ArgumentNullException.ThrowIfNull(redis);
        _redis = redis;
        _options = options;
        Namespace = nsp;
        _rooms = rooms;
        _except = except;
        _flags = flags;
    }

    /// <summary>The namespace this emitter publishes to.</summary>
    public string Namespace { get; }

    /// <summary>An emitter of the namespace <paramref name="nsp"/> (a leading <c>/</c> is added when missing), with no room selected.</summary>
    public RedisEmitter Of(string nsp)
    {
        ArgumentException.ThrowIfNullOrEmpty(nsp);
        return new(_redis, _options, nsp[0] == '/' ? nsp : "/" + nsp, ImmutableHashSet<string>.Empty, ImmutableHashSet<string>.Empty, BroadcastFlags.None);
    }

    /// <summary>Also targets the sockets in <paramref name="room"/> (a socket id is a room).</summary>
    public RedisEmitter To(string room) => new(_redis, _options, Namespace, _rooms.Add(room), _except, _flags);

    /// <summary>Also targets the sockets in any of <paramref name="rooms"/>.</summary>
    public RedisEmitter To(IEnumerable<string> rooms) => new(_redis, _options, Namespace, _rooms.Union(rooms), _except, _flags);

    /// <summary>Leaves out the sockets in <paramref name="room"/>.</summary>
    public RedisEmitter Except(string room) => new(_redis, _options, Namespace, _rooms, _except.Add(room), _flags);

    /// <summary>Leaves out the sockets in any of <paramref name="rooms"/>.</summary>
    public RedisEmitter Except(IEnumerable<string> rooms) => new(_redis, _options, Namespace, _rooms, _except.Union(rooms), _flags);

    /// <summary>The event may be dropped for a client that is not ready to receive it.</summary>
    public RedisEmitter Volatile => new(_redis, _options, Namespace, _rooms, _except, _flags | BroadcastFlags.Volatile);

    /// <summary>
    /// Emits <paramref name="eventName"/> to the selected sockets of every node (arguments as the server's
    /// <c>Emit</c> takes them: JSON-serializable values, <see cref="JsonNode"/>s, byte arrays as binary).
    /// </summary>
    public Task EmitAsync(string eventName, params object?[] args)
    {
        ArgumentException.ThrowIfNullOrEmpty(eventName);
        if (Reserved.Contains(eventName))
        {
            throw new ArgumentException($"\"{eventName}\" is a reserved event name", nameof(eventName));
        }

        var packet = SocketPacketEncoder.Event(Namespace, eventName, args);
        var message = RedisWireCodec.EncodeBroadcast(EmitterUid, packet, new BroadcastOptions(_rooms, _except, _flags));
        var channel = _options.Key + "#" + Namespace + "#" + (_rooms.Count == 1 ? _rooms.First() + "#" : "");
        return _redis.GetSubscriber().PublishAsync(RedisChannel.Literal(channel), message);
    }

    /// <summary>Makes the selected sockets of every node join <paramref name="rooms"/>.</summary>
    public Task SocketsJoinAsync(params string[] rooms) =>
        PublishRequestAsync(RequestType.RemoteJoin, "rooms", new JsonArray([.. rooms.Select(r => (JsonNode?)r)]));

    /// <summary>Makes the selected sockets of every node leave <paramref name="rooms"/>.</summary>
    public Task SocketsLeaveAsync(params string[] rooms) =>
        PublishRequestAsync(RequestType.RemoteLeave, "rooms", new JsonArray([.. rooms.Select(r => (JsonNode?)r)]));

    /// <summary>Disconnects the selected sockets of every node (with <paramref name="close"/>, their connections).</summary>
    public Task DisconnectSocketsAsync(bool close = false) =>
        PublishRequestAsync(RequestType.RemoteDisconnect, "close", JsonValue.Create(close));

    /// <summary>
    /// Sends a server-side event to every node of the namespace (their <see cref="Namespace.OnServerSideEmit"/>
    /// handlers; JSON arguments). No acknowledgement: the emitter is not a node.
    /// </summary>
    public Task ServerSideEmitAsync(string eventName, params object?[] args)
    {
        ArgumentException.ThrowIfNullOrEmpty(eventName);
        var data = new JsonArray { eventName };
        foreach (var arg in args)
        {
            data.Add(arg as JsonNode is { } node ? node.DeepClone() : JsonSerializer.SerializeToNode(arg));
        }

        var request = new JsonObject { ["uid"] = EmitterUid, ["type"] = (int)RequestType.ServerSideEmit, ["data"] = data };
        return PublishAsync(_options.Key + "-request#" + Namespace + "#", request);
    }

    private Task<long> PublishRequestAsync(RequestType type, string name, JsonNode value)
    {
        var request = new JsonObject
        {
            ["type"] = (int)type,
            ["opts"] = new JsonObject
            {
                ["rooms"] = new JsonArray([.. _rooms.Select(r => (JsonNode?)r)]),
                ["except"] = new JsonArray([.. _except.Select(r => (JsonNode?)r)]),
            },
            [name] = value,
        };
        return PublishAsync(_options.Key + "-request#" + Namespace + "#", request);
    }

    private Task<long> PublishAsync(string channel, JsonObject request) =>
        _redis.GetSubscriber().PublishAsync(RedisChannel.Literal(channel), Encoding.UTF8.GetBytes(request.ToJsonString()));
}

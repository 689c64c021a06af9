using System.Net;
using Serilog.Events;

namespace Evolution.Events.Gateway.Options;

/// <summary>
/// The resolved gateway configuration (see docs/configuration.md). Built once at start-up by
/// <see cref="GatewayOptionsBinder"/> and registered as a singleton.
/// </summary>
public sealed class GatewayOptions
{
    /// <summary>SERVER_PORT: the HTTP port for everything.</summary>
    public int Port { get; init; } = 8080;

    /// <summary>
    /// SERVER_HOST: the interface to listen on (<c>+</c> = all, the default; <c>127.0.0.1</c> = this host only).
    /// ASPNETCORE_URLS (or <c>--urls</c>) wins over SERVER_HOST and SERVER_PORT when set.
    /// </summary>
    public string Host { get; init; } = "+";

    /// <summary>SERVER_URL: the fallback <c>server_url</c> of envelopes.</summary>
    public string ServerUrl { get; init; } = "http://localhost:8080";

    /// <summary>WEBSOCKET_ENABLED: false turns Socket.IO and plain WebSocket endpoints into 404s.</summary>
    public bool WebSocketEnabled { get; init; } = true;

    /// <summary>
    /// ADMIN_UI_ENABLED: the official Socket.IO Admin UI at <c>/admin-ui/</c> and its namespace <c>/admin</c>
    /// (login: any username, the global key as password). Off by default. While on, no instance may be named
    /// <c>admin</c> (its namespace would be the admin UI's).
    /// </summary>
    public bool AdminUIEnabled { get; init; }

    /// <summary>ADMIN_UI_MODE: <c>development</c> (sockets, rooms and events as they happen; default) or <c>production</c> (statistics only).</summary>
    public Evolution.Events.SocketIO.AdminUI.AdminUIMode AdminUIMode { get; init; } = Evolution.Events.SocketIO.AdminUI.AdminUIMode.Development;

    /// <summary>ADMIN_UI_READONLY: the Admin UI only watches (no emit, join, leave or disconnect commands).</summary>
    public bool AdminUIReadOnly { get; init; }

    /// <summary>The Admin UI's namespace is <c>/admin</c>, the UI's default: the instance of that name is refused while it is on.</summary>
    public bool IsReservedInstanceName(string name) => AdminUIEnabled && name == AdminUINamespace[1..];

    /// <summary>The Admin UI's namespace.</summary>
    public const string AdminUINamespace = "/admin";

    /// <summary>WEBSOCKET_GLOBAL_EVENTS: also emit every event on the Socket.IO main namespace.</summary>
    public bool WebSocketGlobalEvents { get; init; }

    /// <summary>AUTHENTICATION_API_KEY: the global key (full access). Never log it.</summary>
    public string ApiKey { get; init; } = "";

    /// <summary>True when <see cref="ApiKey"/> was generated because none was configured.</summary>
    public bool ApiKeyGenerated { get; init; }

    /// <summary>CORS_ORIGIN: allowed origins; a single "*" means any.</summary>
    public IReadOnlyList<string> CorsOrigins { get; init; } = ["*"];

    /// <summary>DATABASE_PATH: the SQLite connection string derived from the path (or given as is).</summary>
    public string DatabaseConnectionString { get; init; } = "";

    /// <summary>The database file path when one is known (null for a raw connection string).</summary>
    public string? DatabaseFile { get; init; }

    /// <summary>LOG_LEVEL: Serilog minimum level.</summary>
    public LogEventLevel LogLevel { get; init; } = LogEventLevel.Information;

    /// <summary>LOG_QUEUE_SIZE: log events waiting for the console at most; past it they are dropped (and counted).</summary>
    public int LogQueueSize { get; init; } = 10_000;

    /// <summary>INBOUND_WEBHOOK_URL: where client-emitted events are relayed; null when unset.</summary>
    public Uri? InboundWebhookUrl { get; init; }

    /// <summary>WEBSOCKET_MAX_CONNECTIONS: concurrent Socket.IO + plain WebSocket connections.</summary>
    public int MaxConnections { get; init; } = 100_000;

    /// <summary>WEBSOCKET_MAX_PENDING: Socket.IO connections that have joined no namespace yet; past it the oldest is closed.</summary>
    public int MaxPendingConnections { get; init; } = 1000;

    /// <summary>WEBSOCKET_CONNECT_TIMEOUT_MS: how long a Socket.IO connection may stay without joining a namespace.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>WEBSOCKET_MAX_PAYLOAD: largest message a client may send, in bytes.</summary>
    public int MaxPayload { get; init; } = 1_000_000;

    /// <summary>WEBSOCKET_CONNECT_RATE: attempts per minute per remote address; 0 = off.</summary>
    public int ConnectRatePerMinute { get; init; }

    /// <summary>WEBHOOK_MAX_BODY: largest ingestion body in bytes.</summary>
    public long WebhookMaxBody { get; init; } = 10_485_760;

    /// <summary>TRUSTED_PROXIES: proxies whose X-Forwarded-For / X-Forwarded-Proto are believed.</summary>
    public IReadOnlyList<IPNetwork> TrustedProxies { get; init; } = [];

    /// <summary>
    /// WEBSOCKET_ALLOWED_HOSTS: client addresses (after TRUSTED_PROXIES) that may open an instance's events
    /// without a key; empty (the default) = nobody. Never the main namespace <c>/</c>, never REST.
    /// </summary>
    public IReadOnlyList<IPNetwork> AllowedHosts { get; init; } = [];

    /// <summary>
    /// WEBSOCKET_SEND_QUEUE: outbound messages buffered per connection (plain WebSocket, and Socket.IO's
    /// Engine.IO queue) before <see cref="OverflowPolicy"/> applies.
    /// </summary>
    public int SendQueueLimit { get; init; } = 4096;

    /// <summary>
    /// WEBSOCKET_OVERFLOW_POLICY: what a full Socket.IO send queue does, <c>disconnect</c> (default: the slow
    /// client is closed, reason <c>slow consumer</c>) or <c>drop-newest</c> (the message that did not fit is dropped).
    /// </summary>
    public Evolution.Events.EngineIO.OverflowPolicy OverflowPolicy { get; init; } = Evolution.Events.EngineIO.OverflowPolicy.Disconnect;

    /// <summary>WEBSOCKET_PING_INTERVAL_MS: Engine.IO's <c>pingInterval</c> (default 25 s).</summary>
    public TimeSpan PingInterval { get; init; } = TimeSpan.FromSeconds(25);

    /// <summary>WEBSOCKET_PING_TIMEOUT_MS: Engine.IO's <c>pingTimeout</c> (default 20 s).</summary>
    public TimeSpan PingTimeout { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>
    /// WEBSOCKET_PER_MESSAGE_DEFLATE (default false) and WEBSOCKET_PER_MESSAGE_DEFLATE_THRESHOLD (default 1024 bytes):
    /// WebSocket <c>permessage-deflate</c> for Socket.IO and the plain WebSocket, as socket.io's <c>perMessageDeflate</c>;
    /// null when off.
    /// </summary>
    public Evolution.Events.EngineIO.PerMessageDeflateOptions? PerMessageDeflate { get; init; }

    /// <summary>WEBSOCKET_ALLOW_EIO3: also serve Socket.IO 2.x clients (Engine.IO 3), as socket.io's <c>allowEIO3</c> (default false).</summary>
    public bool AllowEio3 { get; init; }

    /// <summary>WEBSOCKET_HTTP_COMPRESSION: gzip/deflate of Socket.IO polling responses, as engine.io's <c>httpCompression</c> (default true).</summary>
    public bool HttpCompression { get; init; } = true;

    /// <summary>WEBSOCKET_HTTP_COMPRESSION_THRESHOLD: smallest polling response compressed, in bytes (default 1024, as engine.io).</summary>
    public int HttpCompressionThreshold { get; init; } = 1024;

    /// <summary>WEBSOCKET_TRANSPORTS: the Socket.IO transports served (default both: polling and websocket).</summary>
    public IReadOnlySet<string> Transports { get; init; } = new HashSet<string> { "polling", "websocket" };

    /// <summary>
    /// WEBSOCKET_RECOVERY_SECONDS: Socket.IO connection state recovery window (socket.io's
    /// <c>maxDisconnectionDuration</c>); 0 turns recovery off.
    /// </summary>
    public int RecoverySeconds { get; init; } = 120;

    /// <summary>WEBSOCKET_PARSER: the Socket.IO packet encoding (socket.io's <c>parser</c> option).</summary>
    public SocketIOParserMode Parser { get; init; } = SocketIOParserMode.Default;

    /// <summary>
    /// WEBSOCKET_SEND_QUEUE_BYTES: outbound bytes buffered per Socket.IO connection (Engine.IO's queue bound);
    /// also bounds the largest event, see <see cref="MaxEnvelopeBytes"/>.
    /// </summary>
    public long SendQueueBytes { get; init; } = 8L * 1024 * 1024;

    /// <summary>Room left in a connection's queue for the framing around an envelope (<c>42/{instance},["{event}",…]</c>).</summary>
    public const int PacketFramingBytes = 1024;

    /// <summary>
    /// The largest envelope ingestion accepts: one that fits a Socket.IO connection's send queue with its
    /// framing. A larger one could never be queued, and would drop every subscriber as a slow consumer.
    /// </summary>
    public long MaxEnvelopeBytes => WebSocketEnabled ? SendQueueBytes - PacketFramingBytes : long.MaxValue;

    /// <summary>INBOUND_WEBHOOK_MAX_IN_FLIGHT: relays to INBOUND_WEBHOOK_URL in flight at once, all clients together.</summary>
    public int InboundWebhookMaxInFlight { get; init; } = 256;

    /// <summary>INBOUND_WEBHOOK_MAX_IN_FLIGHT_BYTES: bytes of relayed payloads in flight at once, all clients together.</summary>
    public long InboundWebhookMaxInFlightBytes { get; init; } = 16L * 1024 * 1024;

    /// <summary>INBOUND_WEBHOOK_TIMEOUT_MS: how long the relay waits for the upstream.</summary>
    public TimeSpan InboundWebhookTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>METRICS_PUBLIC: serve <c>/metrics</c> without a key (it names instances).</summary>
    public bool MetricsPublic { get; init; }

    /// <summary>METRICS_API_KEY: a key that may only read <c>/metrics</c> (for a scrape config); null when unset. Never log it.</summary>
    public string? MetricsApiKey { get; init; }

    /// <summary>
    /// WEBSOCKET_REPLAY_LAST_STATE: a subscriber scoped to an instance gets its last <c>connection.update</c>
    /// and <c>qrcode.updated</c> when it joins, before any live event.
    /// </summary>
    public bool WebSocketReplayLastState { get; init; } = true;

    /// <summary>
    /// SERVER_INLINE_IO: run socket continuations on Kestrel's I/O threads instead of dispatching them to
    /// the thread pool (Kestrel's UnsafePreferInlineScheduling). Halves the fan-out's CPU per message
    /// (docs/performance.md); everything the gateway runs on those threads is non-blocking.
    /// </summary>
    public bool InlineIo { get; init; } = true;

    /// <summary>
    /// WEBSOCKET_RAW_UPGRADE: WebSocket upgrades of <c>/socket.io/</c>, <c>/ws/events</c> and <c>/</c> served on the raw
    /// Kestrel connection (the request runs through the same pipeline, then only the socket's own state stays alive:
    /// about half the memory per idle socket); false: through Kestrel's HTTP/1.1 upgrade.
    /// </summary>
    public bool RawUpgrade { get; init; } = true;

    /// <summary>
    /// REDIS_URI: when set, instances, tokens and websocket settings live in Redis, shared by every node
    /// (docs/scale-out.md); null keeps them in SQLite (DATABASE_PATH).
    /// </summary>
    public RedisSettings? Redis { get; init; }

    /// <summary>REDIS_KEY_PREFIX: the prefix of every Redis key and channel the gateway uses.</summary>
    public string RedisKeyPrefix { get; init; } = "evolution-events:";

    /// <summary>
    /// REDIS_ADAPTER (with REDIS_URI): <see cref="RedisAdapterMode.Streams"/> (default) carries the event bus on a Redis
    /// stream, <see cref="RedisAdapterMode.PubSub"/> on a pub/sub channel; both use the Socket.IO Redis adapter for
    /// cluster operations and keep recovery sessions in Redis (docs/scale-out.md).
    /// </summary>
    public RedisAdapterMode RedisAdapter { get; init; } = RedisAdapterMode.Streams;

    /// <summary>REDIS_STREAM_MAXLEN: the approximate bound (batches) of the event stream (streams mode).</summary>
    public int RedisStreamMaxLength { get; init; } = 100_000;

    /// <summary>NODE_ID: this node's name in the cluster view (default <c>{host name}:{SERVER_PORT}</c>).</summary>
    public string? NodeId { get; init; }

    /// <summary>NODE_HEARTBEAT_MS: how often a node advertises itself in Redis (it disappears after 3 missed beats).</summary>
    public TimeSpan NodeHeartbeat { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>REDIS_RELOAD_INTERVAL_MS: how often a node re-reads the whole registry from Redis.</summary>
    public TimeSpan RedisReloadInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>RABBITMQ_URI and its companions: when set, the gateway also consumes Evolution API's RabbitMQ events.</summary>
    public RabbitMQSettings? RabbitMQ { get; init; }
}

/// <summary>WEBSOCKET_PARSER: how Socket.IO packets are encoded; every client must use the same.</summary>
public enum SocketIOParserMode
{
    /// <summary>socket.io-parser (JSON text plus binary attachments), what clients use unless told otherwise.</summary>
    Default,

    /// <summary>socket.io-msgpack-parser 3.x: one MessagePack binary message per packet.</summary>
    MsgPack,
}

/// <summary>REDIS_ADAPTER: how the nodes share events (docs/scale-out.md).</summary>
public enum RedisAdapterMode
{
    /// <summary>The event bus is a Redis stream (XADD, each node XREADs from where it was).</summary>
    Streams,

    /// <summary>The event bus is a Redis pub/sub channel (at most once; a disconnected node misses what was published meanwhile).</summary>
    PubSub,
}

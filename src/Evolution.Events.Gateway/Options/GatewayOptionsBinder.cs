using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using Microsoft.Data.Sqlite;
using Serilog.Events;

namespace Evolution.Events.Gateway.Options;

/// <summary>
/// Reads every variable of the contract's configuration table from <see cref="IConfiguration"/>
/// (environment variables and appsettings.json keys of the same names) and validates it.
/// An invalid value throws <see cref="GatewayConfigurationException"/> with one line naming the variable.
/// </summary>
public static class GatewayOptionsBinder
{
    public const string InlineIoVariable = "SERVER_INLINE_IO";

    public static GatewayOptions Bind(IConfiguration config)
    {
        var port = ReadInt(config, "SERVER_PORT", 8080, 1, 65535);
        var apiKey = Read(config, "AUTHENTICATION_API_KEY");
        var (connectionString, file) = ReadDatabase(config);
        var options = new GatewayOptions
        {
            Port = port,
            Host = ReadHost(config),
            ServerUrl = ReadServerUrl(config, port),
            WebSocketEnabled = ReadBool(config, "WEBSOCKET_ENABLED", true),
            WebSocketGlobalEvents = ReadBool(config, "WEBSOCKET_GLOBAL_EVENTS", false),
            AdminUIEnabled = ReadBool(config, "ADMIN_UI_ENABLED", false),
            AdminUIMode = ReadAdminUIMode(config),
            AdminUIReadOnly = ReadBool(config, "ADMIN_UI_READONLY", false),
            WebSocketReplayLastState = ReadBool(config, "WEBSOCKET_REPLAY_LAST_STATE", true),
            AllowEio3 = ReadBool(config, "WEBSOCKET_ALLOW_EIO3", false),
            HttpCompression = ReadBool(config, "WEBSOCKET_HTTP_COMPRESSION", true),
            HttpCompressionThreshold = ReadInt(config, "WEBSOCKET_HTTP_COMPRESSION_THRESHOLD", 1024, 0, int.MaxValue),
            PerMessageDeflate = ReadPerMessageDeflate(config),
            ApiKey = apiKey ?? GenerateKey(),
            ApiKeyGenerated = apiKey is null,
            CorsOrigins = ReadCors(config),
            DatabaseConnectionString = connectionString,
            DatabaseFile = file,
            LogLevel = ReadLogLevel(config),
            LogQueueSize = ReadInt(config, "LOG_QUEUE_SIZE", 10_000, 1, 1_000_000),
            InboundWebhookUrl = ReadUrl(config, "INBOUND_WEBHOOK_URL"),
            MaxConnections = ReadInt(config, "WEBSOCKET_MAX_CONNECTIONS", 100_000, 1, int.MaxValue),
            MaxPayload = ReadInt(config, "WEBSOCKET_MAX_PAYLOAD", 1_000_000, 1, int.MaxValue),
            MaxPendingConnections = ReadInt(config, "WEBSOCKET_MAX_PENDING", 1000, 1, int.MaxValue),
            ConnectTimeout = TimeSpan.FromMilliseconds(ReadInt(config, "WEBSOCKET_CONNECT_TIMEOUT_MS", 5000, 100, 600_000)),
            ConnectRatePerMinute = ReadInt(config, "WEBSOCKET_CONNECT_RATE", 0, 0, int.MaxValue),
            WebhookMaxBody = ReadInt(config, "WEBHOOK_MAX_BODY", 10_485_760, 1, int.MaxValue),
            TrustedProxies = ReadNetworks(config, "TRUSTED_PROXIES"),
            AllowedHosts = ReadNetworks(config, "WEBSOCKET_ALLOWED_HOSTS"),
            SendQueueLimit = ReadInt(config, "WEBSOCKET_SEND_QUEUE", 4096, 1, 1_000_000),
            OverflowPolicy = ReadOverflowPolicy(config),
            PingInterval = TimeSpan.FromMilliseconds(ReadInt(config, "WEBSOCKET_PING_INTERVAL_MS", 25_000, 100, 3_600_000)),
            PingTimeout = TimeSpan.FromMilliseconds(ReadInt(config, "WEBSOCKET_PING_TIMEOUT_MS", 20_000, 100, 3_600_000)),
            Transports = ReadTransports(config),
            RecoverySeconds = ReadInt(config, "WEBSOCKET_RECOVERY_SECONDS", 120, 0, 86_400),
            Parser = ReadParser(config),
            SendQueueBytes = ReadInt(config, "WEBSOCKET_SEND_QUEUE_BYTES", 8 * 1024 * 1024, 64 * 1024, int.MaxValue),
            InlineIo = ReadBool(config, InlineIoVariable, true),
            RawUpgrade = ReadBool(config, "WEBSOCKET_RAW_UPGRADE", true),
            MetricsPublic = ReadBool(config, "METRICS_PUBLIC", false),
            MetricsApiKey = Read(config, "METRICS_API_KEY"),
            InboundWebhookMaxInFlight = ReadInt(config, "INBOUND_WEBHOOK_MAX_IN_FLIGHT", 256, 1, 100_000),
            InboundWebhookMaxInFlightBytes = ReadInt(config, "INBOUND_WEBHOOK_MAX_IN_FLIGHT_BYTES", 16 * 1024 * 1024, 1024, int.MaxValue),
            InboundWebhookTimeout = TimeSpan.FromMilliseconds(
                ReadInt(config, "INBOUND_WEBHOOK_TIMEOUT_MS", 10_000, 1, 600_000)),
            Redis = ReadRedis(config),
            RedisKeyPrefix = ReadKeyPrefix(config),
            RedisReloadInterval = TimeSpan.FromMilliseconds(
                ReadInt(config, "REDIS_RELOAD_INTERVAL_MS", 30_000, 100, 3_600_000)),
            RedisAdapter = ReadAdapter(config),
            RedisStreamMaxLength = ReadInt(config, "REDIS_STREAM_MAXLEN", 100_000, 100, 100_000_000),
            NodeId = ReadNodeId(config),
            NodeHeartbeat = TimeSpan.FromMilliseconds(ReadInt(config, "NODE_HEARTBEAT_MS", 2000, 100, 60_000)),
            RabbitMQ = RabbitMQSettings.Read(config),
        };
        if (options.AdminUIEnabled && !options.WebSocketEnabled)
            throw Invalid("ADMIN_UI_ENABLED", "needs WEBSOCKET_ENABLED=true (the Admin UI is a Socket.IO client)", "true");
        return options;
    }

    private static Evolution.Events.SocketIO.AdminUI.AdminUIMode ReadAdminUIMode(IConfiguration config) =>
        Read(config, "ADMIN_UI_MODE")?.ToLowerInvariant() switch
        {
            null or "development" => Evolution.Events.SocketIO.AdminUI.AdminUIMode.Development,
            "production" => Evolution.Events.SocketIO.AdminUI.AdminUIMode.Production,
            _ => throw Invalid("ADMIN_UI_MODE", "must be development or production", Read(config, "ADMIN_UI_MODE")),
        };

    private static EngineIO.OverflowPolicy ReadOverflowPolicy(IConfiguration config) =>
        Read(config, "WEBSOCKET_OVERFLOW_POLICY")?.ToLowerInvariant() switch
        {
            null or "disconnect" => EngineIO.OverflowPolicy.Disconnect,
            "drop-newest" => EngineIO.OverflowPolicy.DropNewest,
            _ => throw Invalid("WEBSOCKET_OVERFLOW_POLICY", "must be disconnect or drop-newest", Read(config, "WEBSOCKET_OVERFLOW_POLICY")),
        };

    private static HashSet<string> ReadTransports(IConfiguration config)
    {
        var raw = Read(config, "WEBSOCKET_TRANSPORTS");
        if (raw is null)
        {
            return ["polling", "websocket"];
        }

        var transports = raw.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(t => t.ToLowerInvariant()).ToHashSet();
        if (transports.Count == 0 || transports.Any(t => t is not ("polling" or "websocket")))
        {
            throw Invalid("WEBSOCKET_TRANSPORTS", "must be polling, websocket or both, comma-separated", raw);
        }

        return transports;
    }

    private static string? Read(IConfiguration config, string name)
    {
        var value = config[name];
        return string.IsNullOrWhiteSpace(value) ? null : value.Trim();
    }

    private static GatewayConfigurationException Invalid(string name, string rule, string? got) =>
        new($"Invalid configuration: {name} {rule} (got \"{got}\")");

    private static int ReadInt(IConfiguration config, string name, int fallback, int min, int max)
    {
        var raw = Read(config, name);
        if (raw is null)
            return fallback;
        if (int.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out var value)
            && value >= min && value <= max)
            return value;
        var range = max == int.MaxValue ? $"{min} or more" : $"{min}-{max}";
        throw Invalid(name, $"must be an integer {range}", raw);
    }

    private static bool ReadBool(IConfiguration config, string name, bool fallback)
    {
        var raw = Read(config, name);
        return raw?.ToLowerInvariant() switch
        {
            null => fallback,
            "true" or "1" or "yes" or "on" => true,
            "false" or "0" or "no" or "off" => false,
            _ => throw Invalid(name, "must be true or false", raw),
        };
    }

    private static string ReadServerUrl(IConfiguration config, int port)
    {
        var raw = Read(config, "SERVER_URL");
        if (raw is null)
            return $"http://localhost:{port}";
        return ReadUrl(config, "SERVER_URL")!.OriginalString.TrimEnd('/');
    }

    private static Uri? ReadUrl(IConfiguration config, string name)
    {
        var raw = Read(config, name);
        if (raw is null)
            return null;
        if (Uri.TryCreate(raw, UriKind.Absolute, out var uri)
            && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps))
            return uri;
        throw Invalid(name, "must be an absolute http:// or https:// URL", raw);
    }

    private static LogEventLevel ReadLogLevel(IConfiguration config)
    {
        var raw = Read(config, "LOG_LEVEL");
        return raw?.ToLowerInvariant() switch
        {
            null => LogEventLevel.Information,
            "verbose" or "trace" => LogEventLevel.Verbose,
            "debug" => LogEventLevel.Debug,
            "information" or "info" => LogEventLevel.Information,
            "warning" or "warn" => LogEventLevel.Warning,
            "error" => LogEventLevel.Error,
            "fatal" or "critical" => LogEventLevel.Fatal,
            _ => throw Invalid("LOG_LEVEL",
                "must be one of Verbose, Debug, Information, Warning, Error, Fatal", raw),
        };
    }

    private static List<string> ReadCors(IConfiguration config)
    {
        var raw = Read(config, "CORS_ORIGIN") ?? "*";
        var origins = raw.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (origins.Contains("*"))
            return ["*"];
        foreach (var origin in origins)
        {
            if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.AbsolutePath != "/"
                || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
                throw Invalid("CORS_ORIGIN", "must be * or a comma-separated list of http(s) origins", origin);
        }
        return [.. origins.Select(o => o.TrimEnd('/'))];
    }

    private static (string ConnectionString, string? File) ReadDatabase(IConfiguration config)
    {
        var raw = Read(config, "DATABASE_PATH") ?? Path.Combine(".", "data", "gateway.db");
        if (raw.Contains('='))
        {
            try
            {
                var builder = new SqliteConnectionStringBuilder(raw);
                return (builder.ConnectionString, builder.DataSource);
            }
            catch (ArgumentException)
            {
                throw Invalid("DATABASE_PATH", "must be a file path or a SQLite connection string", raw);
            }
        }
        if (raw.IndexOfAny(Path.GetInvalidPathChars()) >= 0)
            throw Invalid("DATABASE_PATH", "must be a file path or a SQLite connection string", raw);
        var full = Path.GetFullPath(raw);
        var cs = new SqliteConnectionStringBuilder { DataSource = full, Pooling = true };
        return (cs.ConnectionString, full);
    }

    private static RedisSettings? ReadRedis(IConfiguration config)
    {
        var raw = Read(config, "REDIS_URI");
        if (raw is null)
            return null;
        // The password never reaches the message: the user-info part is masked.
        return RedisSettings.TryParse(raw) ?? throw Invalid("REDIS_URI", RedisSettings.Rule, RedisSettings.Redact(raw));
    }

    private static SocketIOParserMode ReadParser(IConfiguration config) => Read(config, "WEBSOCKET_PARSER")?.ToLowerInvariant() switch
    {
        null or "default" => SocketIOParserMode.Default,
        "msgpack" => SocketIOParserMode.MsgPack,
        var other => throw Invalid("WEBSOCKET_PARSER", "must be default or msgpack", other),
    };

    private static RedisAdapterMode ReadAdapter(IConfiguration config) => Read(config, "REDIS_ADAPTER")?.ToLowerInvariant() switch
    {
        null or "streams" => RedisAdapterMode.Streams,
        "pubsub" => RedisAdapterMode.PubSub,
        var other => throw Invalid("REDIS_ADAPTER", "must be streams or pubsub", other),
    };

    private static string? ReadNodeId(IConfiguration config)
    {
        var raw = Read(config, "NODE_ID");
        if (raw is null || (raw.Length <= 128 && raw.All(c => c > ' ' && c < '\u007f')))
            return raw;
        throw Invalid("NODE_ID", "must be 1-128 printable ASCII characters without spaces", raw);
    }

    private static string ReadKeyPrefix(IConfiguration config)
    {
        var raw = Read(config, "REDIS_KEY_PREFIX");
        if (raw is null)
            return "evolution-events:";
        if (raw.Length <= 64 && raw.All(c => c > ' ' && c < '\u007f'))
            return raw;
        throw Invalid("REDIS_KEY_PREFIX", "must be 1-64 printable ASCII characters without spaces", raw);
    }

    private static string ReadHost(IConfiguration config)
    {
        var raw = Read(config, "SERVER_HOST");
        if (raw is null or "+" or "*" or "0.0.0.0")
            return raw is null or "*" ? "+" : raw;
        if (IPAddress.TryParse(raw.Trim('[', ']'), out var address))
            return address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();
        if (string.Equals(raw, "localhost", StringComparison.OrdinalIgnoreCase))
            return "localhost";
        throw Invalid("SERVER_HOST", "must be an IP address of this host, localhost, or + (all interfaces)", raw);
    }

    private static List<IPNetwork> ReadNetworks(IConfiguration config, string name)
    {
        var raw = Read(config, name);
        if (raw is null)
            return [];
        var result = new List<IPNetwork>();
        foreach (var item in raw.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (string.Equals(item, "localhost", StringComparison.OrdinalIgnoreCase))
            {
                result.Add(new IPNetwork(IPAddress.Loopback, 8));
                result.Add(new IPNetwork(IPAddress.IPv6Loopback, 128));
            }
            else if (IPNetwork.TryParse(item, out var network))
                result.Add(network);
            else if (IPAddress.TryParse(item, out var address))
                result.Add(new IPNetwork(address, address.GetAddressBytes().Length * 8));
            else
                throw Invalid(name, "must be a comma-separated list of IP addresses, CIDR ranges or localhost", item);
        }
        return result;
    }

    private static Evolution.Events.EngineIO.PerMessageDeflateOptions? ReadPerMessageDeflate(IConfiguration config)
    {
        var threshold = ReadInt(config, "WEBSOCKET_PER_MESSAGE_DEFLATE_THRESHOLD", 1024, 0, int.MaxValue);
        return ReadBool(config, "WEBSOCKET_PER_MESSAGE_DEFLATE", false)
            ? new Evolution.Events.EngineIO.PerMessageDeflateOptions { Threshold = threshold }
            : null;
    }

    private static string GenerateKey() =>
        Convert.ToHexString(RandomNumberGenerator.GetBytes(24)).ToLowerInvariant();
}

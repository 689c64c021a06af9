using System.Globalization;
using Evolution.Events.Gateway.Events;
using Evolution.Events.Gateway.Instances;

namespace Evolution.Events.Gateway.Options;

/// <summary>
/// The RABBITMQ_* variables: where the gateway consumes the events Evolution API publishes to RabbitMQ.
/// <see cref="Uri"/> holds the password: log <see cref="Display"/>, never the URI as given.
/// </summary>
public sealed class RabbitMQSettings
{
    public const string UriRule = "must be amqp://[user:password@]host[:port][/vhost] or amqps://… (TLS)";

    /// <summary>RABBITMQ_URI, as given (it may hold a password: never log it).</summary>
    public required Uri Uri { get; init; }

    /// <summary>The URI with the password masked, for logs, errors and health output.</summary>
    public string Display => Mask(Uri);

    /// <summary>RABBITMQ_EXCHANGE_NAME: the durable topic exchange Evolution API publishes to (routing key = event name).</summary>
    public string Exchange { get; init; } = "evolution_exchange";

    /// <summary>RABBITMQ_QUEUE: the gateway's durable queue; rejected messages go to <see cref="DeadLetterQueue"/>.</summary>
    public string Queue { get; init; } = "evolution-events";

    /// <summary><c>&lt;queue&gt;.dead</c>.</summary>
    public string DeadLetterQueue => Queue + ".dead";

    /// <summary>RABBITMQ_BINDING_KEYS: the topic patterns the queue is bound with (event names normalized to the dotted form).</summary>
    public IReadOnlyList<string> BindingKeys { get; init; } = ["#"];

    /// <summary>RABBITMQ_INSTANCE_EXCHANGES: per-instance exchanges (Evolution's per-instance mode) also bound to the queue.</summary>
    public IReadOnlyList<string> InstanceExchanges { get; init; } = [];

    /// <summary>RABBITMQ_PREFETCH: unacknowledged messages the broker may push to the gateway at once.</summary>
    public ushort Prefetch { get; init; } = 50;

    /// <summary>RABBITMQ_QUEUE_TYPE: <c>quorum</c> (default: every message persisted, even Evolution's transient ones) or <c>classic</c>.</summary>
    public string QueueType { get; init; } = "quorum";

    /// <summary>RABBITMQ_DELIVERY_LIMIT (quorum only): deliveries of one message before the broker dead-letters it; 0 = no limit.</summary>
    public int DeliveryLimit { get; init; } = 20;

    /// <summary>Reads the RABBITMQ_* variables; null when RABBITMQ_URI is not set.</summary>
    public static RabbitMQSettings? Read(IConfiguration config)
    {
        var raw = Value(config, "RABBITMQ_URI");
        if (raw is null)
            return null;
        if (!System.Uri.TryCreate(raw, UriKind.Absolute, out var uri) || uri.Scheme is not ("amqp" or "amqps")
            || string.IsNullOrEmpty(uri.Host))
            throw Invalid("RABBITMQ_URI", UriRule, Redact(raw));
        var exchange = Name(config, "RABBITMQ_EXCHANGE_NAME", "evolution_exchange");
        var queue = Name(config, "RABBITMQ_QUEUE", "evolution-events");
        var prefetch = Int(config, "RABBITMQ_PREFETCH", 50, 1, ushort.MaxValue);
        var queueType = (Value(config, "RABBITMQ_QUEUE_TYPE") ?? "quorum").ToLowerInvariant();
        if (queueType is not ("quorum" or "classic"))
            throw Invalid("RABBITMQ_QUEUE_TYPE", "must be quorum or classic", queueType);
        return new RabbitMQSettings
        {
            Uri = uri,
            Exchange = exchange,
            Queue = queue,
            BindingKeys = BindingKeysOf(Value(config, "RABBITMQ_BINDING_KEYS")),
            InstanceExchanges = InstancesOf(Value(config, "RABBITMQ_INSTANCE_EXCHANGES")),
            Prefetch = (ushort)prefetch,
            QueueType = queueType,
            DeliveryLimit = Int(config, "RABBITMQ_DELIVERY_LIMIT", 20, 0, 1_000_000),
        };
    }

    /// <summary>
    /// Topic patterns: an event name in any of its forms (<c>MESSAGES_UPSERT</c>, <c>messages-upsert</c>) becomes the
    /// dotted routing key Evolution API uses; a pattern with <c>*</c> or <c>#</c> is kept as it is.
    /// </summary>
    private static List<string> BindingKeysOf(string? raw)
    {
        if (raw is null)
            return ["#"];
        var keys = new List<string>();
        foreach (var key in raw.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (EventNames.TryParse(key, out var name))
                keys.Add(name.Dotted);
            else if (key.Contains('*', StringComparison.Ordinal) || key.Contains('#', StringComparison.Ordinal))
                keys.Add(key);
            else
                throw Invalid("RABBITMQ_BINDING_KEYS", "must be a comma-separated list of event names or topic patterns (*, #)", key);
        }
        return keys.Count == 0 ? ["#"] : [.. keys.Distinct(StringComparer.Ordinal)];
    }

    private static List<string> InstancesOf(string? raw)
    {
        if (raw is null)
            return [];
        var names = raw.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var name in names)
        {
            if (!InstanceNames.IsValid(name))
                throw Invalid("RABBITMQ_INSTANCE_EXCHANGES", $"must be a comma-separated list of instance names ({InstanceNames.Rule})", name);
        }
        return [.. names.Distinct(StringComparer.Ordinal)];
    }

    private static string Name(IConfiguration config, string variable, string fallback)
    {
        var value = Value(config, variable) ?? fallback;
        // AMQP short strings: at most 255 bytes; names starting with amq. are reserved by the broker.
        if (value.Length > 200 || value.StartsWith("amq.", StringComparison.Ordinal) || value.Any(char.IsControl))
            throw Invalid(variable, "must be at most 200 characters, not start with amq., no control characters", value);
        return value;
    }

    private static int Int(IConfiguration config, string name, int fallback, int min, int max)
    {
        var raw = Value(config, name);
        if (raw is null)
            return fallback;
        if (int.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max)
            return value;
        throw Invalid(name, $"must be an integer {min}-{max}", raw);
    }

    private static string? Value(IConfiguration config, string name) =>
        string.IsNullOrWhiteSpace(config[name]) ? null : config[name]!.Trim();

    private static GatewayConfigurationException Invalid(string name, string rule, string? got) =>
        new($"Invalid configuration: {name} {rule} (got \"{got}\")");

    /// <summary><c>amqp://user:***@host:port/vhost</c>.</summary>
    public static string Mask(Uri uri)
    {
        var user = uri.UserInfo.Length == 0 ? "" : uri.UserInfo.Split(':')[0] + (uri.UserInfo.Contains(':', StringComparison.Ordinal) ? ":***" : "") + "@";
        var port = uri.IsDefaultPort || uri.Port < 0 ? (uri.Scheme == "amqps" ? 5671 : 5672) : uri.Port;
        return $"{uri.Scheme}://{user}{uri.Host}:{port}{uri.AbsolutePath}";
    }

    /// <summary>The value with any user-info part masked, for an error message.</summary>
    public static string Redact(string raw) => RedisSettings.Redact(raw);
}

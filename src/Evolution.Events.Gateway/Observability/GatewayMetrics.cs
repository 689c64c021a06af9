using System.Diagnostics;
using Evolution.Events.EngineIO.Hosting;
using Evolution.Events.Gateway.Events;
using Evolution.Events.SocketIO.Adapters;
using Prometheus;

namespace Evolution.Events.Gateway.Observability;

/// <summary>
/// The gateway's Prometheus metrics, in a registry of their own (one per app, so that several gateways in
/// one process, as in the tests, do not share counters). Counters are bumped on the paths that do the work;
/// connection gauges are read from the servers when <c>/metrics</c> is scraped (<see cref="ConnectionGauges"/>).
/// Every label has a bounded set of values: event names come from the closed catalog, refusal reasons are
/// mapped to a closed set, namespaces are capped (see <see cref="ConnectionGauges"/>).
/// </summary>
public sealed class GatewayMetrics
{
    public const string SocketIOTransport = "socketio";
    public const string PlainWebSocketTransport = "websocket";
    public const string HttpTransport = "http";

    private static readonly HashSet<string> KnownRefusals = new(StringComparer.Ordinal)
    {
        "Invalid API key", "Forbidden namespace", "Invalid namespace", "Internal server error",
    };

    private readonly Counter _ingested;
    private readonly Counter _delivered;
    private readonly Histogram _latency;
    private readonly Counter _refusals;
    private readonly Counter _slowConsumers;
    private readonly Counter _recoveries;
    private readonly Counter _logDropped;
    private readonly Gauge _redisUp;
    private readonly Counter _redisOutages;
    private readonly Counter _localOnly;
    private readonly Counter _busMissed;
    private readonly Gauge _rabbitUp;
    private readonly Counter _rabbitConsumed;
    private readonly Counter _rabbitRedelivered;
    private readonly Counter _rabbitDeadLettered;

    public GatewayMetrics()
    {
        Registry = Metrics.NewCustomRegistry();
        DotNetStats.Register(Registry);
        var factory = Metrics.WithCustomRegistry(Registry);
        _ingested = factory.CreateCounter("evolution_events_ingested_total",
            "Events accepted by ingestion (POST /webhook, or RabbitMQ with RABBITMQ_URI), per emitted event name.", "event");
        _delivered = factory.CreateCounter("evolution_events_delivered_total",
            "Event copies handed to subscribers (one per socket or plain WebSocket), per transport and event name.",
            "transport", "event");
        _latency = factory.CreateHistogram("evolution_ingest_to_emit_seconds",
            "Time from ingestion to the moment a sink enqueued the event for its subscribers, per transport.",
            new HistogramConfiguration
            {
                LabelNames = ["transport"],
                Buckets = Histogram.ExponentialBuckets(0.0001, 2, 16), // 0.1 ms … 3.3 s
            });
        _refusals = factory.CreateCounter("evolution_refusals_total",
            "Refused connections and requests: transport=socketio with the CONNECT_ERROR message, "
            + "transport=http with the status code (401, 403, 429, 503).", "transport", "reason");
        _slowConsumers = factory.CreateCounter("evolution_slow_consumers_dropped_total",
            "Connections dropped because their bounded outbound queue overflowed, per transport.", "transport");
        _recoveries = factory.CreateCounter("evolution_socketio_recoveries_total",
            "Socket.IO connection state recovery attempts (a reconnection with pid, and offset once a broadcast was received), per outcome: "
            + "recovered, too_late (session expired or missed packets no longer kept), unknown_session, refused (by auth).",
            "outcome");
        foreach (var outcome in Enum.GetValues<RecoveryOutcome>())
            _recoveries.WithLabels(OutcomeLabel(outcome));
        _logDropped = factory.CreateCounter("evolution_log_events_dropped_total",
            "Log events dropped because the console writer's bounded queue was full (stdout slow or stalled).");
        // Published only with REDIS_URI set (no series on a SQLite node).
        _redisUp = factory.CreateGauge("evolution_redis_up",
            "Whether the Redis holding the shared instance registry answers: 1 yes, 0 unreachable (REDIS_URI set only).",
            new GaugeConfiguration { SuppressInitialValue = true });
        _redisOutages = factory.CreateCounter("evolution_redis_outages_total",
            "Times Redis became unreachable (REDIS_URI set only).", new CounterConfiguration { SuppressInitialValue = true });
        _localOnly = factory.CreateCounter("evolution_events_local_only_total",
            "Events delivered to this node's clients only, because the Redis event bus could not be reached when "
            + "they were ingested: other nodes' clients never get them (REDIS_URI set only).",
            new CounterConfiguration { SuppressInitialValue = true });
        _busMissed = factory.CreateCounter("evolution_events_bus_missed_total",
            "Events of the cluster's sequence this node never received from the Redis event bus (pub/sub: published while "
            + "its subscription was down; streams: trimmed from the stream before this node read them) (REDIS_URI set only).",
            new CounterConfiguration { SuppressInitialValue = true });
        // Published only with RABBITMQ_URI set.
        _rabbitUp = factory.CreateGauge("evolution_rabbitmq_up",
            "Whether the gateway is connected to RabbitMQ and consuming its queue: 1 yes, 0 no (RABBITMQ_URI set only).",
            new GaugeConfiguration { SuppressInitialValue = true });
        _rabbitConsumed = factory.CreateCounter("evolution_rabbitmq_consumed_total",
            "Messages received from the RabbitMQ queue (RABBITMQ_URI set only), redeliveries included.",
            new CounterConfiguration { SuppressInitialValue = true });
        _rabbitRedelivered = factory.CreateCounter("evolution_rabbitmq_redelivered_total",
            "Messages the broker delivered again (flagged redelivered: a previous delivery was never acknowledged).",
            new CounterConfiguration { SuppressInitialValue = true });
        _rabbitDeadLettered = factory.CreateCounter("evolution_rabbitmq_dead_lettered_total",
            "Messages rejected and moved to the dead-letter queue <RABBITMQ_QUEUE>.dead, per reason: "
            + "malformed_json, invalid (unknown event, bad instance name, …), too_large.",
            new CounterConfiguration { SuppressInitialValue = true, LabelNames = ["reason"] });
        Gauges = new ConnectionGauges(factory);
        Registry.AddBeforeCollectCallback(Gauges.Update);
    }

    /// <summary>The registry <c>/metrics</c> serves.</summary>
    public CollectorRegistry Registry { get; }

    /// <summary>Connection gauges, refreshed at every scrape.</summary>
    public ConnectionGauges Gauges { get; }

    /// <summary>Events per second per instance, for the dashboard.</summary>
    public EventRateTracker Rates { get; } = new(TimeProvider.System);

    /// <summary>Counts a batch accepted by ingestion.</summary>
    public void Ingested(IEnumerable<GatewayEvent> events)
    {
        foreach (var e in events)
        {
            _ingested.WithLabels(e.EventName).Inc();
            Rates.Add(e.Instance);
        }
    }

    /// <summary>A sink enqueued <paramref name="copies"/> copies of an event; observes its latency once.</summary>
    public void Delivered(string transport, GatewayEvent e, int copies)
    {
        if (copies <= 0)
            return;
        _delivered.WithLabels(transport, e.EventName).Inc(copies);
        _latency.WithLabels(transport).Observe(Stopwatch.GetElapsedTime(e.IngestedTimestamp).TotalSeconds);
    }

    /// <summary>A Socket.IO CONNECT_ERROR; messages outside the gateway's own set count as "other".</summary>
    public void SocketIORefused(string message) =>
        _refusals.WithLabels(SocketIOTransport, KnownRefusals.Contains(message) ? message : "other").Inc();

    /// <summary>An HTTP refusal (401, 403, 429 or 503).</summary>
    public void HttpRefused(int status) => _refusals.WithLabels(HttpTransport, status.ToString()).Inc();

    public void SlowConsumerDropped(string transport) => _slowConsumers.WithLabels(transport).Inc();

    /// <summary>A Socket.IO connection state recovery attempt ended with <paramref name="outcome"/>.</summary>
    public void RecoveryAttempted(RecoveryOutcome outcome) => _recoveries.WithLabels(OutcomeLabel(outcome)).Inc();

    private static string OutcomeLabel(RecoveryOutcome outcome) => outcome switch
    {
        RecoveryOutcome.Recovered => "recovered",
        RecoveryOutcome.TooLate => "too_late",
        RecoveryOutcome.UnknownSession => "unknown_session",
        _ => "refused",
    };

    /// <summary>Reads the log's drop count at every scrape.</summary>
    public void Attach(GatewayLog log) => Registry.AddBeforeCollectCallback(() => _logDropped.IncTo(log.Dropped));

    /// <summary>
    /// Publishes what the raw-connection upgrade path took (<c>WEBSOCKET_RAW_UPGRADE=true</c> only), read at every scrape:
    /// its refusals and connections are counted with the HTTP path's own metrics (it runs the same pipeline); these say
    /// how many went that way.
    /// </summary>
    internal void Attach(RawUpgradeDispatcher raw)
    {
        var factory = Metrics.WithCustomRegistry(Registry);
        var requests = factory.CreateCounter("evolution_websocket_raw_requests_total",
            "WebSocket upgrade requests served on the raw connection (WEBSOCKET_RAW_UPGRADE=true), upgraded or refused; "
            + "every other request goes to Kestrel's HTTP pipeline.");
        var upgrades = factory.CreateCounter("evolution_websocket_raw_upgrades_total",
            "Connections upgraded to WebSocket on the raw connection (WEBSOCKET_RAW_UPGRADE=true), Socket.IO and plain WebSocket.");
        Registry.AddBeforeCollectCallback(() =>
        {
            requests.IncTo(raw.Requests);
            upgrades.IncTo(raw.Upgrades);
        });
    }

    /// <summary>Sets <c>evolution_redis_up</c> (and publishes the outage counter, at 0 until the first outage).</summary>
    public void RedisUp(bool up)
    {
        _redisUp.Set(up ? 1 : 0);
        _redisOutages.Publish();
    }

    /// <summary>Counts one Redis outage (a transition from reachable to unreachable).</summary>
    public void RedisOutage() => _redisOutages.Inc();

    /// <summary>Publishes <c>evolution_events_local_only_total</c> at 0 (a node with the Redis event bus).</summary>
    public void LocalOnlyPublished()
    {
        _localOnly.Publish();
        _busMissed.Publish();
    }

    /// <summary>Counts events of the cluster's sequence this node never received.</summary>
    public void BusMissed(long events) => _busMissed.Inc(events);

    /// <summary>Counts events delivered locally only because the Redis event bus was unreachable.</summary>
    public void LocalOnly(int events) => _localOnly.Inc(events);

    /// <summary>Sets <c>evolution_rabbitmq_up</c> and publishes the other RabbitMQ series at 0.</summary>
    public void RabbitMQUp(bool up)
    {
        _rabbitUp.Set(up ? 1 : 0);
        _rabbitConsumed.Publish();
        _rabbitRedelivered.Publish();
        foreach (var reason in RabbitMQDeadLetterReasons)
            _rabbitDeadLettered.WithLabels(reason).Publish();
    }

    /// <summary>The closed set of dead-letter reasons (label values).</summary>
    public static readonly IReadOnlyList<string> RabbitMQDeadLetterReasons = ["malformed_json", "invalid", "too_large"];

    /// <summary>Counts one message received from the queue.</summary>
    public void RabbitMQConsumed(bool redelivered)
    {
        _rabbitConsumed.Inc();
        if (redelivered)
            _rabbitRedelivered.Inc();
    }

    /// <summary>Counts one message moved to the dead-letter queue.</summary>
    public void RabbitMQDeadLettered(string reason) => _rabbitDeadLettered.WithLabels(reason).Inc();
}

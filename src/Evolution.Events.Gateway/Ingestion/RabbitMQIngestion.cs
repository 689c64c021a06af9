using System.Text.Json;
using Evolution.Events.Gateway.Events;
using Evolution.Events.Gateway.Http;
using Evolution.Events.Gateway.Instances;
using Evolution.Events.Gateway.Observability;
using Evolution.Events.Gateway.Options;
using FluentValidation;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using RabbitMQ.Client.Exceptions;

namespace Evolution.Events.Gateway.Ingestion;

/// <summary>
/// Consumes the events Evolution API publishes to RabbitMQ (RABBITMQ_URI) and feeds them into the path of
/// <c>POST /webhook</c>: the same validation, the same envelope (the producer's <c>apikey</c> is never
/// forwarded), the same event bus (cluster-wide with Redis).
/// <list type="bullet">
/// <item>Topology, declared at every (re)connection: the durable topic exchange RABBITMQ_EXCHANGE_NAME (the arguments
/// Evolution API declares it with), the gateway's durable queue RABBITMQ_QUEUE bound to it with RABBITMQ_BINDING_KEYS
/// (and to the per-instance exchanges of RABBITMQ_INSTANCE_EXCHANGES), and <c>&lt;queue&gt;.dead</c>. What Evolution
/// publishes while the gateway is down waits in the queue.</item>
/// <item>At-least-once: a message is acknowledged only after the bus accepted its events. A message that can never be
/// accepted (not JSON, unknown event, bad instance name, too large) is published to <c>&lt;queue&gt;.dead</c> with the
/// reason in the header <see cref="ReasonHeader"/>, then acknowledged: never requeued. A message whose processing
/// did not finish (crash, lost connection, shutdown) is redelivered by the broker.</item>
/// <item>One message at a time, in queue order; at most RABBITMQ_PREFETCH unacknowledged at once.</item>
/// <item>A lost broker is survived: reconnection with exponential backoff (0.5 s … 10 s); <c>/health/ready</c> is
/// 503 until consuming again.</item>
/// <item>Shutdown (<see cref="StopConsumingAsync"/>, called by <see cref="GatewayShutdown"/> before the bus stops
/// accepting): cancel the consumer, finish the message in hand and acknowledge it, close; prefetched messages not
/// started go back to the queue.</item>
/// </list>
/// </summary>
public sealed class RabbitMQIngestion(
    GatewayOptions options, IEventBus bus, InstanceRegistry registry, IValidator<WebhookBatch> validator,
    GatewayMetrics metrics, ILogger<RabbitMQIngestion> logger) : BackgroundService
{
    /// <summary>The header of a dead-lettered message that says why it was rejected.</summary>
    public const string ReasonHeader = "x-rejection-reason";

    /// <summary>How long shutdown waits for the message in hand.</summary>
    public static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan InitialBackoff = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(10);
    private const int MaxReasonLength = 1000;

    private readonly RabbitMQSettings _settings = options.RabbitMQ
        ?? throw new InvalidOperationException("RabbitMQIngestion needs RABBITMQ_URI");
    private readonly SemaphoreSlim _processing = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private volatile Session? _session;
    private volatile bool _draining;

    /// <summary>True while connected with the consumer registered.</summary>
    public bool IsConsuming => _session is { IsOpen: true };

    /// <summary>The broker address with the password masked.</summary>
    public string Broker => _settings.Display;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, _stop.Token);
        var ct = linked.Token;
        var backoff = InitialBackoff;
        metrics.RabbitMQUp(false);
        while (!ct.IsCancellationRequested && !_draining)
        {
            Session? session = null;
            try
            {
                session = await Session.OpenAsync(this, ct);
                _session = session;
                metrics.RabbitMQUp(true);
                logger.LogInformation(
                    "RabbitMQ: consuming queue {Queue} (bound to {Exchanges} with {Keys}) at {Broker}, prefetch {Prefetch}",
                    _settings.Queue, string.Join(", ", new[] { _settings.Exchange }.Concat(_settings.InstanceExchanges)),
                    string.Join(", ", _settings.BindingKeys), _settings.Display, _settings.Prefetch);
                backoff = InitialBackoff;
                var reason = await session.Closed.Task.WaitAsync(ct);
                logger.LogWarning("RabbitMQ: connection to {Broker} lost ({Reason}); reconnecting", _settings.Display, reason);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                logger.LogWarning("RabbitMQ: {Broker} unreachable or refused the set-up ({Error}); retrying in {Delay:F1} s",
                    _settings.Display, Describe(ex), backoff.TotalSeconds);
            }
            finally
            {
                _session = null;
                metrics.RabbitMQUp(false);
                if (session is not null)
                    await session.DisposeAsync();
            }
            try
            {
                await Task.Delay(backoff, ct);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
        }
    }

    /// <summary>
    /// Graceful stop, before the event bus stops accepting: no new delivery is started, the message in hand is
    /// finished and acknowledged (within <see cref="DrainTimeout"/>), then the connection closes; unacknowledged
    /// prefetched messages return to the queue.
    /// </summary>
    public async Task StopConsumingAsync(CancellationToken cancellationToken)
    {
        _draining = true;
        if (_session is { } session)
        {
            try
            {
                await session.CancelConsumerAsync(cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogDebug("RabbitMQ: cancelling the consumer failed: {Error}", ex.Message);
            }
            try
            {
                if (await _processing.WaitAsync(DrainTimeout, cancellationToken))
                {
                    try
                    {
                        await session.ReturnUnstartedAsync(cancellationToken);
                    }
                    finally
                    {
                        _processing.Release();
                    }
                }
                else
                {
                    logger.LogWarning("RabbitMQ: the message in hand was not done within {Timeout}; it will be redelivered", DrainTimeout);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogDebug("RabbitMQ: returning the prefetched messages failed: {Error}", ex.Message);
            }
            catch (OperationCanceledException)
            {
            }
        }
        await _stop.CancelAsync();
        if (ExecuteTask is { } loop)
            await loop.WaitAsync(cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
    }

    public override void Dispose()
    {
        base.Dispose();
        _stop.Dispose();
        _processing.Dispose();
    }

    private async Task OnDeliveryAsync(Session session, BasicDeliverEventArgs delivery)
    {
        session.Seen(delivery.DeliveryTag);
        if (_draining)
            return; // not acknowledged: back to the queue when the channel closes
        await _processing.WaitAsync();
        try
        {
            if (_draining || !session.IsOpen)
                return;
            metrics.RabbitMQConsumed(delivery.Redelivered);
            var outcome = await IngestAsync(delivery.Body, delivery.RoutingKey, _stop.Token);
            if (outcome is { } rejected && !await DeadLetterAsync(session, delivery, rejected.Label, rejected.Reason))
            {
                // our dead-letter publish failed: the broker dead-letters it (to the same queue, without the reason)
                await session.Consumer.BasicNackAsync(delivery.DeliveryTag, multiple: false, requeue: false);
                return;
            }
            await session.Consumer.BasicAckAsync(delivery.DeliveryTag, multiple: false);
        }
        catch (EventBusCompletedException)
        {
            // shutting down: not acknowledged, redelivered (here after a restart, or to another node)
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception ex)
        {
            // the channel or connection went away mid-way: the broker redelivers what was not acknowledged
            logger.LogWarning("RabbitMQ: a message was not acknowledged ({Error}); the broker will redeliver it", Describe(ex));
            await RequeueAsync(session, delivery);
        }
        finally
        {
            _processing.Release();
        }
    }

    /// <summary>An unexpected failure with the channel still open: back to the queue (the quorum queue's delivery limit bounds the retries).</summary>
    private async Task RequeueAsync(Session session, BasicDeliverEventArgs delivery)
    {
        if (!session.IsOpen)
            return;
        try
        {
            await Task.Delay(InitialBackoff, _stop.Token);
            await session.Consumer.BasicNackAsync(delivery.DeliveryTag, multiple: false, requeue: true);
        }
        catch (Exception)
        {
            // closed meanwhile: redelivered anyway
        }
    }

    /// <summary>
    /// Validates and publishes one message, as <c>POST /webhook</c> does with a body (the routing key plays the
    /// URL's event: used when the body names none). Returns null once the bus accepted it, or why it never can be.
    /// </summary>
    private async Task<(string Label, string Reason)?> IngestAsync(ReadOnlyMemory<byte> body, string routingKey, CancellationToken ct)
    {
        if (body.Length > options.WebhookMaxBody)
            return ("too_large", $"body: {body.Length} bytes, larger than WEBHOOK_MAX_BODY ({options.WebhookMaxBody} bytes)");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body);
        }
        catch (JsonException ex)
        {
            return ("malformed_json", $"malformed JSON: {ex.Message}");
        }
        using (document)
        {
            var batch = new WebhookBatch(document.RootElement, EventNames.Find(routingKey));
            var validation = await validator.ValidateAsync(batch, ct);
            if (!validation.IsValid)
                return ("invalid", string.Join("; ", ValidationMessages.Of(validation)));
            var items = batch.Parse();
            var events = items.Select(x => EnvelopeWriter.Build(x.Event, x.Instance, x.Item, options.ServerUrl)).ToList();
            if (events.FirstOrDefault(e => e.EnvelopeJson.Length > options.MaxEnvelopeBytes) is { } tooLarge)
                return ("too_large", $"the event's envelope is {tooLarge.EnvelopeJson.Length} bytes; the largest that can be delivered is {options.MaxEnvelopeBytes} bytes");
            foreach (var instance in items.Select(x => x.Instance).Distinct(StringComparer.Ordinal))
                await RegisterAsync(instance, ct);
            await bus.PublishAsync(events, ct);
            metrics.Ingested(events);
            return null;
        }
    }

    /// <summary>Registers an unknown instance; while the instance store fails, retries (the message waits, unacknowledged).</summary>
    private async Task RegisterAsync(string instance, CancellationToken ct)
    {
        var delay = InitialBackoff;
        while (true)
        {
            try
            {
                await registry.EnsureRegisteredAsync(instance, ct);
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogWarning("RabbitMQ: registering instance {Instance} failed ({Error}); retrying in {Delay:F1} s",
                    instance, ex.Message, delay.TotalSeconds);
                await Task.Delay(delay, ct);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxBackoff.Ticks));
            }
        }
    }

    /// <summary>Publishes the message to the dead-letter queue with the reason; false when the broker did not confirm it.</summary>
    private async Task<bool> DeadLetterAsync(Session session, BasicDeliverEventArgs delivery, string label, string reason)
    {
        if (reason.Length > MaxReasonLength)
            reason = reason[..MaxReasonLength] + "…";
        var properties = new BasicProperties
        {
            Persistent = true,
            ContentType = delivery.BasicProperties.ContentType,
            Headers = new Dictionary<string, object?>
            {
                [ReasonHeader] = reason,
                ["x-original-exchange"] = delivery.Exchange,
                ["x-original-routing-key"] = delivery.RoutingKey,
            },
        };
        metrics.RabbitMQDeadLettered(label);
        logger.LogWarning("RabbitMQ: a message (routing key {RoutingKey}) is moved to {DeadLetterQueue}: {Reason}",
            delivery.RoutingKey, _settings.DeadLetterQueue, reason);
        try
        {
            // with publisher confirms: completes once the broker has the message, throws when it refused or returned it
            await session.Publisher.BasicPublishAsync(string.Empty, _settings.DeadLetterQueue, mandatory: true, properties, delivery.Body);
            return true;
        }
        catch (PublishException ex)
        {
            logger.LogWarning("RabbitMQ: {DeadLetterQueue} did not take the message ({Error})", _settings.DeadLetterQueue, ex.Message);
            return false;
        }
    }

    private static string Describe(Exception ex) =>
        ex.InnerException is { } inner && inner.Message != ex.Message ? $"{ex.Message}: {inner.Message}" : ex.Message;

    /// <summary>One connection: the consumer's channel and the dead-letter publisher's (with confirms).</summary>
    private sealed class Session : IAsyncDisposable
    {
        private string? _consumerTag;
        private int _disposed;

        private Session(IConnection connection) => Connection = connection;

        public IConnection Connection { get; }

        public IChannel Consumer { get; private set; } = null!;

        public IChannel Publisher { get; private set; } = null!;

        /// <summary>Completes with the reason when the connection or a channel closes.</summary>
        public TaskCompletionSource<string> Closed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool IsOpen => !Closed.Task.IsCompleted && Connection.IsOpen;

        public static async Task<Session> OpenAsync(RabbitMQIngestion owner, CancellationToken ct)
        {
            var settings = owner._settings;
            var factory = new ConnectionFactory
            {
                Uri = settings.Uri,
                AutomaticRecoveryEnabled = false, // the owner's loop reconnects and declares everything again
                TopologyRecoveryEnabled = false,
                ClientProvidedName = "evolution-events-gateway",
                RequestedHeartbeat = TimeSpan.FromSeconds(15),
                ConsumerDispatchConcurrency = 1, // queue order
            };
            var connection = await factory.CreateConnectionAsync(ct);
            var session = new Session(connection);
            try
            {
                connection.ConnectionShutdownAsync += (_, e) => session.OnClosed($"connection closed: {e.ReplyCode} {e.ReplyText}");
                session.Consumer = await connection.CreateChannelAsync(cancellationToken: ct);
                session.Consumer.ChannelShutdownAsync += (_, e) => session.OnClosed($"channel closed: {e.ReplyCode} {e.ReplyText}");
                await DeclareAsync(session.Consumer, settings, ct);
                session.Publisher = await connection.CreateChannelAsync(
                    new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true), ct);
                session.Publisher.ChannelShutdownAsync += (_, e) => session.OnClosed($"channel closed: {e.ReplyCode} {e.ReplyText}");
                await session.Consumer.BasicQosAsync(0, settings.Prefetch, global: false, ct);
                var consumer = new AsyncEventingBasicConsumer(session.Consumer);
                consumer.ReceivedAsync += (_, delivery) => owner.OnDeliveryAsync(session, delivery);
                session._consumerTag = await session.Consumer.BasicConsumeAsync(settings.Queue, autoAck: false, consumer, ct);
                return session;
            }
            catch
            {
                await session.DisposeAsync();
                throw;
            }
        }

        private static async Task DeclareAsync(IChannel channel, RabbitMQSettings settings, CancellationToken ct)
        {
            var exchanges = new[] { settings.Exchange }.Concat(settings.InstanceExchanges).ToList();
            foreach (var exchange in exchanges) // as Evolution API declares them: topic, durable, not auto-deleted
                await channel.ExchangeDeclareAsync(exchange, ExchangeType.Topic, durable: true, autoDelete: false, cancellationToken: ct);
            await channel.QueueDeclareAsync(settings.DeadLetterQueue, durable: true, exclusive: false, autoDelete: false,
                arguments: new Dictionary<string, object?> { ["x-queue-type"] = settings.QueueType }, cancellationToken: ct);
            var arguments = new Dictionary<string, object?>
            {
                ["x-queue-type"] = settings.QueueType,
                // what the broker itself rejects (a delivery limit reached, a nack) lands next to ours
                ["x-dead-letter-exchange"] = string.Empty,
                ["x-dead-letter-routing-key"] = settings.DeadLetterQueue,
            };
            if (settings.QueueType == "quorum" && settings.DeliveryLimit > 0)
                arguments["x-delivery-limit"] = settings.DeliveryLimit;
            await channel.QueueDeclareAsync(settings.Queue, durable: true, exclusive: false, autoDelete: false, arguments, cancellationToken: ct);
            foreach (var exchange in exchanges)
            {
                foreach (var key in settings.BindingKeys)
                    await channel.QueueBindAsync(settings.Queue, exchange, key, cancellationToken: ct);
            }
        }

        private ulong _highestTag;

        /// <summary>Notes a delivery (tags grow by one per delivery on the channel).</summary>
        public void Seen(ulong deliveryTag) => _highestTag = Math.Max(_highestTag, deliveryTag);

        /// <summary>
        /// After the consumer was cancelled and the message in hand acknowledged: gives every prefetched, unstarted
        /// message back to the queue in one <c>basic.nack</c> (multiple, requeue), so that they come back in order
        /// (closing the channel would also return them, in no defined order).
        /// </summary>
        public async Task ReturnUnstartedAsync(CancellationToken ct)
        {
            if (_highestTag > 0 && IsOpen)
                await Consumer.BasicNackAsync(_highestTag, multiple: true, requeue: true, ct);
        }

        public async Task CancelConsumerAsync(CancellationToken ct)
        {
            if (_consumerTag is { } tag && IsOpen)
                await Consumer.BasicCancelAsync(tag, noWait: false, ct);
        }

        private Task OnClosed(string reason)
        {
            Closed.TrySetResult(reason);
            return Task.CompletedTask;
        }

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 1)
                return;
            Closed.TrySetResult("closed by the gateway");
            try
            {
                if (Connection.IsOpen)
                    await Connection.CloseAsync(TimeSpan.FromSeconds(5));
            }
            catch (Exception)
            {
                // already gone: nothing to close
            }
            await Connection.DisposeAsync();
        }
    }
}

/// <summary>Readiness: with RABBITMQ_URI, the gateway is connected to RabbitMQ and consuming.</summary>
public sealed class RabbitMQHealthCheck(RabbitMQIngestion ingestion) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(ingestion.IsConsuming
            ? HealthCheckResult.Healthy($"consuming at {ingestion.Broker}")
            : HealthCheckResult.Unhealthy($"not connected to RabbitMQ at {ingestion.Broker} (reconnecting)"));
}

/// <summary>Registration of the RabbitMQ ingestion (only with RABBITMQ_URI).</summary>
public static class RabbitMQIngestionHosting
{
    public static IServiceCollection AddRabbitMQIngestion(this IServiceCollection services, GatewayOptions options)
    {
        if (options.RabbitMQ is null)
            return services;
        services.AddSingleton<RabbitMQIngestion>();
        services.AddHostedService(sp => sp.GetRequiredService<RabbitMQIngestion>());
        services.AddHealthChecks().AddCheck<RabbitMQHealthCheck>("rabbitmq", tags: [GatewayObservability.ReadyTag]);
        return services;
    }
}

using System.Diagnostics;
using Evolution.Events.Gateway.Events;
using Evolution.Events.Gateway.Fanout;
using Evolution.Events.Gateway.Ingestion;
using Evolution.Events.Gateway.PlainWebSockets;
using Evolution.Events.SocketIO;

namespace Evolution.Events.Gateway;

/// <summary>
/// The shutdown order that makes "202 Accepted" mean "delivered to the sockets connected at the time, or
/// never acknowledged". It runs in <see cref="IHostedLifecycleService.StoppingAsync"/>, before Kestrel stops
/// listening and waits for connections to drain:
/// <list type="number">
/// <item>Ingestion stops: <see cref="IEventBus.Complete"/>. A batch is wholly in before it, or refused after it
/// (the endpoint answers 503 with Retry-After); no POST gets a 202 from here on.</item>
/// <item>The fan-out empties the bus: every accepted event is handed to the sinks, i.e. queued on every
/// subscribed socket (within <see cref="DrainTimeout"/>).</item>
/// <item>The transports close gracefully: each Socket.IO session and plain WebSocket writes what it has queued,
/// then its close packet or close frame (Socket.IO clients see <c>transport close</c> and reconnect to
/// another node). Kestrel's own stop then waits for those connections to finish writing.</item>
/// </list>
/// Registered after the Socket.IO services: lifecycle services stop in reverse order of registration, so this
/// runs before the library's own close-on-stopping (which then finds the sessions already closed).
/// </summary>
public sealed class GatewayShutdown(
    IEventBus bus, FanoutService fanout, PlainWebSocketHub plainWebSockets, IServiceProvider services,
    ILogger<GatewayShutdown> logger) : IHostedLifecycleService
{
    /// <summary>How long the fan-out may take to hand the accepted events to the sockets.</summary>
    public static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(10);

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        // RabbitMQ (RABBITMQ_URI): stop consuming, finish and acknowledge the message in hand, before the bus refuses
        if (services.GetService<RabbitMQIngestion>() is { } rabbitMQ)
            await rabbitMQ.StopConsumingAsync(cancellationToken);
        bus.Complete();
        if (fanout.ExecuteTask is { } loop)
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(DrainTimeout);
            try
            {
                await loop.WaitAsync(deadline.Token);
            }
            catch (OperationCanceledException)
            {
                logger.LogWarning("Shutdown: the fan-out did not drain the accepted events within {Timeout}; closing anyway", DrainTimeout);
            }
        }

        var drained = Stopwatch.GetElapsedTime(started);
        services.GetService<SocketIOServer>()?.Close();
        plainWebSockets.CloseAll("server shutting down");
        logger.LogInformation(
            "Shutdown: ingestion stopped and accepted events handed to the sockets in {Drain:F0} ms; transports closing ({Close:F0} ms)",
            drained.TotalMilliseconds, (Stopwatch.GetElapsedTime(started) - drained).TotalMilliseconds);
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

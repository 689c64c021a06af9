using Evolution.Events.EngineIO;
using Evolution.Events.Gateway.Events;
using Evolution.Events.Gateway.Instances;

namespace Evolution.Events.Gateway.Fanout;

/// <summary>
/// Consumes the bus and hands each event to every <see cref="IEventSink"/> with the instance's settings
/// (read from the in-memory registry, never from SQLite). Sinks only enqueue, so a slow client never
/// holds up this loop.
/// </summary>
public sealed class FanoutService(
    IEventBus bus, IEnumerable<IEventSink> sinks, InstanceRegistry registry, LastStateReplay replay,
    ILogger<FanoutService> logger)
    : BackgroundService
{
    private readonly IEventSink[] _sinks = [.. sinks];
    private IEventSubscription? _subscription;

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        _subscription = bus.Subscribe();
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var reader = _subscription!.Reader;
        try
        {
            while (await reader.WaitToReadAsync(stoppingToken))
                DeliverAvailable(reader);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Delivers the events the bus holds now. A run of several (up to <see cref="CorkRun"/>) is delivered under one
    /// cork: each client's writer wakes once, after the run, and sends the run's events in one write instead of one
    /// per event. A lone event is not corked: each writer wakes as the event is queued for it, so the first clients'
    /// writes overlap the queueing for the rest instead of waiting until every client has it.
    /// </summary>
    private void DeliverAvailable(System.Threading.Channels.ChannelReader<GatewayEvent> reader)
    {
        while (reader.TryRead(out var first))
        {
            if (reader.CanCount && reader.Count == 0)
            {
                Deliver(first);
                continue;
            }

            using (OutboundQueue.Cork())
            {
                Deliver(first);
                for (var i = 1; i < CorkRun && reader.TryRead(out var e); i++)
                    Deliver(e);
            }
        }
    }

    /// <summary>Most events delivered under one cork: a long burst still reaches clients every this many events.</summary>
    internal const int CorkRun = 64;

    private void Deliver(GatewayEvent e)
    {
        if (!replay.Enabled)
        {
            DeliverToSinks(e);
            return;
        }

        // Record and broadcast atomically with respect to a subscriber joining this instance (see LastStateReplay).
        lock (replay.LockFor(e.Instance))
        {
            replay.Record(e);
            DeliverToSinks(e);
        }
    }

    private void DeliverToSinks(GatewayEvent e)
    {
        var settings = registry.GetSettings(e.Instance);
        foreach (var sink in _sinks)
        {
            try
            {
                sink.Deliver(e, settings);
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "Sink {Sink} failed to deliver {Event} of {Instance}",
                    sink.GetType().Name, e.EventName, e.Instance);
            }
        }
    }

    public override void Dispose()
    {
        _subscription?.Dispose();
        base.Dispose();
    }
}

using System.Threading.Channels;
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
    private Action<GatewayEvent>? _deliver; // Deliver, made once

    /// <summary>The rounds of this loop's fan-outs (tests give it a longer hold).</summary>
    internal OutboundQueue.FanoutRounds Rounds { get; init; } = new();

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
    /// Delivers the events the bus holds now. A run of several is delivered under one cork: each client's writer
    /// wakes once, after the run, and sends the run's events in one write instead of one per event. A run ends after
    /// <see cref="CorkRun"/> events or <see cref="CorkBytes"/> of envelopes, whichever comes first, so that a client
    /// that gets every event of the run still gets it in one write (a WebSocket write carries up to 64 KiB) and a
    /// long burst reaches clients run by run. A lone event is not corked: each writer wakes as the event is queued
    /// for it, so the first clients' writes overlap the queueing for the rest instead of waiting until every client
    /// has it. Each event or run is one fan-out of <see cref="Rounds"/>: while writers the last one woke have not
    /// all resumed, its wakes are held and go together after them, so under load a client gets the events that came
    /// meanwhile in one write; with nothing in flight nothing waits.
    /// </summary>
    private void DeliverAvailable(ChannelReader<GatewayEvent> reader)
    {
        while (reader.TryRead(out var first))
        {
            using (Rounds.Begin())
            {
                if (reader.CanCount && reader.Count == 0)
                {
                    Deliver(first);
                    continue;
                }

                using (OutboundQueue.Cork())
                {
                    DeliverRun(reader, first, _deliver ??= Deliver);
                }
            }
        }
    }

    /// <summary>
    /// Delivers <paramref name="first"/>, then the events that follow it on the bus (taken as they come, so one that
    /// arrives meanwhile joins the run), up to <see cref="CorkRun"/> events and as long as their envelopes stay within
    /// <see cref="CorkBytes"/> (the first one goes whatever its size; a reader that cannot peek is bounded by the count
    /// only); returns how many.
    /// </summary>
    internal static int DeliverRun(ChannelReader<GatewayEvent> reader, GatewayEvent first, Action<GatewayEvent> deliver)
    {
        deliver(first);
        var taken = 1;
        long bytes = first.EnvelopeJson.Length;
        while (taken < CorkRun
            && (!reader.CanPeek || (reader.TryPeek(out var next) && bytes + next.EnvelopeJson.Length <= CorkBytes))
            && reader.TryRead(out var e))
        {
            deliver(e);
            taken++;
            bytes += e.EnvelopeJson.Length;
        }

        return taken;
    }

    /// <summary>Most events delivered under one cork.</summary>
    internal const int CorkRun = 256;

    /// <summary>
    /// Most envelope bytes in one cork's run: with the Socket.IO framing of up to <see cref="CorkRun"/> events, what a
    /// client gets of one run still fits one WebSocket write (64 KiB).
    /// </summary>
    internal const int CorkBytes = 48 * 1024;

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
        Rounds.Dispose();
        base.Dispose();
    }
}

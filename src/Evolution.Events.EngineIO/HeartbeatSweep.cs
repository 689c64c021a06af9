using System.Collections.Concurrent;

namespace Evolution.Events.EngineIO;

/// <summary>
/// The heartbeat clock of one server: a single coarse timer that sweeps the open sessions and fires the
/// ones whose due time has come (ping, pong deadline, close timeout), instead of one
/// <see cref="Timer"/> per session (as Kestrel's heartbeat and centrifuge do). A session keeps only its
/// due time (a <see cref="long"/>); the sweep walks the server's session registry, so it costs no
/// memory per session. It runs only while sessions exist, so an idle server holds no armed timer.
/// </summary>
/// <remarks>
/// The resolution is a tenth of the shortest heartbeat interval (<c>pingInterval</c>, <c>pingTimeout</c>),
/// between <see cref="MinTickMs"/> and <see cref="MaxTickMs"/>: 100 ms for the defaults (25 s / 20 s),
/// so a ping or a timeout fires at most that much late. The sweep never runs user code on its own
/// thread: a ping is only queued; a timeout's close cascade runs on the thread pool.
/// </remarks>
internal sealed class HeartbeatSweep
{
    /// <summary>Finest tick (short test intervals).</summary>
    public const int MinTickMs = 10;

    /// <summary>Coarsest tick (the default intervals).</summary>
    public const int MaxTickMs = 100;

    private readonly ConcurrentDictionary<string, EngineSocket> _sessions;
    private readonly Timer _timer;
    private int _running;

    /// <param name="sessions">The server's session registry (a session is swept from its registration to its end).</param>
    /// <param name="options">The heartbeat intervals, which set the tick.</param>
    public HeartbeatSweep(ConcurrentDictionary<string, EngineSocket> sessions, EngineIOOptions options)
    {
        _sessions = sessions;
        TickMs = TickFor(options);

        // the timer does not keep the server alive while it is disarmed (no session)
        using (ExecutionContext.SuppressFlow())
        {
            _timer = new Timer(static s => ((HeartbeatSweep)s!).Sweep(), this, Timeout.Infinite, Timeout.Infinite);
        }
    }

    /// <summary>How often the sessions are swept, in milliseconds.</summary>
    public int TickMs { get; }

    /// <summary>Whether the sweep is armed (false while the server has no session).</summary>
    public bool IsRunning => Volatile.Read(ref _running) != 0;

    /// <summary>The tick for these options: a tenth of the shortest heartbeat interval, clamped.</summary>
    public static int TickFor(EngineIOOptions options) =>
        Math.Clamp(Math.Min(options.PingInterval, options.PingTimeout) / 10, MinTickMs, MaxTickMs);

    /// <summary>A session was registered: the sweep runs (again) if it was stopped.</summary>
    public void EnsureRunning()
    {
        // a full fence after the registry's add: a sweep stopping now either sees the session or is re-armed here
        if (Interlocked.CompareExchange(ref _running, 1, 0) == 0)
        {
            _timer.Change(TickMs, Timeout.Infinite);
        }
    }

    private void Sweep()
    {
        var now = EngineClock.Milliseconds;
        foreach (var (_, session) in _sessions)
        {
            session.OnHeartbeatTick(now);
        }

        // one-shot re-arming: a slow sweep is never overlapped by the next one. With no session left the
        // sweep stops; a session registered meanwhile either sees it stopped (and re-arms it) or is seen here.
        if (_sessions.IsEmpty)
        {
            Interlocked.Exchange(ref _running, 0);
            if (_sessions.IsEmpty || Interlocked.CompareExchange(ref _running, 1, 0) != 0)
            {
                return;
            }
        }

        _timer.Change(TickMs, Timeout.Infinite);
    }
}

using System.Diagnostics;

namespace Evolution.Events.EngineIO;

/// <summary>
/// The engine's monotonic clock, in milliseconds, for heartbeat deadlines and write timeouts. Not
/// <see cref="Environment.TickCount64"/>: on Linux that one is the coarse clock (a tick of 4 ms or more), so a request
/// that comes right at a pong deadline could read a time a few milliseconds short of it and find the session alive.
/// </summary>
internal static class EngineClock
{
    private static readonly long TicksPerMs = Math.Max(1, Stopwatch.Frequency / 1000);

    /// <summary>Milliseconds since an arbitrary start, never going back.</summary>
    public static long Milliseconds => Stopwatch.GetTimestamp() / TicksPerMs;
}

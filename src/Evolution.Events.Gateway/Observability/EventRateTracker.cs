using System.Collections.Concurrent;

namespace Evolution.Events.Gateway.Observability;

/// <summary>
/// Events per second per instance over the last <see cref="WindowSeconds"/> seconds: one small ring of
/// per-second buckets per instance. Cheap enough to call for every ingested event.
/// </summary>
public sealed class EventRateTracker(TimeProvider time)
{
    public const int WindowSeconds = 10;
    private readonly ConcurrentDictionary<string, Ring> _rings = new(StringComparer.Ordinal);

    public void Add(string instance) => _rings.GetOrAdd(instance, _ => new Ring()).Add(Now());

    /// <summary>Average events per second of the instance over the window (0 when none).</summary>
    public double PerSecond(string instance) =>
        _rings.TryGetValue(instance, out var ring) ? ring.Sum(Now()) / (double)WindowSeconds : 0;

    /// <summary>Average events per second of every instance together.</summary>
    public double TotalPerSecond()
    {
        var now = Now();
        return _rings.Values.Sum(r => r.Sum(now)) / (double)WindowSeconds;
    }

    public void Forget(string instance) => _rings.TryRemove(instance, out _);

    private long Now() => time.GetUtcNow().ToUnixTimeSeconds();

    private sealed class Ring
    {
        private readonly Lock _lock = new();
        private readonly long[] _second = new long[WindowSeconds];
        private readonly long[] _count = new long[WindowSeconds];

        public void Add(long now)
        {
            var i = (int)(now % WindowSeconds);
            lock (_lock)
            {
                if (_second[i] != now)
                    (_second[i], _count[i]) = (now, 0);
                _count[i]++;
            }
        }

        public long Sum(long now)
        {
            long sum = 0;
            lock (_lock)
            {
                for (var i = 0; i < WindowSeconds; i++)
                {
                    if (now - _second[i] < WindowSeconds)
                        sum += _count[i];
                }
            }
            return sum;
        }
    }
}

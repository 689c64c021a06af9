using System.Numerics;

namespace Evolution.Events.LoadGen;

/// <summary>
/// Log-linear latency histogram in microseconds (HdrHistogram layout: exact below 1,024 µs, then 512
/// sub-buckets per power of two, so better than 0.2 % resolution). Single writer, merged after the run.
/// </summary>
internal sealed class Histogram
{
    private const int Linear = 1024, Half = 512, MaxShift = 40;
    private readonly long[] _counts = new long[Linear + MaxShift * Half];
    public long Count { get; private set; }
    public long Max { get; private set; }

    public void Record(long micros)
    {
        if (micros < 0) micros = 0;
        _counts[Index(micros)]++;
        Count++;
        if (micros > Max) Max = micros;
    }

    private static int Index(long v)
    {
        if (v < Linear) return (int)v;
        var shift = 63 - BitOperations.LeadingZeroCount((ulong)v) - 9;
        if (shift > MaxShift) return Linear + (MaxShift - 1) * Half + Half - 1;
        return Linear + (shift - 1) * Half + (int)((v >> shift) - Half);
    }

    private static long UpperBound(int idx)
    {
        if (idx < Linear) return idx;
        var shift = (idx - Linear) / Half + 1;
        var r = (idx - Linear) % Half;
        return ((long)(Half + r + 1) << shift) - 1;
    }

    public void Add(Histogram other)
    {
        for (var i = 0; i < _counts.Length; i++) _counts[i] += other._counts[i];
        Count += other.Count;
        if (other.Max > Max) Max = other.Max;
    }

    /// <summary>The value at quantile q (0..1), in microseconds; the bucket's upper bound, capped at the max.</summary>
    public long Quantile(double q)
    {
        if (Count == 0) return 0;
        var rank = (long)Math.Ceiling(q * Count);
        if (rank < 1) rank = 1;
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank) return Math.Min(UpperBound(i), Max);
        }
        return Max;
    }
}

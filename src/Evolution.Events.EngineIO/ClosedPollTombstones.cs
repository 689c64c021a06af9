using System.Collections.Concurrent;

namespace Evolution.Events.EngineIO;

/// <summary>
/// Sessions a client has just closed with a close packet over polling, remembered for a short grace.
/// A client may send its poll and its close packet at the same moment, on two connections; served in
/// parallel, the close can win and the poll would find no session ("Session ID unknown"). A
/// single-threaded server answers that poll as the pending poll it is (a noop), and so do we: the
/// first poll for a remembered session takes its entry and gets the noop; later requests get the
/// usual <c>400</c>. Only the id and an expiry are kept (no session) and the count is bounded: when
/// full of live entries, a new one is dropped (its poll gets the 400 it had before). Expired entries
/// are swept by an add, once per grace period (once per quarter of it while full), in one pass
/// bounded by the capacity; an expired entry is never answered, swept or not.
/// </summary>
internal sealed class ClosedPollTombstones(int capacity, int graceMs)
{
    private readonly ConcurrentDictionary<string, long> _entries = new(StringComparer.Ordinal);
    private int _count;
    private long _lastSweep = EngineClock.Milliseconds;

    /// <summary>Entries now held (expired ones included until the next sweep).</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Remembers a session the client closed over polling; dropped silently when full of live entries.</summary>
    public void Add(string sid)
    {
        var now = EngineClock.Milliseconds;
        var sinceSweep = now - Volatile.Read(ref _lastSweep);
        if (sinceSweep >= graceMs || (Volatile.Read(ref _count) >= capacity && sinceSweep >= graceMs / 4))
        {
            Sweep(now);
        }

        if (Volatile.Read(ref _count) >= capacity)
        {
            return; // that poll will get the 400 it would have had without this set
        }

        if (_entries.TryAdd(sid, now + graceMs))
        {
            Interlocked.Increment(ref _count);
        }
    }

    /// <summary>Takes the entry of a session: true once, within the grace, for a remembered session.</summary>
    public bool TryTake(string sid)
    {
        if (!_entries.TryRemove(sid, out var expiry))
        {
            return false;
        }

        Interlocked.Decrement(ref _count);
        return EngineClock.Milliseconds < expiry;
    }

    /// <summary>Forgets a session whose final poll has been answered another way (it was waiting when the close came).</summary>
    public void Remove(string sid)
    {
        if (_entries.TryRemove(sid, out _))
        {
            Interlocked.Decrement(ref _count);
        }
    }

    private void Sweep(long now)
    {
        var last = Volatile.Read(ref _lastSweep);
        if (Interlocked.CompareExchange(ref _lastSweep, now, last) != last)
        {
            return; // another thread sweeps now
        }

        foreach (var entry in _entries)
        {
            if (entry.Value <= now && _entries.TryRemove(entry))
            {
                Interlocked.Decrement(ref _count);
            }
        }
    }
}

using System.Collections.Concurrent;
using System.Globalization;
using Evolution.Events.SocketIO.Protocol;

namespace Evolution.Events.SocketIO.Adapters;

/// <summary>
/// The in-memory store of connection state recovery for one server, keyed by namespace name so that it
/// outlives the <see cref="Namespace"/> objects (an empty dynamic child namespace is dropped and made
/// again). Per namespace: the kept broadcast packets (bounded by count, bytes and age) and the persisted
/// sessions. Offsets come from one counter per server: unique and increasing. A client whose offset is
/// at or after the newest packet dropped from its namespace's log lost nothing, so it may recover even
/// when its own last packet has been dropped since.
/// </summary>
internal sealed class RecoveryStore : IDisposable
{
    private readonly ConnectionStateRecoveryOptions _options;
    private readonly Action<string> _sessionsExpired;
    private readonly Func<string, bool> _hasSockets;
    private readonly ConcurrentDictionary<string, NamespaceLog> _logs = new(StringComparer.Ordinal);
    private readonly Timer _sweeper;
    private readonly long _maxAgeMs;
    private long _lastOffset;
    private long _gapUpTo;
    private long _sequenceSeen;
    private readonly Lock _sequence = new();
    private long _packets;
    private long _bytes;
    private long _sessions;
    private long _sessionScans;

    /// <param name="options">The bounds.</param>
    /// <param name="sessionsExpired">Told the namespaces whose last kept session expired.</param>
    /// <param name="hasSockets">
    /// Whether a namespace has connected sockets (lock-free): their logs stay, even empty, so that their join
    /// points stay valid (a new log cannot prove an older offset lossless).
    /// </param>
    public RecoveryStore(ConnectionStateRecoveryOptions options, Action<string> sessionsExpired, Func<string, bool>? hasSockets = null)
    {
        _sessionsExpired = sessionsExpired;
        _hasSockets = hasSockets ?? (static _ => false);
        if (options.MaxDisconnectionDuration <= TimeSpan.Zero || options.MaxPacketsPerNamespace < 1 || options.MaxBytesPerNamespace < 1
            || options.MaxBytesTotal < 1)
        {
            throw new ArgumentException(
                "ConnectionStateRecovery: MaxDisconnectionDuration, MaxPacketsPerNamespace, MaxBytesPerNamespace and MaxBytesTotal must be positive");
        }

        _options = options;
        _maxAgeMs = (long)options.MaxDisconnectionDuration.TotalMilliseconds;
        var period = TimeSpan.FromMilliseconds(Math.Clamp(_maxAgeMs / 2, 500, 30_000));
        _sweeper = new Timer(static s => ((RecoveryStore)s!).Sweep(), this, period, period);
    }

    public long PacketCount => Interlocked.Read(ref _packets);

    public long ByteCount => Interlocked.Read(ref _bytes);

    public long SessionCount => Interlocked.Read(ref _sessions);

    /// <summary>Looks through a namespace's kept sessions for expired ones outside the sweeper so far (diagnostics).</summary>
    public long SessionScans => Interlocked.Read(ref _sessionScans);

    private static long Now => Environment.TickCount64;

    /// <summary>Least time between two looks through a namespace's kept sessions from the broadcast path.</summary>
    private const long SessionScanIntervalMs = 1000;

    /// <summary>
    /// Gives the event its offset, keeps it and delivers it, all under the namespace's lock: every socket
    /// gets the kept packets in offset order, which exactly-once replay relies on. Delivery only enqueues.
    /// </summary>
    public void Broadcast(string nsp, EncodedPacket packet, BroadcastOptions options, Action<EncodedPacket, BroadcastOptions> deliver) =>
        Broadcast(nsp, packet, options, deliver, null);

    /// <summary>
    /// <see cref="Broadcast(string, EncodedPacket, BroadcastOptions, Action{EncodedPacket, BroadcastOptions})"/> with the
    /// offset given by the caller (<paramref name="givenOffset"/>), or issued here when null. A given offset must be
    /// positive and after the newest packet of the namespace's log: else nothing is kept nor delivered (false).
    /// </summary>
    public bool Broadcast(string nsp, EncodedPacket packet, BroadcastOptions options, Action<EncodedPacket, BroadcastOptions> deliver, long? givenOffset)
    {
        while (true)
        {
            var log = GetLog(nsp);
            lock (log)
            {
                if (log.Removed)
                {
                    continue;
                }

                if (givenOffset is { } given && (given <= 0 || given <= log.Newest))
                {
                    return false;
                }

                var now = Now;
                EvictExpired(log, now);
                long offset;
                if (givenOffset is { } chosen)
                {
                    offset = chosen;
                    var last = Interlocked.Read(ref _lastOffset);
                    while (last < chosen)
                    {
                        var seen = Interlocked.CompareExchange(ref _lastOffset, chosen, last);
                        if (seen == last)
                        {
                            break;
                        }

                        last = seen;
                    }
                }
                else
                {
                    offset = Interlocked.Increment(ref _lastOffset);
                }

                log.Newest = offset;
                var kept = packet.WithOffset(offset.ToString(CultureInfo.InvariantCulture));
                var size = kept.Size;
                log.Packets.Enqueue(new KeptPacket(offset, kept, options, now, size));
                log.Bytes += size;
                Interlocked.Increment(ref _packets);
                Interlocked.Add(ref _bytes, size);
                while (log.Packets.Count > _options.MaxPacketsPerNamespace || log.Bytes > _options.MaxBytesPerNamespace
                    || (Interlocked.Read(ref _bytes) > _options.MaxBytesTotal && log.Packets.Count > 0))
                {
                    Evict(log);
                }

                deliver(kept, options);
                return true;
            }
        }
    }

    /// <summary>
    /// A caller's offset sequence moves from <paramref name="previousOffset"/> to <paramref name="offset"/>: when
    /// this server did not see <paramref name="previousOffset"/> as the last step (it started later, or missed
    /// steps), no recovery from an offset before <paramref name="previousOffset"/> is accepted any more, since
    /// packets in between may be missing here. A step already seen is ignored.
    /// </summary>
    public void Continue(long previousOffset, long offset)
    {
        lock (_sequence)
        {
            if (offset <= _sequenceSeen)
            {
                return;
            }

            if (previousOffset != _sequenceSeen)
            {
                Interlocked.Exchange(ref _gapUpTo, Math.Max(Interlocked.Read(ref _gapUpTo), previousOffset));
            }

            _sequenceSeen = offset;
        }
    }

    /// <summary>The newest offset issued or given so far (0: none).</summary>
    public long LastOffset => Interlocked.Read(ref _lastOffset);

    /// <summary>Whether every packet of the namespace after <paramref name="offset"/> is still kept here.</summary>
    public bool Covers(string nsp, string offset)
    {
        if (!_logs.TryGetValue(nsp, out var log))
        {
            return false;
        }

        lock (log)
        {
            EvictExpired(log, Now);
            return Covers(log, offset);
        }
    }

    /// <summary>
    /// Runs <paramref name="connect"/> (the socket starts receiving broadcasts) under the namespace's lock and
    /// returns the join point: the newest offset issued so far. Every broadcast of this namespace with a later
    /// offset reaches the socket, none with this one or an earlier one does.
    /// </summary>
    public string Join(string nsp, Action connect)
    {
        while (true)
        {
            var log = GetLog(nsp);
            lock (log)
            {
                if (log.Removed)
                {
                    continue;
                }

                var joinedAt = Interlocked.Read(ref _lastOffset);
                connect();
                return joinedAt.ToString(CultureInfo.InvariantCulture);
            }
        }
    }

    public void Persist(string nsp, PersistedSession session)
    {
        while (true)
        {
            var log = GetLog(nsp);
            lock (log)
            {
                if (log.Removed)
                {
                    continue;
                }

                var now = Now;
                log.SessionsDueAt = Math.Min(log.SessionsDueAt, now + _maxAgeMs);
                if (log.Sessions.TryAdd(session.Pid, new KeptSession(session, now)))
                {
                    Interlocked.Increment(ref _sessions);
                }
                else
                {
                    log.Sessions[session.Pid] = new KeptSession(session, now);
                }

                log.SessionsChanged();
                log.ReportWhenNoSessions = true;

                return;
            }
        }
    }

    /// <summary>
    /// Claims the session of <paramref name="pid"/> when it has not expired and every packet after
    /// <paramref name="offset"/> (null: after the session's join point) is still kept.
    /// </summary>
    public SessionRestoreResult Restore(string nsp, string pid, string? offset)
    {
        if (!_logs.TryGetValue(nsp, out var log))
        {
            return SessionRestoreResult.Unknown;
        }

        lock (log)
        {
            if (!log.Sessions.Remove(pid, out var kept))
            {
                return SessionRestoreResult.Unknown;
            }

            log.SessionsChanged();
            Interlocked.Decrement(ref _sessions);
            var now = Now;
            EvictExpired(log, now);
            offset ??= kept.Session.JoinOffset;
            if (offset is null || now - kept.DisconnectedAt > _maxAgeMs || !Covers(log, offset))
            {
                return SessionRestoreResult.TooLate;
            }

            return new SessionRestoreResult(RecoveryOutcome.Recovered, kept.Session);
        }
    }

    public IReadOnlyList<EncodedPacket>? Missed(string nsp, string offset, IReadOnlyCollection<string> rooms)
    {
        if (!long.TryParse(offset, NumberStyles.None, CultureInfo.InvariantCulture, out var after))
        {
            return null;
        }

        if (!_logs.TryGetValue(nsp, out var log))
        {
            // nothing was ever kept here, or everything kept expired and the log went: lossless only if
            // nothing was broadcast since that offset, which an absent log cannot tell
            return null;
        }

        lock (log)
        {
            EvictExpired(log, Now);
            if (!Covers(log, offset))
            {
                return null;
            }

            var missed = new List<EncodedPacket>();
            foreach (var kept in log.Packets)
            {
                if (kept.Offset > after && Includes(rooms, kept.Options))
                {
                    missed.Add(kept.Packet);
                }
            }

            return missed;
        }
    }

    public void Dispose() => _sweeper.Dispose();

    /// <summary>
    /// Whether sessions of this namespace are kept (expired ones until the sweep drops them). Lock-free: it is
    /// asked under the server's namespace lock, which a broadcast holding this store's lock may need.
    /// </summary>
    public bool HasSessions(string nsp) => _logs.TryGetValue(nsp, out var log) && Volatile.Read(ref log.SessionCount) > 0;

    /// <summary>
    /// A new log counts every offset issued so far as dropped: a log is only removed once empty, and what it
    /// held is gone, so an older offset cannot be proven lossless any more.
    /// </summary>
    private NamespaceLog GetLog(string nsp) =>
        _logs.GetOrAdd(nsp, static (_, store) => new NamespaceLog { EvictedUpTo = Interlocked.Read(ref store._lastOffset) }, this);

    /// <summary>Every packet of this log after the offset is still kept (caller holds the lock).</summary>
    private bool Covers(NamespaceLog log, string offset) =>
        long.TryParse(offset, NumberStyles.None, CultureInfo.InvariantCulture, out var after)
        && after <= Interlocked.Read(ref _lastOffset)
        && after >= log.EvictedUpTo
        && after >= Interlocked.Read(ref _gapUpTo);

    /// <summary>socket.io-adapter's <c>shouldIncludePacket</c>: in one of the rooms (or to all), in none of the exceptions.</summary>
    private static bool Includes(IReadOnlyCollection<string> rooms, BroadcastOptions options)
    {
        var included = options.Rooms.Count == 0;
        foreach (var room in rooms)
        {
            if (options.Except.Contains(room))
            {
                return false;
            }

            included |= options.Rooms.Contains(room);
        }

        return included;
    }

    /// <summary>
    /// Drops the packets and the sessions older than the window. Packets leave from the front of the log; the
    /// sessions are only looked through once one of them is due (<see cref="NamespaceLog.SessionsDueAt"/>), and on
    /// the broadcast path at most once per <see cref="SessionScanIntervalMs"/>, so a broadcast does not walk every
    /// kept session (thousands, after a reconnect wave). Nothing depends on a session leaving on time:
    /// <see cref="Restore"/> checks the age itself, and <see cref="Sweep"/> (<paramref name="sweep"/>) always looks.
    /// </summary>
    private void EvictExpired(NamespaceLog log, long now, bool sweep = false)
    {
        while (log.Packets.TryPeek(out var oldest) && now - oldest.At > _maxAgeMs)
        {
            Evict(log);
        }

        if (log.Sessions.Count == 0 || (!sweep && now <= log.SessionsDueAt))
        {
            return;
        }

        if (!sweep)
        {
            Interlocked.Increment(ref _sessionScans);
        }

        List<string>? expired = null;
        var earliest = long.MaxValue;
        foreach (var (pid, session) in log.Sessions)
        {
            if (now - session.DisconnectedAt > _maxAgeMs)
            {
                (expired ??= []).Add(pid);
            }
            else
            {
                earliest = Math.Min(earliest, session.DisconnectedAt + _maxAgeMs);
            }
        }

        log.SessionsDueAt = earliest == long.MaxValue ? long.MaxValue : Math.Max(earliest, now + SessionScanIntervalMs);

        foreach (var pid in expired ?? [])
        {
            log.Sessions.Remove(pid);
            Interlocked.Decrement(ref _sessions);
        }

        log.SessionsChanged();
    }

    private void Evict(NamespaceLog log)
    {
        var dropped = log.Packets.Dequeue();
        log.Bytes -= dropped.Size;
        log.EvictedUpTo = dropped.Offset;
        Interlocked.Decrement(ref _packets);
        Interlocked.Add(ref _bytes, -dropped.Size);
    }

    /// <summary>Drops expired packets and sessions everywhere, and the logs left empty (bounded: what expired).</summary>
    private void Sweep()
    {
        var now = Now;
        List<string>? expiredIn = null;
        foreach (var (name, log) in _logs)
        {
            lock (log)
            {
                if (log.Removed)
                {
                    continue;
                }

                EvictExpired(log, now, sweep: true);
                if (log.ReportWhenNoSessions && log.Sessions.Count == 0)
                {
                    log.ReportWhenNoSessions = false;
                    (expiredIn ??= []).Add(name);
                }

                if (log.Packets.Count == 0 && log.Sessions.Count == 0 && !_hasSockets(name))
                {
                    log.Removed = true;
                    _logs.TryRemove(new KeyValuePair<string, NamespaceLog>(name, log));
                }
            }
        }

        foreach (var name in expiredIn ?? [])
        {
            _sessionsExpired(name);
        }
    }

    private sealed class NamespaceLog
    {
        public Queue<KeptPacket> Packets { get; } = new();

        public Dictionary<string, KeptSession> Sessions { get; } = new(StringComparer.Ordinal);

        public long Bytes { get; set; }

        /// <summary>Offset of the newest packet kept in this log so far (0: none).</summary>
        public long Newest { get; set; }

        /// <summary>Offset of the newest packet dropped from this log (0: none).</summary>
        public long EvictedUpTo { get; set; }

        public bool Removed { get; set; }

        /// <summary>No kept session expires before this time (<see cref="Environment.TickCount64"/>; MaxValue: none kept).</summary>
        public long SessionsDueAt { get; set; } = long.MaxValue;

        /// <summary>Sessions were kept here since the last report of "no session left" to the server.</summary>
        public bool ReportWhenNoSessions { get; set; }

        /// <summary><see cref="Sessions"/>' count, readable without the lock.</summary>
        public int SessionCount;

        public void SessionsChanged() => Volatile.Write(ref SessionCount, Sessions.Count);
    }

    private readonly record struct KeptPacket(long Offset, EncodedPacket Packet, BroadcastOptions Options, long At, long Size);

    private sealed record KeptSession(PersistedSession Session, long DisconnectedAt);
}

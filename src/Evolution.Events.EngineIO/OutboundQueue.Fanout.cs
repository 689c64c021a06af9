namespace Evolution.Events.EngineIO;

internal sealed partial class OutboundQueue
{
    [ThreadStatic]
    private static FanoutRounds.Round? t_round; // the round this thread's wakes are counted in (none outside a fan-out)

    /// <summary>
    /// The fan-out rounds of one fan-out loop: a fan-out's wakes are held back while the writers the loop's earlier
    /// fan-out woke have not all resumed (group commit), so that under load a fan-out's writers run after the last
    /// one's instead of ahead of its stragglers, and take the events that came meanwhile in one write; with nothing in
    /// flight nothing waits.
    /// </summary>
    /// <remarks>
    /// <para>
    /// A fan-out (one event, or a corked run of events, queued for many connections) marks itself with
    /// <see cref="Begin"/>. When no earlier round of this loop is in flight it runs as it would without the scope: its
    /// writers wake as usual (each as its packet is queued, or at the end of its cork), and the scope counts those
    /// wakes: that is the round in flight. Each writer the round woke counts itself out when it resumes.
    /// </para>
    /// <para>
    /// A fan-out that starts while a round is in flight holds its wakes: the queues it fills are set aside, and the last
    /// writer of the round to resume wakes them all, as the next round. Fan-outs that start meanwhile add to the same
    /// held wakes, and a queue is held once however many packets it gets: those packets leave in one write. A lone
    /// event is never delayed (nothing is in flight); under load, a held writer waits for the writers woken before
    /// it, which the thread pool would mostly have run first anyway.
    /// </para>
    /// <para>
    /// Bounded: held wakes are released after <see cref="MaxHold"/> even if the round has not finished. A packet queued
    /// meanwhile for a held queue from elsewhere (a ping, an ack) waits with it.
    /// </para>
    /// </remarks>
    /// <param name="maxHold">Longest time a fan-out's wakes are held; <see cref="DefaultMaxHold"/> when null.</param>
    public sealed class FanoutRounds(TimeSpan? maxHold = null) : IDisposable
    {
        /// <summary>The default of <see cref="MaxHold"/>.</summary>
        public static readonly TimeSpan DefaultMaxHold = TimeSpan.FromMilliseconds(100);

        private readonly Lock _lock = new();
        private Round? _inFlight; // the round whose writers have not all resumed
        private List<OutboundQueue>? _held; // wakes held until they have
        private List<OutboundQueue>? _spare; // the last held list, emptied: the next hold's
        private long _heldSince; // Environment.TickCount64 when the first of them was held
        private Timer? _holdTimer;
        private long _fanoutsHeld;
        private bool _disposed;

        /// <summary>Longest time a fan-out's wakes are held for the round in flight to finish.</summary>
        public TimeSpan MaxHold { get; } = maxHold ?? DefaultMaxHold;

        /// <summary>Fan-outs that started while an earlier round was in flight, their wakes held (diagnostics).</summary>
        public long FanoutsHeld => Interlocked.Read(ref _fanoutsHeld);

        /// <summary>Whether a round's writers are still to resume (diagnostics).</summary>
        public bool InFlight
        {
            get
            {
                lock (_lock)
                {
                    return _inFlight is not null;
                }
            }
        }

        /// <summary>
        /// Marks one fan-out on this thread until the returned scope ends: its wakes run at once when no earlier
        /// fan-out's writers are still to resume, and are held until they have otherwise. Wrap a cork in it, never the
        /// other way round (inside a cork, or inside another fan-out, the scope does nothing). A scope cannot span an
        /// <c>await</c>; like a cork's, its end may wake writers, so it must not end under a lock.
        /// </summary>
        /// <example>
        /// <code>
        /// using (rounds.Begin())
        /// using (OutboundQueue.Cork())
        /// {
        ///     foreach (var e in run)
        ///     {
        ///         Broadcast(e);
        ///     }
        /// }
        /// </code>
        /// </example>
        public Scope Begin()
        {
            if (t_round is not null || t_corkDepth > 0)
            {
                return default;
            }

            lock (_lock)
            {
                if (_inFlight is null)
                {
                    t_round = _inFlight = new Round(this);
                    return new Scope(this, holding: false);
                }
            }

            Interlocked.Increment(ref _fanoutsHeld);
            t_corkDepth++; // collects the wakes (t_corked), as a cork does
            return new Scope(this, holding: true);
        }

        /// <summary>Stops the hold timer; held wakes, if any, go now.</summary>
        public void Dispose()
        {
            List<OutboundQueue>? held;
            lock (_lock)
            {
                _disposed = true;
                _holdTimer?.Dispose();
                held = _held;
                _held = null;
            }

            if (held is not null)
            {
                foreach (var queue in held)
                {
                    queue.WakeNow();
                }
            }
        }

        /// <summary>The scope of <see cref="Begin"/>.</summary>
        public readonly ref struct Scope
        {
            private readonly FanoutRounds? _owner;
            private readonly bool _holding;

            internal Scope(FanoutRounds owner, bool holding) => (_owner, _holding) = (owner, holding);

            /// <summary>Ends the fan-out: a counted one is in flight until its writers resume; a holding one hands over its wakes.</summary>
            public void Dispose()
            {
                if (_owner is null)
                {
                    return;
                }

                if (_holding)
                {
                    _owner.EndHolding();
                    return;
                }

                var round = t_round!;
                t_round = null;
                round.Release();
            }
        }

        /// <summary>A round in flight: the writers it woke that have not resumed yet, plus one for its starter until it ends.</summary>
        internal sealed class Round(FanoutRounds owner)
        {
            private int _outstanding = 1;

            public void Add() => Interlocked.Increment(ref _outstanding);

            public void Release()
            {
                if (Interlocked.Decrement(ref _outstanding) == 0)
                {
                    owner.Finished(this);
                }
            }
        }

        private void EndHolding()
        {
            t_corkDepth--;
            if (TakeCorked() is not { } corked)
            {
                return;
            }

            Round? started = null;
            lock (_lock)
            {
                if (_inFlight is not null && !_disposed)
                {
                    if (_held is null || _held.Count == 0)
                    {
                        _heldSince = Environment.TickCount64;
                        (_holdTimer ??= new Timer(static state => ((FanoutRounds)state!).ReleaseOverdue(), this,
                            Timeout.Infinite, Timeout.Infinite)).Change(MaxHold, Timeout.InfiniteTimeSpan);
                    }

                    _held ??= Interlocked.Exchange(ref _spare, null) ?? new List<OutboundQueue>(corked.Count);
                    _held.AddRange(corked);
                }
                else
                {
                    _inFlight = started = new Round(this); // the round finished meanwhile: these wakes start the next one
                }
            }

            if (started is not null)
            {
                WakeRound(started, corked, afterCork: true);
            }

            ReturnCorked(corked);
        }

        /// <summary>The last writer of <paramref name="round"/> resumed (or its starter ended after them): the held wakes go now.</summary>
        private void Finished(Round round)
        {
            List<OutboundQueue>? held;
            Round next;
            lock (_lock)
            {
                if (_inFlight != round)
                {
                    return; // overtaken: its held wakes were released when overdue
                }

                held = _held;
                if (held is null || held.Count == 0)
                {
                    _inFlight = null;
                    return;
                }

                next = HeldBecomeRoundLocked();
                _holdTimer!.Change(Timeout.Infinite, Timeout.Infinite);
            }

            WakeHeld(next, held);
        }

        /// <summary><see cref="MaxHold"/> passed with wakes still held: they go now, as a new round.</summary>
        private void ReleaseOverdue()
        {
            List<OutboundQueue>? held;
            Round next;
            lock (_lock)
            {
                held = _held;
                if (held is null || held.Count == 0 || _disposed)
                {
                    return;
                }

                var left = MaxHold.TotalMilliseconds - (Environment.TickCount64 - _heldSince);
                if (left > 0)
                {
                    _holdTimer!.Change(TimeSpan.FromMilliseconds(left), Timeout.InfiniteTimeSpan);
                    return;
                }

                next = HeldBecomeRoundLocked();
            }

            WakeHeld(next, held);
        }

        /// <summary>Under the lock: the held wakes (taken by the caller) become the round in flight.</summary>
        private Round HeldBecomeRoundLocked()
        {
            _held = null;
            return _inFlight = new Round(this);
        }

        /// <summary>
        /// Wakes the held queues as <paramref name="round"/>, through the thread pool (never inline: this runs inside a
        /// writer's GetResult, or on the hold timer), then keeps their list for the next hold.
        /// </summary>
        private void WakeHeld(Round round, List<OutboundQueue> held)
        {
            WakeRound(round, held, afterCork: false);
            ClearForReuse(held);
            Volatile.Write(ref _spare, held);
        }

        private static void WakeRound(Round round, List<OutboundQueue> queues, bool afterCork)
        {
            var outer = t_round;
            t_round = round;
            try
            {
                foreach (var queue in queues)
                {
                    queue.WakeNow(afterCork);
                }
            }
            finally
            {
                t_round = outer;
            }

            round.Release();
        }
    }
}

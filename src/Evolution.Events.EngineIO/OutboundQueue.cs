using System.Buffers;
using System.Threading.Tasks.Sources;
using Evolution.Events.EngineIO.Protocol;

namespace Evolution.Events.EngineIO;

/// <summary>
/// The outbound queue of one connection: bounded by packets and by bytes, filled by any thread without
/// waiting, drained by one writer in batches (every queued frame up to a budget, into one write).
/// </summary>
/// <remarks>
/// <para>
/// Built to exist once per connection: a ring of packets under a small lock, rented from the shared
/// array pool on the first packet and given back whenever the queue empties (an idle queue holds a few
/// dozen bytes and no ring); no allocation per packet (the packets' bytes are
/// shared between connections, never copied); the writer waits without allocating (the queue is its own
/// reusable <see cref="IValueTaskSource{TResult}"/>), and its continuation never runs on the enqueuing thread
/// (the one exception, a cork's big batch, is below).
/// </para>
/// <para>
/// The queue does not apply an <see cref="OverflowPolicy"/> itself: <see cref="TryEnqueue"/> says the
/// packet did not fit, and its owner drops the packet or closes the connection.
/// A fan-out that enqueues many packets for many connections wraps itself in <see cref="Cork"/> so that
/// each connection's writer wakes once, at the end, and writes them all at once. A loop of fan-outs also marks each
/// one with its <see cref="FanoutRounds"/>, so that under load the next fan-outs' wakes wait for the writers the last
/// one woke, and leave together.
/// </para>
/// <para>
/// At the end of a cork, a writer that allows it (a WebSocket's, see <see cref="WaitToReadAsync(bool, CancellationToken)"/>) and has at
/// least <see cref="InlineWakeBytes"/> queued is run on the corking thread, until its first wait, instead of on
/// the thread pool: its batch goes out while the shared frames are still in the CPU's caches, without a hop,
/// and the fan-out cannot run ahead of the writes. Smaller batches still wake on the thread pool, where they
/// can gather the next corks' packets into the same write (measured: bench/analysis.md).
/// </para>
/// </remarks>
internal sealed partial class OutboundQueue : IValueTaskSource<bool>
{
    /// <summary>Packets the ring holds when first allocated; a ring grown past this is released once empty.</summary>
    public const int InitialCapacity = 8;

    /// <summary>
    /// Queued bytes from which the end of a <see cref="Cork"/> runs a writer that allows it on the corking thread,
    /// at once, instead of handing it to the thread pool (see <see cref="Cork"/>).
    /// </summary>
    public const int InlineWakeBytes = 4096;

    private readonly Lock _lock = new();
    private readonly int _maxPackets;
    private readonly long _maxBytes;
    private OutboundPacket[]? _ring;
    private int _head;
    private int _count;
    private long _bytes;
    private bool _completed;

    // the writer's wait: one at a time, without allocation (any other concurrent wait, rare, gets a task)
    // continuations run on the thread pool, but for a cork's big batch (WakeNow: switched off for that one wake, under the lock)
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };
    private bool _waiting;
    private bool _inlineWaiter; // the waiting writer may run on the thread that ends a cork (WaitToReadAsync)
    private bool _coreInUse; // handed out and not yet read back (GetResult): a woken reader may still be on its way
    private bool _deferred;
    private CancellationToken _waitToken;
    private CancellationTokenRegistration _registration;
    private List<TaskCompletionSource<bool>>? _otherWaiters;
    private long _wakeups;
    private FanoutRounds.Round? _round; // the fan-out round that woke the writer, until it resumes (FanoutRounds)

    /// <summary>A queue that holds at most <paramref name="maxPackets"/> packets and <paramref name="maxBytes"/> bytes.</summary>
    public OutboundQueue(int maxPackets, long maxBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxPackets);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxBytes);
        _maxPackets = maxPackets;
        _maxBytes = maxBytes;
    }

    /// <summary>Packets queued now.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    /// <summary>Bytes queued now (the packets' payloads).</summary>
    public long Bytes
    {
        get
        {
            lock (_lock)
            {
                return _bytes;
            }
        }
    }

    /// <summary>Packets and bytes queued now, read together.</summary>
    public (int Packets, long Bytes) Queued
    {
        get
        {
            lock (_lock)
            {
                return (_count, _bytes);
            }
        }
    }

    /// <summary>True once <see cref="Complete"/> was called: nothing more is queued.</summary>
    public bool IsCompleted => Volatile.Read(ref _completed);

    /// <summary>How many times a waiting writer was woken (diagnostics: with corking, fewer than packets queued).</summary>
    public long Wakeups => Interlocked.Read(ref _wakeups);

    /// <summary>Whether a writer is waiting now (diagnostics: an idle connection's writer is).</summary>
    public bool HasWaiter
    {
        get
        {
            lock (_lock)
            {
                return _waiting;
            }
        }
    }

    /// <summary>
    /// Defers writer wake-ups on this thread until the returned scope ends: every queue that gets packets
    /// meanwhile wakes its writer once, at the end, so a batch of packets leaves in one write per connection
    /// instead of one per packet. Nothing waits for a timer: the scope ends when its caller's loop does.
    /// Scopes nest (the outermost one wakes). A scope cannot span an <c>await</c> (it is a <c>ref struct</c>).
    /// Ending the outermost scope may run WebSocket writers with big batches on this thread (until each one's
    /// first wait: a full socket buffer, or an empty queue), so it must not end under a lock.
    /// </summary>
    /// <example>
    /// <code>
    /// using (OutboundQueue.Cork())
    /// {
    ///     foreach (var e in batch)
    ///     {
    ///         Broadcast(e);
    ///     }
    /// }
    /// </code>
    /// </example>
    public static CorkScope Cork()
    {
        t_corkDepth++;
        return new CorkScope(true);
    }

    [ThreadStatic]
    private static int t_corkDepth;

    [ThreadStatic]
    private static List<OutboundQueue>? t_corked;

    /// <summary>The scope of <see cref="Cork"/>: disposing it wakes the writers it deferred.</summary>
    public readonly ref struct CorkScope
    {
        private readonly bool _active;

        internal CorkScope(bool active) => _active = active;

        /// <summary>Ends the scope; the outermost one wakes every writer deferred on this thread.</summary>
        public void Dispose()
        {
            if (!_active || --t_corkDepth > 0)
            {
                return;
            }

            // a writer woken inline may cork again on this thread: it gets a list of its own
            if (TakeCorked() is not { } corked)
            {
                return;
            }

            for (var i = 0; i < corked.Count; i++)
            {
                corked[i].WakeNow(afterCork: true);
            }

            ReturnCorked(corked);
        }
    }

    /// <summary>Takes the queues deferred on this thread (null when none), leaving the thread without a list until <see cref="ReturnCorked"/>.</summary>
    private static List<OutboundQueue>? TakeCorked()
    {
        var corked = t_corked;
        if (corked is null || corked.Count == 0)
        {
            return null;
        }

        t_corked = null;
        return corked;
    }

    /// <summary>Gives a woken cork's list back to this thread for its next cork.</summary>
    private static void ReturnCorked(List<OutboundQueue> corked)
    {
        ClearForReuse(corked);
        t_corked ??= corked;
    }

    /// <summary>Empties a list of woken queues to use again; one huge fan-out's does not keep its large array.</summary>
    private static void ClearForReuse(List<OutboundQueue> queues)
    {
        queues.Clear();
        if (queues.Capacity > 1024)
        {
            queues.Capacity = 64;
        }
    }

    /// <summary>Queues a packet if it fits both bounds; false when it does not, or when the queue is completed.</summary>
    public bool TryEnqueue(in OutboundPacket packet) => Enqueue(packet, bounded: true, onlyIfEmpty: false);

    /// <summary>Queues a packet only if the queue is empty (a volatile packet: never waits behind others).</summary>
    public bool TryEnqueueVolatile(in OutboundPacket packet) => Enqueue(packet, bounded: true, onlyIfEmpty: true);

    /// <summary>Queues a packet past the bounds (control packets that must not be refused); false only when completed.</summary>
    public bool EnqueueUnbounded(in OutboundPacket packet) => Enqueue(packet, bounded: false, onlyIfEmpty: false);

    /// <summary>Takes the oldest packet.</summary>
    public bool TryDequeue(out OutboundPacket packet)
    {
        lock (_lock)
        {
            if (_count == 0)
            {
                packet = default;
                return false;
            }

            packet = TakeOne();
            ReleaseIfEmpty();
            return true;
        }
    }

    /// <summary>
    /// Takes the oldest packets in order, as many as fit <paramref name="destination"/> and
    /// <paramref name="maxBytes"/> (at least one, however large, so a big packet is never stuck); returns how many.
    /// </summary>
    public int TryDrain(Span<OutboundPacket> destination, long maxBytes)
    {
        lock (_lock)
        {
            var taken = 0;
            long bytes = 0;
            while (taken < destination.Length && _count > 0)
            {
                var length = _ring![_head].Bytes.Length;
                if (taken > 0 && bytes + length > maxBytes)
                {
                    break;
                }

                bytes += length;
                destination[taken++] = TakeOne();
            }

            ReleaseIfEmpty();
            return taken;
        }
    }

    /// <summary>Nothing more is queued from now on; the writer drains what is left, then its wait returns false.</summary>
    public void Complete()
    {
        lock (_lock)
        {
            if (_completed)
            {
                return;
            }

            Volatile.Write(ref _completed, true);
        }

        Wake(deferrable: false);
    }

    /// <summary>
    /// Waits until a packet is queued (true) or the queue is completed and empty (false). One writer waits
    /// at a time without allocating; another concurrent wait is served too, through a task. True is a hint:
    /// another reader may have taken the packets meanwhile, so a reader that drains nothing waits again.
    /// </summary>
    public ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default) =>
        WaitToReadAsync(inlineAfterCork: false, cancellationToken);

    /// <summary>
    /// <see cref="WaitToReadAsync(CancellationToken)"/>, for a writer that may be resumed on the thread that ends a cork.
    /// </summary>
    /// <param name="inlineAfterCork">
    /// The waiter may be resumed on the thread that ends a <see cref="Cork"/>, when at least
    /// <see cref="InlineWakeBytes"/> are queued then: a writer that only frames and writes (a WebSocket's),
    /// never one that completes an HTTP request (a poll's). Every other wake resumes it on the thread pool.
    /// </param>
    /// <param name="cancellationToken">Ends the wait with <see cref="OperationCanceledException"/>.</param>
    public ValueTask<bool> WaitToReadAsync(bool inlineAfterCork, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            if (_count > 0)
            {
                return new ValueTask<bool>(true);
            }

            if (_completed)
            {
                return new ValueTask<bool>(false);
            }

            if (cancellationToken.IsCancellationRequested)
            {
                return ValueTask.FromCanceled<bool>(cancellationToken);
            }

            if (_waiting || _coreInUse)
            {
                // a second reader (a poll that overlaps a WebSocket taking over, say), or one that waits again before
                // the reader woken with it has read its result (resetting the core would take that result away): rare,
                // so a task
                var other = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                (_otherWaiters ??= []).Add(other);
                return new ValueTask<bool>(other.Task.WaitAsync(cancellationToken));
            }

            _core.Reset();
            _core.RunContinuationsAsynchronously = true; // an inline wake's switch ends with it
            _waiting = true;
            _coreInUse = true;
            _inlineWaiter = inlineAfterCork;
            _waitToken = cancellationToken;
        }

        if (cancellationToken.CanBeCanceled)
        {
            _registration = cancellationToken.UnsafeRegister(
                static (state, token) => ((OutboundQueue)state!).CancelWait(token), this);
        }

        return new ValueTask<bool>(this, _core.Version);
    }

    private bool Enqueue(in OutboundPacket packet, bool bounded, bool onlyIfEmpty)
    {
        var length = packet.Bytes.Length;
        lock (_lock)
        {
            if (_completed
                || (onlyIfEmpty && _count > 0)
                || (bounded && (_count >= _maxPackets || _bytes + length > _maxBytes)))
            {
                return false;
            }

            var ring = _ring;
            if (ring is null)
            {
                ring = _ring = SmallRings.Rent();
            }
            else if (_count == ring.Length)
            {
                ring = Grow(ring);
            }

            var tail = _head + _count;
            if (tail >= ring.Length)
            {
                tail -= ring.Length;
            }

            ring[tail] = packet;
            _count++;
            _bytes += length;
            if (!HasReaderToWake || _deferred)
            {
                return true;
            }
        }

        Wake(deferrable: true);
        return true;
    }

    private OutboundPacket[] Grow(OutboundPacket[] ring)
    {
        var bigger = ArrayPool<OutboundPacket>.Shared.Rent(ring.Length * 2);
        var first = Math.Min(_count, ring.Length - _head);
        Array.Copy(ring, _head, bigger, 0, first);
        Array.Copy(ring, 0, bigger, first, _count - first);
        Release(ring, clear: true); // a pool keeps no packet's bytes alive
        _head = 0;
        _ring = bigger;
        return bigger;
    }

    private OutboundPacket TakeOne()
    {
        var ring = _ring!;
        var packet = ring[_head];
        ring[_head] = default; // the bytes are not kept alive by a drained slot
        _head = _head + 1 == ring.Length ? 0 : _head + 1;
        _count--;
        _bytes -= packet.Bytes.Length;
        return packet;
    }

    private void ReleaseIfEmpty()
    {
        if (_count == 0)
        {
            _head = 0;
            if (_ring is { } ring)
            {
                // an idle connection keeps no ring; the drained slots are already cleared (TakeOne)
                _ring = null;
                Release(ring, clear: false);
            }
        }
    }

    private static void Release(OutboundPacket[] ring, bool clear)
    {
        if (ring.Length == InitialCapacity)
        {
            if (clear)
            {
                Array.Clear(ring);
            }

            SmallRings.Return(ring);
        }
        else
        {
            ArrayPool<OutboundPacket>.Shared.Return(ring, clearArray: clear);
        }
    }

    /// <summary>
    /// The small rings of every queue, shared: a broadcast to N idle connections takes N rings at once and gives them
    /// back as each writer drains, which <see cref="ArrayPool{T}.Shared"/> (a few arrays per core) would mostly
    /// allocate and drop, a gen-0 collection every few events at low rates. Bounded: at most
    /// <see cref="MaxKept"/> rings (about 1.8 MB) are kept; an idle connection holds none.
    /// </summary>
    private static class SmallRings
    {
        public const int MaxKept = 8192;
        private static readonly Lock Gate = new();
        private static readonly Stack<OutboundPacket[]> Free = new(MaxKept);

        public static OutboundPacket[] Rent()
        {
            lock (Gate)
            {
                if (Free.TryPop(out var ring))
                {
                    return ring;
                }
            }

            return new OutboundPacket[InitialCapacity];
        }

        public static void Return(OutboundPacket[] ring)
        {
            lock (Gate)
            {
                if (Free.Count < MaxKept)
                {
                    Free.Push(ring);
                }
            }
        }
    }

    /// <summary>Whether a reader waits (the core's, or another one on a task, which may wait alone once the core's was cancelled); under the lock.</summary>
    private bool HasReaderToWake => _waiting || _otherWaiters is not null;

    /// <summary>Wakes the waiting writer(s), or, inside a cork on this thread, puts the queue on the cork's list.</summary>
    private void Wake(bool deferrable)
    {
        if (deferrable && t_corkDepth > 0)
        {
            lock (_lock)
            {
                if (!HasReaderToWake || _deferred)
                {
                    return;
                }

                _deferred = true;
            }

            (t_corked ??= new List<OutboundQueue>(64)).Add(this);
            return;
        }

        WakeNow();
    }

    private void WakeNow(bool afterCork = false)
    {
        bool wake, result;
        List<TaskCompletionSource<bool>>? others;
        lock (_lock)
        {
            wake = _waiting;
            if (wake && afterCork && _inlineWaiter && _bytes >= InlineWakeBytes)
            {
                // for this wake only: no other wake can reach the core before the writer waits again (_waiting is
                // false until then), and that wait switches it back
                _core.RunContinuationsAsynchronously = false;
            }

            result = _count > 0 || !_completed; // false: completed and drained (a wake may find nothing: wait again)
            _waiting = false;
            _deferred = false;
            others = _otherWaiters;
            _otherWaiters = null;
        }

        if (wake)
        {
            Interlocked.Increment(ref _wakeups);
            if (t_round is { } round)
            {
                round.Add(); // counted out when the writer resumes (GetResult)
                _round = round;
            }

            _core.SetResult(result); // if switched inline above, the writer runs here until its first wait
        }

        if (others is not null)
        {
            foreach (var other in others)
            {
                other.TrySetResult(result);
            }
        }
    }

    private void CancelWait(CancellationToken token)
    {
        lock (_lock)
        {
            if (!_waiting || _waitToken != token)
            {
                return;
            }

            _waiting = false;
            _deferred = false;
        }

        _core.SetException(new OperationCanceledException(token));
    }

    bool IValueTaskSource<bool>.GetResult(short token)
    {
        var registration = _registration;
        _registration = default;
        registration.Unregister(); // never blocks: a callback running now finds the wait over
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            // no lock on this per-wake path: a reader that still reads true just takes the task path once
            Volatile.Write(ref _coreInUse, false);
            if (_round is { } round)
            {
                _round = null;
                round.Release();
            }
        }
    }

    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token,
        ValueTaskSourceOnCompletedFlags flags) => _core.OnCompleted(continuation, state, token, flags);
}

using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using System.Threading.Channels;

namespace Evolution.Events.Gateway.Events;

/// <summary>
/// In-process bus: each subscription owns a queue of at most <see cref="Capacity"/> events (backpressure to
/// producers instead of growing without limit). A batch is published atomically: the publisher waits, without
/// writing anything, until every subscription has room for the whole batch, then writes it in one section
/// with no await (under a lock). So a cancelled publish (the producer's request aborted) leaves nothing
/// behind, batches never interleave, and <see cref="Complete"/> splits publishes cleanly into "wholly in"
/// and "refused". A batch larger than the capacity is admitted once a subscription's queue is empty.
/// </summary>
public sealed class InProcessEventBus : IEventBus
{
    /// <summary>The default per-subscription capacity (events).</summary>
    public const int DefaultCapacity = 65_536;

    private readonly Lock _writeLock = new();
    private ImmutableArray<Subscription> _subscriptions = [];
    private volatile bool _completed;

    public InProcessEventBus()
        : this(DefaultCapacity)
    {
    }

    /// <param name="capacity">Events a subscription may be behind before publishers wait.</param>
    public InProcessEventBus(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
    }

    /// <summary>Events a subscription may be behind before publishers wait.</summary>
    public int Capacity { get; }

    public bool IsCompleted => _completed;

    public async ValueTask PublishAsync(IReadOnlyList<GatewayEvent> batch, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            Task room;
            lock (_writeLock)
            {
                if (_completed)
                    throw new EventBusCompletedException();
                var full = _subscriptions.FirstOrDefault(s => !s.HasRoomFor(batch.Count));
                if (full is null)
                {
                    foreach (var subscription in _subscriptions)
                        subscription.WriteAll(batch);
                    return;
                }
                room = full.WaitForRoom(batch.Count);
            }
            // Nothing of this batch is written yet: a cancellation here publishes none of it.
            await room.WaitAsync(cancellationToken);
        }
    }

    public IEventSubscription Subscribe()
    {
        var subscription = new Subscription(this);
        lock (_writeLock)
        {
            if (_completed)
                subscription.Complete();
            else
                _subscriptions = _subscriptions.Add(subscription);
        }
        return subscription;
    }

    public void Complete()
    {
        lock (_writeLock)
        {
            _completed = true;
            foreach (var subscription in _subscriptions)
                subscription.Complete();
        }
    }

    private void Remove(Subscription subscription)
    {
        lock (_writeLock)
            _subscriptions = _subscriptions.Remove(subscription);
    }

    private sealed class Subscription : IEventSubscription
    {
        private readonly InProcessEventBus _bus;
        private readonly Channel<GatewayEvent> _channel =
            Channel.CreateUnbounded<GatewayEvent>(new UnboundedChannelOptions { SingleReader = true });
        private int _pending;
        private int _roomNeeded;
        private TaskCompletionSource? _room;

        public Subscription(InProcessEventBus bus)
        {
            _bus = bus;
            Reader = new CountingReader(this);
        }

        public ChannelReader<GatewayEvent> Reader { get; }

        /// <summary>Room for <paramref name="count"/> more events (an empty queue admits any batch).</summary>
        public bool HasRoomFor(int count)
        {
            var pending = Volatile.Read(ref _pending);
            return pending <= 0 || pending + count <= _bus.Capacity;
        }

        /// <summary>Under the bus's write lock: writes the whole batch, no await.</summary>
        public void WriteAll(IReadOnlyList<GatewayEvent> batch)
        {
            Interlocked.Add(ref _pending, batch.Count);
            foreach (var e in batch)
                _channel.Writer.TryWrite(e);
        }

        /// <summary>Under the bus's write lock: a task completed once the reader made room for <paramref name="count"/>.</summary>
        public Task WaitForRoom(int count)
        {
            var room = Volatile.Read(ref _room);
            if (room is null)
            {
                Volatile.Write(ref _roomNeeded, count);
                room = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                Interlocked.Exchange(ref _room, room); // a full fence: the check below sees the reader's latest count
            }
            else
            {
                Volatile.Write(ref _roomNeeded, Math.Min(Volatile.Read(ref _roomNeeded), count));
                Interlocked.MemoryBarrier();
            }
            // the reader may have made room before it could see the waiter
            return HasRoomFor(count) ? Task.CompletedTask : room.Task;
        }

        public void Complete()
        {
            _channel.Writer.TryComplete();
            WakePublishers();
        }

        public void Dispose()
        {
            _bus.Remove(this);
            Complete();
        }

        private void OnRead()
        {
            var pending = Interlocked.Decrement(ref _pending);
            if (Volatile.Read(ref _room) is not null && (pending <= 0 || pending + Volatile.Read(ref _roomNeeded) <= _bus.Capacity))
                WakePublishers();
        }

        private void WakePublishers() => Interlocked.Exchange(ref _room, null)?.TrySetResult();

        /// <summary>The channel's reader, counting what is taken so that waiting publishers learn about room.</summary>
        private sealed class CountingReader(Subscription subscription) : ChannelReader<GatewayEvent>
        {
            private readonly ChannelReader<GatewayEvent> _inner = subscription._channel.Reader;

            public override Task Completion => _inner.Completion;

            public override bool CanCount => true;

            /// <summary>Events written and not read yet (the single-reader channel itself cannot count).</summary>
            public override int Count => Math.Max(0, Volatile.Read(ref subscription._pending));

            public override bool TryRead([MaybeNullWhen(false)] out GatewayEvent item)
            {
                if (!_inner.TryRead(out item))
                    return false;
                subscription.OnRead();
                return true;
            }

            public override bool CanPeek => _inner.CanPeek;

            public override bool TryPeek([MaybeNullWhen(false)] out GatewayEvent item) => _inner.TryPeek(out item);

            public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default) =>
                _inner.WaitToReadAsync(cancellationToken);
        }
    }
}

using System.Collections.Immutable;
using System.Threading.Channels;

namespace Evolution.Events.Gateway.Events;

/// <summary>
/// In-process bus: each subscription owns a bounded channel. Publishing waits when a subscriber
/// is 64k events behind (backpressure to producers) instead of growing without limit.
/// </summary>
public sealed class InProcessEventBus : IEventBus
{
    private const int Capacity = 65_536;
    private ImmutableArray<Subscription> _subscriptions = [];

    public async ValueTask PublishAsync(IReadOnlyList<GatewayEvent> batch, CancellationToken cancellationToken = default)
    {
        var subscriptions = _subscriptions;
        foreach (var subscription in subscriptions)
        {
            foreach (var e in batch)
            {
                if (!subscription.Channel.Writer.TryWrite(e))
                    await subscription.Channel.Writer.WriteAsync(e, cancellationToken);
            }
        }
    }

    public IEventSubscription Subscribe()
    {
        var subscription = new Subscription(this);
        ImmutableInterlocked.Update(ref _subscriptions, list => list.Add(subscription));
        return subscription;
    }

    private void Remove(Subscription subscription) =>
        ImmutableInterlocked.Update(ref _subscriptions, list => list.Remove(subscription));

    private sealed class Subscription(InProcessEventBus bus) : IEventSubscription
    {
        public Channel<GatewayEvent> Channel { get; } = System.Threading.Channels.Channel.CreateBounded<GatewayEvent>(
            new BoundedChannelOptions(Capacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

        public ChannelReader<GatewayEvent> Reader => Channel.Reader;

        public void Dispose()
        {
            bus.Remove(this);
            Channel.Writer.TryComplete();
        }
    }
}

using System.Threading.Channels;

namespace Evolution.Events.Gateway.Events;

/// <summary>
/// The seam between ingestion and fan-out. The in-process implementation is
/// <see cref="InProcessEventBus"/>; a Redis one can implement the same two members.
/// A batch is delivered to each subscription in order.
/// </summary>
public interface IEventBus
{
    /// <summary>Publishes a batch in order; completes once the bus has accepted every event.</summary>
    ValueTask PublishAsync(IReadOnlyList<GatewayEvent> batch, CancellationToken cancellationToken = default);

    /// <summary>Opens a subscription that receives every event published after this call.</summary>
    IEventSubscription Subscribe();
}

/// <summary>A subscription to the bus; dispose to stop receiving.</summary>
public interface IEventSubscription : IDisposable
{
    ChannelReader<GatewayEvent> Reader { get; }
}

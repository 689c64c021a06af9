using System.Threading.Channels;

namespace Evolution.Events.Gateway.Events;

/// <summary>
/// The seam between ingestion and fan-out. The in-process implementation is
/// <see cref="InProcessEventBus"/>; a Redis one can implement the same members.
/// A batch is delivered to each subscription in order, whole or not at all.
/// </summary>
public interface IEventBus
{
    /// <summary>
    /// Publishes a batch in order, atomically: when this completes every event was accepted; when it throws
    /// (cancellation while waiting for room, <see cref="EventBusCompletedException"/>) none was.
    /// </summary>
    ValueTask PublishAsync(IReadOnlyList<GatewayEvent> batch, CancellationToken cancellationToken = default);

    /// <summary>Opens a subscription that receives every event published after this call.</summary>
    IEventSubscription Subscribe();

    /// <summary>True once <see cref="Complete"/> was called: publishing is refused.</summary>
    bool IsCompleted { get; }

    /// <summary>
    /// Stops accepting publishes (at shutdown): a batch is either wholly in before this call or refused with
    /// <see cref="EventBusCompletedException"/>. Each subscription's reader still yields what was accepted,
    /// then completes.
    /// </summary>
    void Complete();
}

/// <summary>A subscription to the bus; dispose to stop receiving.</summary>
public interface IEventSubscription : IDisposable
{
    ChannelReader<GatewayEvent> Reader { get; }
}

/// <summary>Thrown by <see cref="IEventBus.PublishAsync"/> after <see cref="IEventBus.Complete"/>: nothing of the batch was published.</summary>
public sealed class EventBusCompletedException()
    : InvalidOperationException("The event bus no longer accepts events: the server is shutting down.");

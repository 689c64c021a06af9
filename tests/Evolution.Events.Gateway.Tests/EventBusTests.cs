using Evolution.Events.Gateway.Events;

namespace Evolution.Events.Gateway.Tests;

/// <summary>
/// The real <see cref="InProcessEventBus"/> with a small capacity and a subscriber that does not read yet: the
/// only way a publish waits (in the gateway, the fan-out would have to be 64k events behind), so the path where
/// a producer's request is aborted mid-publish is reached for real here.
/// </summary>
public class EventBusTests
{
    private static List<GatewayEvent> Batch(string prefix, int count) =>
        [.. Enumerable.Range(0, count).Select(i =>
            new GatewayEvent(prefix + i, EventNames.Find("call")!, new byte[] { (byte)'{', (byte)'}' }))];

    private static List<string> Drain(IEventSubscription subscription)
    {
        var seen = new List<string>();
        while (subscription.Reader.TryRead(out var e))
            seen.Add(e.Instance);
        return seen;
    }

    [Fact]
    public async Task ABatchWhosePublishIsCancelledWhileWaitingDeliversNothing()
    {
        var bus = new InProcessEventBus(capacity: 4);
        using var subscription = bus.Subscribe();
        await bus.PublishAsync(Batch("a", 3));
        using var aborted = new CancellationTokenSource();
        // 3 queued + 3 > 4: the batch waits for room as a whole (the old bus wrote b0, then waited for b1 and b2)
        var publish = bus.PublishAsync(Batch("b", 3), aborted.Token).AsTask();
        Assert.False(publish.IsCompleted);
        await aborted.CancelAsync(); // the producer's request was aborted
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => publish);

        Assert.Equal(["a0", "a1", "a2"], Drain(subscription));
        await bus.PublishAsync(Batch("c", 2));
        Assert.Equal(["c0", "c1"], Drain(subscription));
    }

    [Fact]
    public async Task AWaitingBatchGoesInWholeOnceThereIsRoomAndBatchesNeverInterleave()
    {
        var bus = new InProcessEventBus(capacity: 4);
        using var subscription = bus.Subscribe();
        await bus.PublishAsync(Batch("a", 3));
        var waiting = bus.PublishAsync(Batch("b", 3)).AsTask();
        var other = bus.PublishAsync(Batch("x", 1)).AsTask(); // fits: 3 + 1 <= 4
        await other;
        Assert.False(waiting.IsCompleted);
        var seen = new List<string>();
        while (seen.Count < 7)
        {
            await subscription.Reader.WaitToReadAsync();
            seen.AddRange(Drain(subscription));
        }
        await waiting;
        Assert.Equal(["a0", "a1", "a2", "x0", "b0", "b1", "b2"], seen);

        // a batch larger than the capacity goes in once the queue is empty
        await bus.PublishAsync(Batch("big", 10));
        Assert.Equal(10, Drain(subscription).Count);
    }

    [Fact]
    public async Task CompleteRefusesWholeBatchesAndTheReaderEndsAfterWhatWasAccepted()
    {
        var bus = new InProcessEventBus(capacity: 4);
        using var subscription = bus.Subscribe();
        await bus.PublishAsync(Batch("a", 3));
        var waiting = bus.PublishAsync(Batch("b", 2)).AsTask();
        Assert.False(waiting.IsCompleted);

        bus.Complete();
        Assert.True(bus.IsCompleted);
        await Assert.ThrowsAsync<EventBusCompletedException>(() => waiting);
        await Assert.ThrowsAsync<EventBusCompletedException>(() => bus.PublishAsync(Batch("c", 1)).AsTask());
        var seen = new List<string>();
        while (await subscription.Reader.WaitToReadAsync())
            seen.AddRange(Drain(subscription));
        Assert.Equal(["a0", "a1", "a2"], seen);
    }
}

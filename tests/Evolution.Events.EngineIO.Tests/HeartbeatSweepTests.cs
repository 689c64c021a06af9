using System.Net;

namespace Evolution.Events.EngineIO.Tests;

/// <summary>The server's one heartbeat sweep (no timer per session): its tick, and that it stops and starts with the sessions.</summary>
public class HeartbeatSweepTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15); // a wait on a condition: generous for a loaded machine

    [Theory]
    [InlineData(25_000, 20_000, 100)] // the defaults: the coarsest tick
    [InlineData(100, 100, 10)] // the tests' shortest intervals: the finest
    [InlineData(150, 300, 15)]
    [InlineData(300, 200, 20)]
    public void The_tick_is_a_tenth_of_the_shorter_interval_within_bounds(int pingInterval, int pingTimeout, int tick)
    {
        var options = new EngineIOOptions { PingInterval = pingInterval, PingTimeout = pingTimeout };
        Assert.Equal(tick, HeartbeatSweep.TickFor(options));
    }

    [Fact]
    public async Task The_sweep_stops_with_the_last_session_and_runs_again_for_the_next()
    {
        await using var host = await EngineHost.StartAsync(o =>
        {
            o.PingInterval = 300;
            o.PingTimeout = 1500; // a poll that comes late on a loaded machine still finds its session
        });
        var sweep = host.Server.Heartbeat;
        Assert.False(sweep.IsRunning); // no session yet: no armed timer

        var (first, _) = await host.HandshakeAsync();
        Assert.True(sweep.IsRunning);
        using (var poll = await host.PollAsync(first))
        {
            Assert.Equal("2", await poll.Content.ReadAsStringAsync());
        }

        using (var close = await host.PostAsync(first, "1"))
        {
            Assert.Equal(HttpStatusCode.OK, close.StatusCode);
        }

        await WaitUntilAsync(() => host.Server.SessionCount == 0 && !sweep.IsRunning);

        // the next session is swept again: it is pinged, and closed when it does not answer
        var (second, _) = await host.HandshakeAsync();
        using (var poll = await host.PollAsync(second))
        {
            Assert.Equal("2", await poll.Content.ReadAsStringAsync());
        }

        var closed = await host.Listeners[second].Closed.WaitAsync(Wait);
        Assert.Equal(EngineCloseReason.PingTimeout, closed.Reason);
        await WaitUntilAsync(() => !sweep.IsRunning);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in time");
            await Task.Delay(10);
        }
    }
}

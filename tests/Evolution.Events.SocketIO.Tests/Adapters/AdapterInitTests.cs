using System.Diagnostics;
using Evolution.Events.SocketIO.Adapters;
using Microsoft.Extensions.Logging;

namespace Evolution.Events.SocketIO.Tests.Adapters;

/// <summary>
/// A namespace's sockets connect once its adapter's <see cref="IAdapter.InitAsync"/> has finished: a cluster adapter
/// subscribes there (the streams adapter also reads where its stream ends), and a socket that joined earlier would
/// miss the broadcasts made in between. An init that does not finish holds connects back once, for
/// <see cref="Namespace.AdapterStartWait"/>. The adapter here is the in-memory one with an init that ends when the
/// test says so, as a cluster adapter's ends when its server answers.
/// </summary>
public sealed class AdapterInitTests
{
    [Fact]
    public async Task A_connect_waits_for_the_adapters_init_and_then_gets_every_broadcast()
    {
        var init = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await TestServer.StartAsync(adapterFactory: new SlowInitAdapterFactory("/late", init.Task));
        var nsp = server.Io.Of("/late");
        await using var client = await WsSocketIOClient.OpenAsync(server.BaseUri);

        await client.SendAsync("0/late,{}");
        Assert.True(await client.IsQuietAsync(TimeSpan.FromMilliseconds(500))); // no CONNECT while the init runs
        Assert.Empty(nsp.SocketsById);

        init.SetResult();
        Assert.StartsWith("0/late,{\"sid\":", await client.NextAsync());
        nsp.Emit("first", 1);
        Assert.Equal("first", (string?)(await client.NextEventAsync("/late"))[0]);

        // another namespace of the same server never waited
        await using var other = await WsSocketIOClient.OpenAsync(server.BaseUri);
        Assert.True((await other.ConnectAsync("/")).Ok);
    }

    [Fact]
    public async Task An_init_that_does_not_finish_holds_connects_back_once_for_the_wait_with_one_warning()
    {
        using var logs = new CapturingLoggerProvider();
        var never = new TaskCompletionSource();
        await using var server = await TestServer.StartAsync(o => o.ConnectTimeout = 60_000, logs, new SlowInitAdapterFactory("/stuck", never.Task));
        server.Io.Of("/stuck");

        await using var first = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var waited = Stopwatch.StartNew();
        await first.SendAsync("0/stuck,{}");
        Assert.StartsWith("0/stuck,{\"sid\":", await first.NextAsync(Namespace.AdapterStartWait + TimeSpan.FromSeconds(5)));
        Assert.InRange(waited.Elapsed, Namespace.AdapterStartWait - TimeSpan.FromMilliseconds(100), Namespace.AdapterStartWait + TimeSpan.FromSeconds(4));

        // given up once: the next connect goes ahead at once
        await using var second = await WsSocketIOClient.OpenAsync(server.BaseUri);
        waited.Restart();
        Assert.True((await second.ConnectAsync("/stuck")).Ok);
        Assert.True(waited.Elapsed < TimeSpan.FromSeconds(2), $"the second connect took {waited.Elapsed}");

        var warning = Assert.Single(logs.Entries, e => e.EventId == 2008);
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains("/stuck", warning.Message, StringComparison.Ordinal);
    }

    /// <summary>In-memory adapters; the one of <paramref name="name"/> finishes its init with <paramref name="init"/>.</summary>
    private sealed class SlowInitAdapterFactory(string name, Task init) : IAdapterFactory
    {
        public IAdapter Create(Namespace nsp) => nsp.Name == name ? new SlowInitAdapter(nsp, init) : new InMemoryAdapter(nsp);
    }

    private sealed class SlowInitAdapter(Namespace nsp, Task init) : InMemoryAdapter(nsp)
    {
        public override ValueTask InitAsync() => new(init);
    }
}

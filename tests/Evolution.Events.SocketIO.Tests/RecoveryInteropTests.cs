using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace Evolution.Events.SocketIO.Tests;

/// <summary>
/// The stock Node socket.io-client 4.8.3 through real network cuts (tests/interop/recovery.mjs: a TCP proxy
/// the scenario cuts for 1 s and 5 s) while the server broadcasts a steady numbered stream: on WebSocket,
/// on polling and after an upgrade, the client recovers (<c>socket.recovered</c>, same id) and the stream
/// it saw has no gap and no duplicate. A client that received nothing before the cut (it sends no offset)
/// recovers too. A cut longer than the window gives a fresh session.
/// </summary>
public sealed class RecoveryInteropTests(ITestOutputHelper output)
{
    private const string Nsp = "/stream";
    private static readonly TimeSpan ScenarioTimeout = TimeSpan.FromSeconds(70);

    [Theory]
    [InlineData("websocket")]
    [InlineData("polling")]
    [InlineData("upgrade")]
    public async Task The_stock_client_recovers_every_missed_broadcast_across_cuts(string mode)
    {
        await using var server = await StartAsync(TimeSpan.FromMinutes(2), mode);
        var result = await RunWithStreamAsync(server, mode, "1,5");

        output.WriteLine(result.Output);
        var cuts = result.All("cut").ToList();
        Assert.True(cuts.Count == 2, result.Output);
        foreach (var cut in cuts)
        {
            Assert.True((bool)cut["recovered"]!, $"not recovered after the {cut["seconds"]} s cut\n{result.Output}");
            Assert.True((bool)cut["sameId"]!, result.Output);
            Assert.Equal((int)cut["lastBefore"]! + 1, (int)cut["firstAfter"]!);
            if (mode == "upgrade")
            {
                Assert.Equal("websocket", (string?)cut["transportBefore"]);
            }
        }

        var stream = result.Single("stream");
        Assert.True(((JsonArray)stream["gaps"]!).Count == 0, result.Output);
        Assert.Equal(0, (int)stream["duplicates"]!);
        Assert.Equal((int)stream["last"]! - (int)stream["first"]! + 1, (int)stream["count"]!);
        // one recovery per cut at least; a slow machine may see one more drop inside a cut (a ping timeout
        // after a reconnection the proxy cut again): every one of them must have recovered
        Assert.True(server.Io.Recovery.Recovered >= 2, result.Output);
        Assert.Equal(0, server.Io.Recovery.TooLate + server.Io.Recovery.UnknownSession);
    }

    [Fact]
    public async Task The_stock_client_that_received_no_broadcast_before_a_cut_recovers_what_was_sent_during_it()
    {
        // the stock client sends {pid} alone (no offset yet): it recovers from the point where it joined
        await using var server = await StartAsync(TimeSpan.FromMinutes(2), "websocket");
        var nsp = server.Io.Of(Nsp);
        nsp.Emit("tick", -1);                      // before the client joined: not replayed
        const int During = 5;
        var cuts = 0;
        nsp.OnConnection(socket => socket.Disconnected += (_, _) =>
        {
            // the first drop only (the session is kept by then): the ticks of the cut
            if (Interlocked.Increment(ref cuts) == 1)
            {
                for (var n = 0; n < During; n++)
                {
                    nsp.Emit("tick", n);
                }
            }
        });

        var result = await NodeRunner.RunAsync(ScenarioTimeout, "recovery.mjs", server.Url, "websocket", "1", Nsp, $"quiet:{During}");

        output.WriteLine(result.Output);
        var quiet = result.Single("quiet");
        Assert.True((bool)quiet["recovered"]!, result.Output);
        Assert.True((bool)quiet["sameId"]!, result.Output);
        Assert.Equal(Enumerable.Range(0, During), ((JsonArray)quiet["received"]!).Select(n => (int)n!));
        Assert.Equal(1, server.Io.Recovery.Recovered);
    }

    [Fact]
    public async Task A_cut_longer_than_the_window_gives_a_fresh_session()
    {
        await using var server = await StartAsync(TimeSpan.FromSeconds(1), "websocket");
        var result = await RunWithStreamAsync(server, "websocket", "3");

        var cut = result.Single("cut");
        Assert.False((bool)cut["recovered"]!, result.Output);
        Assert.False((bool)cut["sameId"]!, result.Output);
        Assert.NotEmpty((JsonArray)result.Single("stream")["gaps"]!);
        Assert.Equal(0, server.Io.Recovery.Recovered);
    }

    private static async Task<TestServer> StartAsync(TimeSpan window, string mode)
    {
        var server = await TestServer.StartAsync(o =>
        {
            o.ConnectionStateRecovery = new ConnectionStateRecoveryOptions { MaxDisconnectionDuration = window };
            if (mode == "polling")
            {
                // a poll whose response was already on its way when the cut came is only noticed by the
                // heartbeat: keep that under the cut's length
                o.Engine.PingInterval = 200;
                o.Engine.PingTimeout = 500;
            }
        });
        server.Io.Of(Nsp);
        return server;
    }

    private static async Task<NodeResult> RunWithStreamAsync(TestServer server, string mode, string cuts)
    {
        using var stop = new CancellationTokenSource();
        var nsp = server.Io.Of(Nsp);
        var stream = Task.Run(async () =>
        {
            var n = 0;
            while (!stop.IsCancellationRequested && n < 100_000)
            {
                nsp.Emit("tick", n++);
                await Task.Delay(10);
            }
        });
        try
        {
            return await NodeRunner.RunAsync(ScenarioTimeout, "recovery.mjs", server.Url, mode, cuts, Nsp);
        }
        finally
        {
            await stop.CancelAsync();
            await stream;
        }
    }
}

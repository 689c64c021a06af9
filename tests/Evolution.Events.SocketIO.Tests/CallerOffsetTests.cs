using System.Text.Json.Nodes;

namespace Evolution.Events.SocketIO.Tests;

/// <summary>
/// <see cref="SocketIOServer.EmitLocalAt"/> and <see cref="SocketIOServer.ContinueOffsets"/>: broadcasts whose
/// recovery offsets the caller gives (a cluster's shared sequence), kept even before the namespace has a socket or
/// exists, refused when not increasing, and a gap in the caller's sequence refusing recovery from before it.
/// </summary>
public sealed class CallerOffsetTests
{
    private const string Nsp = "/given";

    private static Task<TestServer> StartAsync() =>
        TestServer.StartAsync(o => o.ConnectionStateRecovery = new ConnectionStateRecoveryOptions());

    private static void Step(SocketIOServer io, long previous, long offset, string nsp, int n)
    {
        io.ContinueOffsets(previous, offset);
        Assert.True(io.EmitLocalAt(nsp, offset, "n", n));
    }

    [Fact]
    public async Task A_given_offset_is_the_packets_offset_and_it_is_kept_before_the_namespace_exists()
    {
        await using var server = await StartAsync();
        var io = server.Io;
        Assert.False(io.TryGetNamespace(Nsp, out _));
        Step(io, 0, 1000, Nsp, 1); // no namespace yet: kept, delivered to no one
        Assert.Equal(1, io.Recovery.Packets);
        Assert.Equal(1000, io.LastRecoveryOffset);

        io.Of(Nsp);
        await using var client = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (ok, connect) = await client.ConnectAsync(Nsp);
        Assert.True(ok);
        Step(io, 1000, 2000, Nsp, 2);
        var second = await client.NextEventAsync(Nsp);
        Assert.Equal(2, (int)second[1]!);
        Assert.Equal("2000", (string?)second[2]);

        // not after the newest of this namespace: refused, nothing sent; another namespace has its own order
        Assert.False(io.EmitLocalAt(Nsp, 2000, "n", -1));
        Assert.False(io.EmitLocalAt(Nsp, 1500, "n", -1));
        Assert.True(io.EmitLocalAt("/elsewhere", 2000, "n", 0));
        Assert.True(await client.IsQuietAsync(TimeSpan.FromMilliseconds(200)));

        // a dropped client recovers what was given meanwhile
        var pid = (string)connect["pid"]!;
        client.Drop();
        await WaitUntilAsync(() => io.Recovery.Sessions == 1);
        Step(io, 2000, 3000, Nsp, 3);
        await using var back = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (_, again) = await back.ConnectAsync(Nsp, new JsonObject { ["pid"] = pid, ["offset"] = "2000" });
        Assert.Equal((string)connect["sid"]!, (string?)again["sid"]);
        var third = await back.NextEventAsync(Nsp);
        Assert.Equal(3, (int)third[1]!);
        Assert.Equal("3000", (string?)third[2]);
    }

    [Fact]
    public async Task A_gap_in_the_callers_sequence_refuses_recovery_from_before_it()
    {
        await using var server = await StartAsync();
        var io = server.Io;
        io.Of(Nsp);
        await using var client = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (_, connect) = await client.ConnectAsync(Nsp);
        Step(io, 0, 1000, Nsp, 1);
        Assert.Equal("1000", (string?)(await client.NextEventAsync(Nsp))[2]);
        client.Drop();
        await WaitUntilAsync(() => io.Recovery.Sessions == 1);

        // this server never saw step 2000 (the packet it would have kept may have been for this client)
        Step(io, 2000, 3000, Nsp, 3);
        await using var back = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (ok, again) = await back.ConnectAsync(Nsp, new JsonObject { ["pid"] = (string)connect["pid"]!, ["offset"] = "1000" });
        Assert.True(ok);
        Assert.NotEqual((string)connect["sid"]!, (string?)again["sid"]);
        Assert.Equal(1, io.Recovery.TooLate);

        // from the gap on, recovery works again
        var (_, fresh) = (ok, again);
        back.Drop();
        await WaitUntilAsync(() => io.Recovery.Sessions == 1);
        Step(io, 3000, 4000, Nsp, 4);
        await using var third = await WsSocketIOClient.OpenAsync(server.BaseUri);
        var (_, resumed) = await third.ConnectAsync(Nsp, new JsonObject { ["pid"] = (string)fresh["pid"]!, ["offset"] = "3000" });
        Assert.Equal((string)fresh["sid"]!, (string?)resumed["sid"]);
        Assert.Equal(4, (int)(await third.NextEventAsync(Nsp))[1]!);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met within 10 s");
            await Task.Delay(20);
        }
    }
}

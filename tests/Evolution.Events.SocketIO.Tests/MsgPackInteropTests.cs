using System.Text.Json.Nodes;
using Evolution.Events.SocketIO.MsgPack;
using Xunit.Abstractions;

namespace Evolution.Events.SocketIO.Tests;

/// <summary>The test server with <see cref="MsgPackParser"/> (socket.io's <c>parser</c> option).</summary>
public sealed class MsgPackServerFixture : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await TestServer.StartAsync(o => o.Parser = MsgPackParser.Instance);

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>
/// The stock Node socket.io-client 4.8.3 with <c>parser: require("socket.io-msgpack-parser")</c> (3.0.x) against a
/// server using <see cref="MsgPackParser"/>: the interop scenarios of the default parser, run again with
/// <c>SIO_PARSER=msgpack</c> (tests/interop/lib.mjs).
/// </summary>
public class MsgPackInteropTests(MsgPackServerFixture fixture, ITestOutputHelper output) : IClassFixture<MsgPackServerFixture>
{
    private readonly TestServer _server = fixture.Server;

    [Theory]
    [InlineData("websocket")]
    [InlineData("polling")]
    public async Task Connect_events_both_ways_burst_and_large_message(string transport)
    {
        var tag = "mp-" + transport;
        var result = await NodeRunner.RunMsgPackAsync("transport.mjs", _server.Url, transport, tag);

        Assert.Equal(transport, (string?)result.Single("connect")["transport"]);
        Json.Equal("[\"hello\",42,{\"a\":[1,2],\"s\":\"é€😀\"},null,true]", result.Single("ack")["args"]);
        Json.Equal("[\"no-ack\",1.5]", result.Single("echo")["args"]);
        Assert.Equal(Enumerable.Range(0, 50), Json.Ints(result.Single("burst")["values"]));
        var big = result.Single("big");
        Assert.Equal(200_000, (int)big["length"]!);
        Assert.True((bool)big["same"]!);
        Assert.Equal(tag, (string?)result.Single("who")["value"]!["auth"]!["tag"]);
        var disconnect = await _server.WaitForAsync(o => o.Tag == tag && o.Kind == "disconnect");
        Assert.Equal(DisconnectReason.ClientNamespaceDisconnect, disconnect.Value);
    }

    [Fact]
    public async Task Acks_work_both_ways()
    {
        var result = await NodeRunner.RunMsgPackAsync("acks.mjs", _server.Url, "mp-acks");

        Json.Equal("[\"a\",1,{\"b\":[true,null]}]", result.Single("client-ack")["args"]);
        Json.Equal("[]", result.Single("empty-ack")["args"]);
        Json.Equal("[{\"doubled\":42},\"second\"]", result.Single("server-ack")["args"]);
        Assert.True((bool)result.Single("many")["ok"]!);
        Assert.Equal("{\"doubled\":42}", (await _server.WaitForAsync(o => o.Tag == "mp-acks" && o.Kind == "answer")).Value);
    }

    [Theory]
    [InlineData("websocket")]
    [InlineData("polling")]
    public async Task Byte_arrays_travel_both_ways_as_msgpack_bin(string transport)
    {
        var result = await NodeRunner.RunMsgPackAsync("binary.mjs", _server.Url, transport, "mp-bin-" + transport);

        var echo = result.Single("echo");
        Assert.True((bool)echo["same"]!, result.Output);
        Assert.Equal(256, (int)echo["length"]!);
        Assert.Equal("file", (string?)echo["objName"]);
        Assert.Equal([7, 8, 9], Json.Ints(echo["objData"]));
        Assert.Equal(0, (int)echo["emptyLength"]!);
        Assert.Equal([1000, -1, 2], Json.Ints(result.Single("sizes")["value"]));
        var fromServer = result.Single("server-binary");
        Assert.True((bool)fromServer["isBuffer"]!);
        Assert.Equal(256, (int)fromServer["length"]!);
        Assert.Equal([1, 2, 3], Json.Ints(fromServer["data"]));
        Assert.Equal([9], Json.Ints(fromServer["nested"]));
    }

    [Fact]
    public async Task Namespaces_share_one_connection()
    {
        var result = await NodeRunner.RunMsgPackAsync("namespaces.mjs", _server.Url, "multiplex", "mp-mux");

        Assert.True((bool)result.Single("connect")["sameManager"]!);
        Json.Equal("[\"/admin\"]", result.Single("welcome")["args"]);
        var acks = result.All("ack").ToList();
        Assert.Equal("/admin", (string?)acks[0]["value"]!["nsp"]);
        Assert.Equal("secret", (string?)acks[0]["value"]!["auth"]!["token"]);
        Assert.Equal("/", (string?)acks[1]["value"]!["nsp"]);
        Assert.True((bool)result.Single("after-admin-disconnect")["mainConnected"]!);
    }

    [Fact]
    public async Task Connect_error_carries_the_middleware_message_and_data()
    {
        var result = await NodeRunner.RunMsgPackAsync("namespaces.mjs", _server.Url, "refused", "mp-refused");

        var errors = result.All("connect_error").ToList();
        Assert.Equal(2, errors.Count);
        Assert.All(errors, e =>
        {
            Assert.Equal("not allowed", (string?)e["message"]);
            Json.Equal("{\"reason\":\"bad token\"}", e["data"]);
        });
        Assert.Equal("/admin", (string?)result.Single("connect")["nsp"]);
    }

    [Fact]
    public async Task Dynamic_namespaces_and_invalid_namespace_errors()
    {
        var result = await NodeRunner.RunMsgPackAsync("namespaces.mjs", _server.Url, "dynamic", "mp-dyn");

        Json.Equal("[\"/dyn-room42\"]", result.Single("welcome")["args"]);
        var errors = result.All("connect_error").ToList();
        Assert.Equal(["/dyn-", "/dyn-a.b", "/unknown"], errors.Select(e => (string?)e["nsp"]));
        Assert.All(errors, e => Assert.Equal("Invalid namespace", (string?)e["message"]));
    }

    [Fact]
    public async Task Room_broadcasts_reach_msgpack_clients()
    {
        var result = await NodeRunner.RunMsgPackAsync("rooms.mjs", _server.Url, "mp-rooms");

        var received = result.Single("received");
        Assert.Equal(["m1<mp-rooms-c", "m3<mp-rooms-c"], Json.Strings(received["a"]));
        Assert.Equal(["m1<mp-rooms-c", "m2<mp-rooms-a", "all:m4<mp-rooms-a"], Json.Strings(received["b"]));
        Assert.Equal(["all:m4<mp-rooms-a"], Json.Strings(received["c"]));
        output.WriteLine(result.Output);
    }

    [Fact]
    public async Task The_stock_msgpack_client_recovers_missed_broadcasts_across_a_cut()
    {
        const string Nsp = "/stream";
        await using var server = await TestServer.StartAsync(o =>
        {
            o.Parser = MsgPackParser.Instance;
            o.ConnectionStateRecovery = new ConnectionStateRecoveryOptions { MaxDisconnectionDuration = TimeSpan.FromMinutes(2) };
        });
        var nsp = server.Io.Of(Nsp);
        using var stop = new CancellationTokenSource();
        var stream = Task.Run(async () =>
        {
            var n = 0;
            while (!stop.IsCancellationRequested && n < 100_000)
            {
                nsp.Emit("tick", n++);
                await Task.Delay(10);
            }
        });
        NodeResult result;
        try
        {
            result = await NodeRunner.RunMsgPackAsync(TimeSpan.FromSeconds(70), "recovery.mjs", server.Url, "websocket", "1", Nsp);
        }
        finally
        {
            await stop.CancelAsync();
            await stream;
        }

        output.WriteLine(result.Output);
        var cut = result.Single("cut");
        Assert.True((bool)cut["recovered"]!, result.Output);
        Assert.True((bool)cut["sameId"]!, result.Output);
        Assert.Equal((int)cut["lastBefore"]! + 1, (int)cut["firstAfter"]!);
        var ticks = result.Single("stream");
        Assert.True(((JsonArray)ticks["gaps"]!).Count == 0, result.Output);
        Assert.Equal(0, (int)ticks["duplicates"]!);
        Assert.True(server.Io.Recovery.Recovered >= 1, result.Output);
    }
}

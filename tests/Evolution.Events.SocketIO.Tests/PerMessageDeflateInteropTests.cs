using Evolution.Events.EngineIO;

namespace Evolution.Events.SocketIO.Tests;

/// <summary>A Socket.IO server with WebSocket permessage-deflate on (engine.io's <c>perMessageDeflate</c>).</summary>
public sealed class DeflateServerFixture : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Server = await TestServer.StartAsync(o => o.Engine.PerMessageDeflate = new PerMessageDeflateOptions());

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>
/// socket.io-client 4.8 (Node, through ws) offers permessage-deflate by default: with the option on, large messages
/// travel compressed both ways (the client's TCP byte counts say so) and arrive intact; off (the default), the offer
/// is declined and the same messages travel as they are.
/// </summary>
public class PerMessageDeflateInteropTests(DeflateServerFixture deflate, ServerFixture plain)
    : IClassFixture<DeflateServerFixture>, IClassFixture<ServerFixture>
{
    [Theory]
    [InlineData("websocket")]
    [InlineData("upgrade")]
    public async Task With_the_option_on_large_messages_are_compressed_both_ways(string mode)
    {
        var result = await NodeRunner.RunAsync("deflate.mjs", deflate.Server.Url, mode);

        var connect = result.Single("connect");
        Assert.Equal("websocket", (string?)connect["transport"]);
        Assert.Equal("permessage-deflate", (string?)connect["extensions"]);
        foreach (var name in new[] { "text", "binary" })
        {
            var line = result.Single(name);
            var length = (int)line["length"]!;
            Assert.True((bool)line["same"]!, result.Output);
            // both directions on the wire: a small fraction of the message (uncompressed, each is more than its length)
            Assert.True((long)line["written"]! < length / 5, $"{name}: the client sent {line["written"]} bytes for {length}\n{result.Output}");
            Assert.True((long)line["read"]! < length / 5, $"{name}: the client received {line["read"]} bytes for {length}\n{result.Output}");
        }
    }

    [Fact]
    public async Task Off_by_default_the_offer_is_declined_and_messages_travel_as_they_are()
    {
        var result = await NodeRunner.RunAsync("deflate.mjs", plain.Server.Url, "websocket");

        Assert.Equal("", (string?)result.Single("connect")["extensions"]);
        var text = result.Single("text");
        Assert.True((bool)text["same"]!, result.Output);
        Assert.True((long)text["written"]! > (int)text["length"]!, result.Output);
        Assert.True((long)text["read"]! > (int)text["length"]!, result.Output);
    }
}

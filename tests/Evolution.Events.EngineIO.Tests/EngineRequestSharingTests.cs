using Microsoft.AspNetCore.Http;

namespace Evolution.Events.EngineIO.Tests;

/// <summary>
/// What each idle session keeps of its handshake: repeated strings are one shared instance (issue 11). The table is
/// process-wide and lossy (a slot keeps the last string hashed to it), so a handshake served by a test running in
/// parallel could replace a slot between the two handshakes here: these tests run alone.
/// </summary>
[Collection(AttackCollection.Name)]
public class EngineRequestSharingTests
{
    private static EngineRequest Describe(string key)
    {
        var context = new DefaultHttpContext();
        context.Request.Path = "/engine.io/";
        context.Request.QueryString = new QueryString("?EIO=4&transport=websocket");
        context.Request.Headers.Host = string.Concat("gateway.example:", "8080".AsSpan()); // a fresh instance per handshake
        context.Request.Headers["User-Agent"] = "node-sharing-test/" + 1.ToString(System.Globalization.CultureInfo.InvariantCulture);
        context.Request.Headers["Sec-WebSocket-Key"] = key;
        return EngineRequest.From(context);
    }

    [Fact]
    public void Two_handshakes_share_their_repeated_strings_and_keep_their_own_values()
    {
        var a = Describe("dGhlIHNhbXBsZSBub25jZQ==");
        var b = Describe("x3JJHMbDL1EzLkh9GBhXDw==");

        Assert.Same(a.Headers["Host"], b.Headers["Host"]);
        Assert.Same(a.Headers["User-Agent"], b.Headers["User-Agent"]);
        Assert.Same(a.Query["transport"], b.Query["transport"]);
        Assert.Same(a.Url, b.Url);
        Assert.Equal("/engine.io/?EIO=4&transport=websocket", a.Url);
        Assert.Equal("gateway.example:8080", b.Headers["host"]);
        Assert.Equal("4", b.Query["EIO"]);
        Assert.Equal("dGhlIHNhbXBsZSBub25jZQ==", a.Headers["Sec-WebSocket-Key"]);
        Assert.Equal("x3JJHMbDL1EzLkh9GBhXDw==", b.Headers["Sec-WebSocket-Key"]);
    }

    [Fact]
    public void The_table_returns_an_equal_string_and_passes_long_ones_through()
    {
        var first = new string('a', 5);
        var second = new string('a', 5);
        Assert.NotSame(first, second);
        Assert.Same(SharedStrings.Share(first), SharedStrings.Share(second));

        var longValue = new string('b', 300);
        Assert.Same(longValue, SharedStrings.Share(longValue));
        Assert.NotSame(longValue, SharedStrings.Share(new string('b', 300)));
    }
}

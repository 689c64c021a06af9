using Microsoft.AspNetCore.Http;

namespace Evolution.Events.EngineIO.Tests;

/// <summary>
/// What each idle session keeps of its handshake: repeated strings are one shared instance (issue 11). The table is
/// process-wide and lossy (a set keeps the four latest strings hashed to it), so handshakes served by tests running
/// in parallel could replace a set's entries between two steps here: these tests run alone.
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
    public void A_handshakes_unique_key_stays_out_of_the_table()
    {
        var key = "c2hhcmVkLXRhYmxlLWtleQ==";
        var a = Describe(string.Concat("c2hhcmVkLXRhYmxlLWtleQ", "=="));
        var b = Describe(string.Concat("c2hhcmVkLXRhYmxlLWtleQ", "=="));
        Assert.Equal(key, a.Headers["Sec-WebSocket-Key"]);
        Assert.NotSame(a.Headers["Sec-WebSocket-Key"], b.Headers["Sec-WebSocket-Key"]);
        Assert.Same(a.Headers["User-Agent"], b.Headers["User-Agent"]);
    }

    [Fact]
    public void A_string_outlives_three_strings_of_its_set_and_one_more_once_it_was_found_again()
    {
        var target = "shared-" + Guid.NewGuid().ToString("N");
        var others = Colliding(target, 5);

        Assert.Same(target, SharedStrings.Share(target));
        foreach (var other in others.Take(3))
        {
            SharedStrings.Share(other);
        }

        Assert.Same(target, SharedStrings.Share(new string(target.AsSpan()))); // still held after three: four ways
        SharedStrings.Share(others[3]);
        Assert.Same(target, SharedStrings.Share(new string(target.AsSpan()))); // found again, it moved forward
        SharedStrings.Share(others[4]);
        foreach (var other in Colliding(target, 4))
        {
            SharedStrings.Share(other);
        }

        var copy = new string(target.AsSpan());
        Assert.Same(copy, SharedStrings.Share(copy)); // four newer strings of its set: gone, the copy takes its place
    }

    private static string[] Colliding(string target, int count)
    {
        var set = SharedStrings.SetOf(target);
        var found = new List<string>(count);
        for (var i = 0; found.Count < count && i < 1_000_000; i++)
        {
            var candidate = "other-" + Guid.NewGuid().ToString("N");
            if (SharedStrings.SetOf(candidate) == set)
            {
                found.Add(candidate);
            }
        }

        Assert.Equal(count, found.Count);
        return [.. found];
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

using System.Text.Json.Nodes;
using Evolution.Events.EngineIO;

namespace Evolution.Events.SocketIO.Tests;

/// <summary>
/// <see cref="Handshake"/> keeps the CONNECT's auth payload as UTF-8 bytes: <see cref="Handshake.AuthString"/> reads
/// a field from them without parsing, <see cref="Handshake.Auth"/> parses once on first use and keeps what it gives
/// (a change made to it stays), with the same values a client sent.
/// </summary>
public sealed class HandshakeTests
{
    private static Handshake From(string authJson)
    {
        var request = EngineRequest.Describe(
            new Dictionary<string, string>(), new Dictionary<string, string>(), null, "/socket.io/", false, DateTimeOffset.UnixEpoch);
        return new Handshake(request, request, JsonNode.Parse(authJson)!.AsObject());
    }

    [Fact]
    public void AuthStringReadsTopLevelStringsWithoutParsing()
    {
        var handshake = From("""{"nested":{"apikey":"inner"},"n":5,"api\u006bey":"k-1","name":"Zoë ✓","list":["apikey"],"nil":null}""");

        Assert.Equal("k-1", handshake.AuthString("apikey")); // an escaped field name matches
        Assert.Equal("Zoë ✓", handshake.AuthString("name"));
        Assert.Null(handshake.AuthString("n")); // not a string
        Assert.Null(handshake.AuthString("nil"));
        Assert.Null(handshake.AuthString("nested"));
        Assert.Null(handshake.AuthString("missing"));
        Assert.False(handshake.AuthParsed);
    }

    [Fact]
    public void AuthIsParsedOnceWithTheValuesSent()
    {
        const string sent = """{"pid":"p1","offset":"3-0","n":42,"big":9007199254740993,"f":1.5,"ok":true,"o":{"a":[1,"x",null]}}""";
        var handshake = From(sent);

        var auth = handshake.Auth;
        Assert.True(handshake.AuthParsed);
        Assert.Same(auth, handshake.Auth);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(sent), auth));
        Assert.Equal(42, auth["n"]!.GetValue<int>()); // a number reads as any numeric type, as parsed from the packet
        Assert.Equal(42L, auth["n"]!.GetValue<long>());
        Assert.Equal(9007199254740993L, auth["big"]!.GetValue<long>());
        Assert.Equal(1.5, auth["f"]!.GetValue<double>());
    }

    [Fact]
    public void AChangeToAuthStays()
    {
        var handshake = From("""{"token":"secret","user":"u"}""");

        handshake.Auth.Remove("token");
        handshake.Auth["user"] = "v";

        Assert.Null(handshake.AuthString("token"));
        Assert.Equal("v", handshake.AuthString("user"));
        Assert.False(handshake.Auth.ContainsKey("token"));
    }

    [Fact]
    public void CopyAuthIsIndependentAndDoesNotKeepAParse()
    {
        var handshake = From("""{"tag":"a"}""");

        var copy = handshake.CopyAuth();
        copy["tag"] = "changed";
        Assert.False(handshake.AuthParsed);
        Assert.Equal("a", handshake.AuthString("tag"));

        handshake.Auth["tag"] = "b";
        var second = handshake.CopyAuth();
        Assert.Equal("b", second["tag"]!.GetValue<string>());
        Assert.NotSame(handshake.Auth, second);
    }

    [Fact]
    public void AnEmptyAuthIsAnEmptyObject()
    {
        var handshake = From("{}");

        Assert.Null(handshake.AuthString("anything"));
        Assert.Empty(handshake.Auth);
    }
}

using Microsoft.AspNetCore.Http;

namespace Evolution.Events.EngineIO.Tests;

/// <summary>The handshake's headers and query as a session keeps them (one array each, issue 11): still a dictionary to read.</summary>
public class CompactStringMapTests
{
    [Fact]
    public void A_handshakes_headers_read_case_insensitively_and_its_query_exactly()
    {
        var context = new DefaultHttpContext();
        context.Request.Path = "/socket.io/";
        context.Request.QueryString = new QueryString("?EIO=4&transport=polling&apikey=k1");
        context.Request.Headers["X-Api-Key"] = "secret";
        context.Request.Headers["Accept"] = new Microsoft.Extensions.Primitives.StringValues(["a", "b"]);
        var request = EngineRequest.From(context);

        Assert.Equal("secret", request.Headers["x-api-key"]);
        Assert.True(request.Headers.ContainsKey("X-API-KEY"));
        Assert.Equal("a,b", request.Headers["accept"]);
        Assert.False(request.Headers.TryGetValue("origin", out _));
        Assert.Throws<KeyNotFoundException>(() => request.Headers["origin"]);
        Assert.Equal(2, request.Headers.Count);

        Assert.Equal("k1", request.Query["apikey"]);
        Assert.Equal("k1", request.Query.GetValueOrDefault("apikey"));
        Assert.Equal(3, request.Query.Count);
        Assert.Equal(["EIO", "transport", "apikey"], request.Query.Keys);
        Assert.Equal(["4", "polling", "k1"], request.Query.Values);
        Assert.Equal(new KeyValuePair<string, string>("transport", "polling"), request.Query.ElementAt(1));
    }

    [Fact]
    public void Headers_over_the_budget_are_left_out_and_the_rest_still_read()
    {
        var context = new DefaultHttpContext();
        context.Request.Headers["Big"] = new string('x', 100);
        context.Request.Headers["Small"] = "s";
        var request = EngineRequest.From(context, 20);

        Assert.Equal("s", Assert.Single(request.Headers).Value);
        Assert.Equal("s", request.Headers["small"]);
        Assert.False(request.Headers.ContainsKey("big"));
    }
}

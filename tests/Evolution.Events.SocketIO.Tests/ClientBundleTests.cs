using System.Net;
using System.Net.Http.Headers;
using Evolution.Events.SocketIO.Hosting;

namespace Evolution.Events.SocketIO.Tests;

/// <summary>socket.io's <c>serveClient</c>: the browser bundle at the standard paths under the Socket.IO path.</summary>
public sealed class ClientBundleTests : IDisposable
{
    private readonly string _dist = Path.Combine(Path.GetTempPath(), "sio-dist-" + Guid.NewGuid().ToString("N"));

    public ClientBundleTests()
    {
        Directory.CreateDirectory(_dist);
        foreach (var name in ClientBundle.FileNames)
        {
            File.WriteAllText(Path.Combine(_dist, name), name.EndsWith(".map", StringComparison.Ordinal) ? "{\"version\":3}" : "/* " + name + " */");
        }
    }

    [Theory]
    [InlineData("socket.io.js", "application/javascript")]
    [InlineData("socket.io.min.js", "application/javascript")]
    [InlineData("socket.io.esm.min.js", "application/javascript")]
    [InlineData("socket.io.msgpack.min.js", "application/javascript")]
    [InlineData("socket.io.min.js.map", "application/json")]
    public async Task Each_standard_file_is_served_with_its_type_an_etag_and_revalidation(string name, string type)
    {
        await using var server = await TestServer.StartAsync(o => o.ClientBundle = ClientBundle.FromDirectory(_dist));
        using var http = new HttpClient { BaseAddress = server.BaseUri };

        using var first = await http.GetAsync("/socket.io/" + name);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(type, first.Content.Headers.ContentType!.MediaType);
        Assert.Equal(await File.ReadAllTextAsync(Path.Combine(_dist, name)), await first.Content.ReadAsStringAsync());
        Assert.Equal("public, max-age=0", first.Headers.CacheControl!.ToString());
        var etag = first.Headers.ETag!;
        Assert.False(etag.IsWeak);

        using var again = new HttpRequestMessage(HttpMethod.Get, "/socket.io/" + name);
        again.Headers.IfNoneMatch.Add(etag);
        using var second = await http.SendAsync(again);
        Assert.Equal(HttpStatusCode.NotModified, second.StatusCode);
        Assert.Empty(await second.Content.ReadAsByteArrayAsync());

        using var weak = new HttpRequestMessage(HttpMethod.Get, "/socket.io/" + name);
        weak.Headers.IfNoneMatch.Add(new EntityTagHeaderValue(etag.Tag, isWeak: true));
        using var third = await http.SendAsync(weak);
        Assert.Equal(HttpStatusCode.NotModified, third.StatusCode);
    }

    [Fact]
    public async Task A_changed_file_gets_another_etag()
    {
        await using var a = await TestServer.StartAsync(o => o.ClientBundle = ClientBundle.FromDirectory(_dist));
        using var http = new HttpClient();
        var before = (await http.GetAsync(new Uri(a.BaseUri, "/socket.io/socket.io.js"))).Headers.ETag!.Tag;
        await File.WriteAllTextAsync(Path.Combine(_dist, "socket.io.js"), "/* 4.8.4 */");
        await using var b = await TestServer.StartAsync(o => o.ClientBundle = ClientBundle.FromDirectory(_dist));
        var after = (await http.GetAsync(new Uri(b.BaseUri, "/socket.io/socket.io.js"))).Headers.ETag!.Tag;
        Assert.NotEqual(before, after);
    }

    [Fact]
    public async Task Without_a_bundle_nothing_is_served_and_the_engine_answers_as_before()
    {
        await using var server = await TestServer.StartAsync();
        using var http = new HttpClient { BaseAddress = server.BaseUri };
        using var response = await http.GetAsync("/socket.io/socket.io.js");
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task Other_names_and_methods_are_left_to_the_engine_and_handshakes_still_work()
    {
        await using var server = await TestServer.StartAsync(o => o.ClientBundle = ClientBundle.FromDirectory(_dist));
        using var http = new HttpClient { BaseAddress = server.BaseUri };
        Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("/socket.io/other.js")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("/socket.io/x/socket.io.js")).StatusCode);
        Assert.NotEqual(HttpStatusCode.OK, (await http.PostAsync("/socket.io/socket.io.js", new StringContent("x"))).StatusCode);
        Assert.StartsWith("0{", await http.GetStringAsync("/socket.io/?EIO=4&transport=polling"));
    }

    public void Dispose() => Directory.Delete(_dist, recursive: true);
}

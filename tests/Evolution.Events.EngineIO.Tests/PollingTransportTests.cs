using System.IO.Compression;
using System.Net;
using System.Text;
using System.Text.Json;
using Evolution.Events.EngineIO.Transports;

namespace Evolution.Events.EngineIO.Tests;

public sealed class PollingHostsFixture : IAsyncLifetime
{
    /// <summary>Default options: compression on (threshold 1024), Engine.IO 3 allowed (JSONP).</summary>
    public EngineHost Host { get; private set; } = null!;

    /// <summary>Compression turned off.</summary>
    public EngineHost Uncompressed { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Host = await EngineHost.StartAsync(o => o.AllowEIO3 = true);
        Uncompressed = await EngineHost.StartAsync(o => o.HttpCompression = null);
    }

    public async Task DisposeAsync()
    {
        await Host.DisposeAsync();
        await Uncompressed.DisposeAsync();
    }
}

/// <summary>The polling transport's HTTP compression (engine.io's httpCompression) and JSONP (Engine.IO 3), with HttpClient.</summary>
public class PollingTransportTests(PollingHostsFixture fixture) : IClassFixture<PollingHostsFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);
    private static readonly string Large = string.Concat(Enumerable.Repeat("compress me please ", 200)); // 3800 bytes

    /// <summary>Posts a message the host echoes, then polls for it with <paramref name="acceptEncoding"/> (raw bytes, no decompression).</summary>
    private static async Task<HttpResponseMessage> EchoAsync(EngineHost host, string message, string? acceptEncoding)
    {
        var (sid, _) = await host.HandshakeAsync();
        using (var post = await host.PostAsync(sid, "4" + message))
        {
            Assert.Equal(HttpStatusCode.OK, post.StatusCode);
        }

        await WaitUntilAsync(() => host.Server.TryGetSession(sid, out var s) && s.QueuedPackets > 0);
        var request = new HttpRequestMessage(HttpMethod.Get, EngineHost.Path + "?EIO=4&transport=polling&sid=" + sid);
        if (acceptEncoding is not null)
        {
            request.Headers.TryAddWithoutValidation("Accept-Encoding", acceptEncoding);
        }

        return await host.Http.SendAsync(request);
    }

    private static async Task<string> DecodeAsync(HttpResponseMessage response)
    {
        var raw = await response.Content.ReadAsStreamAsync();
        Stream body = response.Content.Headers.ContentEncoding.SingleOrDefault() switch
        {
            "gzip" => new GZipStream(raw, CompressionMode.Decompress),
            "deflate" => new ZLibStream(raw, CompressionMode.Decompress),
            null => raw,
            var other => throw new InvalidOperationException("unexpected encoding " + other),
        };
        using var reader = new StreamReader(body, Encoding.UTF8);
        return await reader.ReadToEndAsync();
    }

    [Theory]
    [InlineData("gzip, deflate, br", "gzip")]
    [InlineData("deflate", "deflate")]
    [InlineData("gzip;q=0, deflate", "deflate")]
    public async Task A_large_poll_response_is_compressed_with_the_encoding_the_client_accepts(string acceptEncoding, string expected)
    {
        using var response = await EchoAsync(fixture.Host, Large, acceptEncoding);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal([expected], response.Content.Headers.ContentEncoding);
        Assert.Contains("Accept-Encoding", response.Headers.Vary);
        Assert.Equal("text/plain", response.Content.Headers.ContentType!.MediaType);
        var raw = await response.Content.ReadAsByteArrayAsync();
        Assert.True(raw.Length < Large.Length / 4, $"compressed to {raw.Length} bytes");
        using var again = new HttpResponseMessage { Content = new ByteArrayContent(raw) };
        again.Content.Headers.ContentEncoding.Add(expected);
        Assert.Equal("4" + Large, await DecodeAsync(again));
    }

    [Fact]
    public async Task A_poll_response_below_the_threshold_is_not_compressed()
    {
        var small = new string('x', 1000); // 1001 bytes with its packet type: below 1024
        using var response = await EchoAsync(fixture.Host, small, "gzip, deflate");
        Assert.Empty(response.Content.Headers.ContentEncoding);
        Assert.Equal(1001, response.Content.Headers.ContentLength);
        Assert.Equal("4" + small, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Without_accept_encoding_or_with_compression_off_a_large_response_is_sent_as_is()
    {
        using (var response = await EchoAsync(fixture.Host, Large, acceptEncoding: null))
        {
            Assert.Empty(response.Content.Headers.ContentEncoding);
            Assert.Equal("4" + Large, await response.Content.ReadAsStringAsync());
        }

        using (var response = await EchoAsync(fixture.Host, Large, "br, identity"))
        {
            Assert.Empty(response.Content.Headers.ContentEncoding);
        }

        using (var response = await EchoAsync(fixture.Uncompressed, Large, "gzip, deflate"))
        {
            Assert.Empty(response.Content.Headers.ContentEncoding);
            Assert.Equal("4" + Large, await response.Content.ReadAsStringAsync());
        }
    }

    [Theory]
    [InlineData("gzip", "gzip")]
    [InlineData("deflate", "deflate")]
    [InlineData("gzip, deflate", "gzip")]
    [InlineData("deflate, gzip", "deflate")] // as negotiator: equal q, the earlier entry
    [InlineData("*", "gzip")]
    [InlineData("deflate, *", "deflate")]
    [InlineData("gzip;q=0.5, deflate;q=0.8", "deflate")]
    [InlineData("gzip;q=0, deflate;q=0", null)]
    [InlineData("*;q=0", null)]
    [InlineData("br, identity", null)]
    [InlineData("GZIP", "gzip")]
    [InlineData("", null)]
    [InlineData("gzip;q=abc", null)]
    public void Accept_encoding_is_negotiated_as_engine_io_does(string header, string? expected)
    {
        var chosen = HttpCompression.Negotiate(header) switch
        {
            HttpCompression.Encoding.Gzip => "gzip",
            HttpCompression.Encoding.Deflate => "deflate",
            _ => null,
        };
        Assert.Equal(expected, chosen);
    }

    [Fact]
    public void A_negative_threshold_is_refused()
    {
        var options = new EngineIOOptions { HttpCompression = new HttpCompressionOptions { Threshold = -1 } };
        Assert.Throws<InvalidOperationException>(() => new EngineIOServer(options));
    }

    /// <summary>A JSONP response, <c>___eio[j]("…");</c>: its JavaScript string decoded.</summary>
    private static string UnwrapJsonp(string body, string j)
    {
        var head = $"___eio[{j}](";
        Assert.StartsWith(head, body);
        Assert.EndsWith(");", body);
        return JsonSerializer.Deserialize<string>(body[head.Length..^2])!;
    }

    /// <summary>What engine.io-client 2.x's JSONP transport puts into its form's <c>d</c> field.</summary>
    private static string ClientEscape(string payload) => payload.Replace("\\n", "\\\n").Replace("\n", "\\n");

    [Fact]
    public async Task Jsonp_polling_wraps_every_poll_in_the_callback_and_reads_form_posts()
    {
        var host = fixture.Host;
        using var handshake = await host.Http.GetAsync(EngineHost.Path + "?EIO=3&transport=polling&j=7&b64=1");
        Assert.Equal(HttpStatusCode.OK, handshake.StatusCode);
        Assert.Equal("text/javascript", handshake.Content.Headers.ContentType!.MediaType);
        Assert.Equal("UTF-8", handshake.Content.Headers.ContentType.CharSet);
        var open = UnwrapJsonp(await handshake.Content.ReadAsStringAsync(), "7");
        var sid = JsonDocument.Parse(open[(open.IndexOf(':') + 2)..]).RootElement.GetProperty("sid").GetString()!;
        var url = EngineHost.Path + "?EIO=3&transport=polling&j=7&sid=" + sid;

        // a newline, an escaped newline as text, a quote, U+2028: all through the form and back as JavaScript
        var message = "a\nb\\nc\"d\u2028e";
        var payload = $"{message.Length + 1}:4{message}";
        using (var post = await host.Http.PostAsync(url, new FormUrlEncodedContent([new("d", ClientEscape(payload))])))
        {
            Assert.Equal(HttpStatusCode.OK, post.StatusCode);
            Assert.Equal("ok", await post.Content.ReadAsStringAsync());
        }

        Assert.Equal([message], host.Listeners[sid].Messages);
        using var poll = await host.Http.GetAsync(url);
        var body = await poll.Content.ReadAsStringAsync();
        Assert.Contains("\\u2028", body); // valid JavaScript, not only JSON
        Assert.DoesNotContain("\u2028", body);
        Assert.Equal(payload, UnwrapJsonp(body, "7"));
    }

    [Fact]
    public async Task A_large_jsonp_poll_is_compressed_too()
    {
        var host = fixture.Host;
        var body = await host.Http.GetStringAsync(EngineHost.Path + "?EIO=3&transport=polling&j=0");
        var open = UnwrapJsonp(body, "0");
        var sid = JsonDocument.Parse(open[(open.IndexOf(':') + 2)..]).RootElement.GetProperty("sid").GetString()!;
        var url = EngineHost.Path + "?EIO=3&transport=polling&j=0&sid=" + sid;
        var payload = $"{Large.Length + 1}:4{Large}";
        using (var post = await host.Http.PostAsync(url, new FormUrlEncodedContent([new("d", payload)])))
        {
            Assert.Equal(HttpStatusCode.OK, post.StatusCode);
        }

        var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.TryAddWithoutValidation("Accept-Encoding", "gzip");
        using var poll = await host.Http.SendAsync(request);
        Assert.Equal(["gzip"], poll.Content.Headers.ContentEncoding);
        Assert.Equal("text/javascript", poll.Content.Headers.ContentType!.MediaType);
        Assert.Equal(payload, UnwrapJsonp(await DecodeAsync(poll), "0"));
    }

    [Theory]
    [InlineData("EIO=3&transport=polling&j=abc")]
    [InlineData("EIO=3&transport=polling&j=")]
    [InlineData("EIO=3&transport=polling&j=1);alert(1")]
    [InlineData("EIO=3&transport=polling&j=12345678901")]
    [InlineData("EIO=4&transport=polling&j=0")]
    public async Task A_bad_jsonp_index_or_jsonp_in_revision_4_is_a_bad_request(string query)
    {
        var before = fixture.Host.Server.SessionCount;
        using var response = await fixture.Host.Http.GetAsync(EngineHost.Path + "?" + query);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("{\"code\":3,\"message\":\"Bad request\"}", await response.Content.ReadAsStringAsync());
        Assert.True(fixture.Host.Server.SessionCount <= before);
    }

    [Fact]
    public async Task A_jsonp_post_without_one_d_field_is_refused_and_closes_the_session()
    {
        var host = fixture.Host;
        var open = UnwrapJsonp(await host.Http.GetStringAsync(EngineHost.Path + "?EIO=3&transport=polling&j=1"), "1");
        var sid = JsonDocument.Parse(open[(open.IndexOf(':') + 2)..]).RootElement.GetProperty("sid").GetString()!;
        using var post = await host.Http.PostAsync(EngineHost.Path + "?EIO=3&transport=polling&j=1&sid=" + sid,
            new FormUrlEncodedContent([new("x", "1:2")]));
        Assert.Equal(HttpStatusCode.BadRequest, post.StatusCode);
        var (reason, _) = await host.Listeners[sid].Closed.WaitAsync(Wait);
        Assert.Equal(EngineCloseReason.ParseError, reason);
    }

    [Fact]
    public async Task A_session_that_begins_on_websocket_has_no_polling_transport()
    {
        using var ws = new System.Net.WebSockets.ClientWebSocket();
        await ws.ConnectAsync(fixture.Host.WebSocketUri("EIO=4&transport=websocket"), CancellationToken.None);
        var buffer = new byte[512];
        var received = await ws.ReceiveAsync(buffer, CancellationToken.None);
        var open = Encoding.UTF8.GetString(buffer, 0, received.Count);
        var sid = JsonDocument.Parse(open[1..]).RootElement.GetProperty("sid").GetString()!;
        Assert.True(fixture.Host.Server.TryGetSession(sid, out var session));
        Assert.Null(session.Polling);
        var (polling, _) = await fixture.Host.HandshakeAsync();
        Assert.True(fixture.Host.Server.TryGetSession(polling, out var pollingSession));
        Assert.NotNull(pollingSession.Polling);
        await ws.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in time");
            await Task.Delay(20);
        }
    }
}

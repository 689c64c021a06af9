using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Evolution.Events.EngineIO.Protocol;

namespace Evolution.Events.EngineIO.Tests;

public sealed class EngineHttpFixture : IAsyncLifetime
{
    public const string AllowedOrigin = "https://allowed.example";

    public EngineHost Host { get; private set; } = null!;

    public async Task InitializeAsync() => Host = await EngineHost.StartAsync(o =>
    {
        o.MaxPayload = 1000;
        o.CorsOrigins.Add(AllowedOrigin);
        o.CorsCredentials = true;
        o.AllowRequest = context => ValueTask.FromResult(
            context.Request.Headers.ContainsKey("X-Refuse") ? new HandshakeRefusal(429, "slow down") : null);
    });

    public async Task DisposeAsync() => await Host.DisposeAsync();
}

public class EngineHttpTests(EngineHttpFixture fixture) : IClassFixture<EngineHttpFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15); // a wait on a condition: generous for a loaded machine
    private readonly EngineHost _host = fixture.Host;

    [Fact]
    public async Task Handshake_answers_the_open_packet_with_sid_upgrades_and_timings()
    {
        using var response = await _host.Http.GetAsync(EngineHost.Path + "?EIO=4&transport=polling");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType!.MediaType);
        var body = await response.Content.ReadAsStringAsync();
        Assert.StartsWith("0", body);
        var open = JsonNode.Parse(body[1..])!.AsObject();
        var sid = open["sid"]!.GetValue<string>();
        Assert.Matches("^[A-Za-z0-9_-]{20}$", sid);
        Assert.Equal(["websocket"], open["upgrades"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal(30_000, open["pingInterval"]!.GetValue<int>());
        Assert.Equal(30_000, open["pingTimeout"]!.GetValue<int>());
        Assert.Equal(1000, open["maxPayload"]!.GetValue<int>());
        Assert.Equal(["sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"], open.Select(p => p.Key));
        Assert.True(_host.Server.TryGetSession(sid, out var session));
        Assert.Equal("polling", session.Transport);
        Assert.Equal(EngineReadyState.Open, session.ReadyState);
    }

    [Fact]
    public async Task Every_handshake_gets_a_new_sid()
    {
        var sids = new HashSet<string>();
        for (var i = 0; i < 5; i++)
        {
            sids.Add((await _host.HandshakeAsync()).Sid);
        }

        Assert.Equal(5, sids.Count);
    }

    [Theory]
    [InlineData("GET", "EIO=3&transport=polling", 5, "Unsupported protocol version")]
    [InlineData("GET", "transport=polling", 5, "Unsupported protocol version")]
    [InlineData("GET", "EIO=abc&transport=polling", 5, "Unsupported protocol version")]
    [InlineData("GET", "EIO=4&transport=flashsocket", 0, "Transport unknown")]
    [InlineData("GET", "EIO=4", 0, "Transport unknown")]
    [InlineData("GET", "EIO=4&transport=websocket", 3, "Bad request")]
    [InlineData("GET", "EIO=4&transport=polling&sid=unknown-sid", 1, "Session ID unknown")]
    [InlineData("POST", "EIO=4&transport=polling&sid=unknown-sid", 1, "Session ID unknown")]
    [InlineData("POST", "EIO=4&transport=polling", 2, "Bad handshake method")]
    [InlineData("PUT", "EIO=4&transport=polling", 2, "Bad handshake method")]
    public async Task Bad_requests_get_400_and_the_engine_io_error_body(string method, string query, int code, string message)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), EngineHost.Path + "?" + query);
        if (method != "GET")
        {
            request.Content = new StringContent("4x");
        }

        using var response = await _host.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType!.MediaType);
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject();
        Assert.Equal(code, body["code"]!.GetValue<int>());
        Assert.Equal(message, body["message"]!.GetValue<string>());
        Assert.Equal(2, body.Count);
    }

    [Theory]
    [InlineData("PUT")]
    [InlineData("DELETE")]
    public async Task Other_methods_on_a_session_are_bad_requests(string method)
    {
        var (sid, _) = await _host.HandshakeAsync();
        using var request = new HttpRequestMessage(new HttpMethod(method), EngineHost.Path + "?EIO=4&transport=polling&sid=" + sid);
        using var response = await _host.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("{\"code\":3,\"message\":\"Bad request\"}", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task AllowRequest_refusal_answers_its_status_and_message_and_opens_no_session()
    {
        var before = _host.Listeners.Count;
        using var request = new HttpRequestMessage(HttpMethod.Get, EngineHost.Path + "?EIO=4&transport=polling");
        request.Headers.Add("X-Refuse", "1");
        using var response = await _host.Http.SendAsync(request);
        Assert.Equal((HttpStatusCode)429, response.StatusCode);
        Assert.Equal("{\"code\":4,\"message\":\"slow down\"}", await response.Content.ReadAsStringAsync());
        Assert.Equal(before, _host.Listeners.Count);

        // the same request without the header is admitted
        await _host.HandshakeAsync();
    }

    [Fact]
    public async Task Posted_packets_reach_the_listener_in_order_and_polls_return_the_echoes()
    {
        var (sid, _) = await _host.HandshakeAsync();
        using (var post = await _host.PostAsync(sid, "4first\u001ebAQID\u001e4sécond"))
        {
            Assert.Equal(HttpStatusCode.OK, post.StatusCode);
            Assert.Equal("ok", await post.Content.ReadAsStringAsync());
        }

        var listener = _host.Listeners[sid];
        Assert.Equal(["first", "sécond"], listener.Messages);
        Assert.Equal(new byte[] { 1, 2, 3 }, Assert.Single(listener.Binaries));

        using var poll = await _host.PollAsync(sid);
        Assert.Equal(HttpStatusCode.OK, poll.StatusCode);
        Assert.Equal("4first\u001ebAQID\u001e4sécond", await poll.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_poll_waits_for_data_then_returns_it()
    {
        var (sid, _) = await _host.HandshakeAsync();
        var poll = _host.PollAsync(sid);
        Assert.True(_host.Server.TryGetSession(sid, out var session));
        await WaitUntilAsync(() => session.IsPollWaiting); // the poll reached the server, which holds it
        Assert.False(poll.IsCompleted, "a poll with nothing queued must wait");
        Assert.True(session.Send(OutboundPacket.Message("late")));
        using var response = await poll.WaitAsync(Wait);
        Assert.Equal("4late", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_post_body_exactly_at_MaxPayload_is_accepted()
    {
        var (sid, _) = await _host.HandshakeAsync();
        using var post = await _host.PostAsync(sid, "4" + new string('a', 999));
        Assert.Equal(HttpStatusCode.OK, post.StatusCode);
        Assert.Equal(999, Assert.Single(_host.Listeners[sid].Messages).Length);
    }

    [Fact]
    public async Task A_post_body_over_MaxPayload_gets_413_and_closes_the_session()
    {
        var (sid, _) = await _host.HandshakeAsync();
        using (var post = await _host.PostAsync(sid, "4" + new string('a', 1000)))
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, post.StatusCode);
        }

        var closed = await _host.Listeners[sid].Closed.WaitAsync(Wait);
        Assert.Equal(EngineCloseReason.TransportError, closed.Reason);
        Assert.Empty(_host.Listeners[sid].Messages);
        using var poll = await _host.PollAsync(sid);
        Assert.Equal(HttpStatusCode.BadRequest, poll.StatusCode);
        Assert.Contains("\"code\":1", await poll.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_chunked_post_body_over_MaxPayload_gets_413_too()
    {
        var (sid, _) = await _host.HandshakeAsync();
        var content = new StreamContent(new NonSeekableStream(Encoding.UTF8.GetBytes("4" + new string('b', 5000))));
        using var post = await _host.Http.PostAsync(EngineHost.Path + "?EIO=4&transport=polling&sid=" + sid, content);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, post.StatusCode);
        Assert.Equal(EngineCloseReason.TransportError, (await _host.Listeners[sid].Closed.WaitAsync(Wait)).Reason);
    }

    [Theory]
    [InlineData("9oops")]
    [InlineData("4ok\u001ebnot-base64!")]
    [InlineData("2")]
    public async Task A_malformed_or_illegal_post_closes_the_session(string payload)
    {
        var (sid, _) = await _host.HandshakeAsync();
        using var post = await _host.PostAsync(sid, payload);
        var closed = await _host.Listeners[sid].Closed.WaitAsync(Wait);
        Assert.Equal(EngineCloseReason.ParseError, closed.Reason);
        Assert.False(_host.Server.TryGetSession(sid, out _));
    }

    [Fact]
    public async Task A_close_packet_from_the_client_ends_the_session()
    {
        var (sid, _) = await _host.HandshakeAsync();
        using var post = await _host.PostAsync(sid, "1");
        Assert.Equal(HttpStatusCode.OK, post.StatusCode);
        Assert.Equal(EngineCloseReason.TransportClose, (await _host.Listeners[sid].Closed.WaitAsync(Wait)).Reason);

        // the one poll that may have crossed the close packet gets its noop; after it, the sid is unknown
        using var crossing = await _host.PollAsync(sid);
        Assert.Equal("6", await crossing.Content.ReadAsStringAsync());
        using var poll = await _host.PollAsync(sid);
        Assert.Equal(HttpStatusCode.BadRequest, poll.StatusCode);
    }

    [Fact]
    public async Task Overlapping_polls_are_refused_and_close_the_session()
    {
        var (sid, _) = await _host.HandshakeAsync();
        var first = _host.PollAsync(sid);
        Assert.True(_host.Server.TryGetSession(sid, out var session));
        await WaitUntilAsync(() => session.IsPollWaiting); // the first poll is held: the second one overlaps it
        using var second = await _host.PollAsync(sid);
        Assert.Equal(HttpStatusCode.BadRequest, second.StatusCode);
        Assert.Equal(EngineCloseReason.TransportError, (await _host.Listeners[sid].Closed.WaitAsync(Wait)).Reason);
        using var firstResponse = await first.WaitAsync(Wait);
        Assert.Equal("1", await firstResponse.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_server_close_flushes_the_queue_then_sends_the_close_packet()
    {
        var (sid, _) = await _host.HandshakeAsync();
        Assert.True(_host.Server.TryGetSession(sid, out var session));
        session.Send(OutboundPacket.Message("bye"));
        session.Send(OutboundPacket.Binary(new byte[] { 9 }));
        session.Close();
        Assert.False(session.Send(OutboundPacket.Message("too late")));
        Assert.Equal(EngineCloseReason.ForcedClose, (await _host.Listeners[sid].Closed.WaitAsync(Wait)).Reason);
        using var poll = await _host.PollAsync(sid);
        Assert.Equal("4bye\u001ebCQ==\u001e1", await poll.Content.ReadAsStringAsync());
        Assert.False(_host.Server.TryGetSession(sid, out _));
    }

    [Fact]
    public async Task Cors_echoes_an_allowed_origin_with_credentials()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, EngineHost.Path + "?EIO=4&transport=polling");
        request.Headers.Add("Origin", EngineHttpFixture.AllowedOrigin);
        using var response = await _host.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(EngineHttpFixture.AllowedOrigin, Header(response, "Access-Control-Allow-Origin"));
        Assert.Equal("true", Header(response, "Access-Control-Allow-Credentials"));
        Assert.Contains("Origin", Header(response, "Vary"));
    }

    [Fact]
    public async Task Cors_gives_nothing_to_another_origin_but_still_serves_it()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, EngineHost.Path + "?EIO=4&transport=polling");
        request.Headers.Add("Origin", "https://evil.example");
        using var response = await _host.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Null(Header(response, "Access-Control-Allow-Origin"));
        Assert.Null(Header(response, "Access-Control-Allow-Credentials"));
    }

    [Fact]
    public async Task Cors_headers_are_on_error_responses_too()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, EngineHost.Path + "?EIO=9&transport=polling");
        request.Headers.Add("Origin", EngineHttpFixture.AllowedOrigin);
        using var response = await _host.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(EngineHttpFixture.AllowedOrigin, Header(response, "Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task Options_preflight_answers_204_with_methods_and_requested_headers()
    {
        using var request = new HttpRequestMessage(HttpMethod.Options, EngineHost.Path + "?EIO=4&transport=polling");
        request.Headers.Add("Origin", EngineHttpFixture.AllowedOrigin);
        request.Headers.Add("Access-Control-Request-Method", "POST");
        request.Headers.Add("Access-Control-Request-Headers", "content-type,x-custom");
        using var response = await _host.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal(EngineHttpFixture.AllowedOrigin, Header(response, "Access-Control-Allow-Origin"));
        Assert.Equal("GET,POST", Header(response, "Access-Control-Allow-Methods"));
        Assert.Equal("content-type,x-custom", Header(response, "Access-Control-Allow-Headers"));
        Assert.Equal("true", Header(response, "Access-Control-Allow-Credentials"));
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Options_preflight_opens_no_session()
    {
        var before = _host.Listeners.Count;
        using var request = new HttpRequestMessage(HttpMethod.Options, EngineHost.Path + "?EIO=4&transport=polling");
        using var response = await _host.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal(before, _host.Listeners.Count);
    }

    internal static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values)
            ? string.Join(",", values)
            : null;

    private sealed class NonSeekableStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in time");
            await Task.Delay(10);
        }
    }
}

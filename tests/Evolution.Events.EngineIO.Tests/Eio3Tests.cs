using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using Evolution.Events.EngineIO.Protocol;

namespace Evolution.Events.EngineIO.Tests;

/// <summary>Engine.IO 3's encodings, pure: payloads both ways (engine.io-parser 2's format) and the WebSocket's binary messages.</summary>
public class Eio3CodecTests
{
    private static string EncodeText(params OutboundPacket[] packets)
    {
        var writer = new System.Buffers.ArrayBufferWriter<byte>();
        Assert.False(EngineProtocol.V3Base64.EncodePayload(packets, writer));
        return Encoding.UTF8.GetString(writer.WrittenSpan);
    }

    [Fact]
    public void String_payload_lengths_count_utf16_code_units_as_javascript_does()
    {
        // "é" is 2 UTF-8 bytes and 1 unit, "😀" 4 bytes and 2 units, "€" 3 bytes and 1 unit
        Assert.Equal("6:4hello", EncodeText(OutboundPacket.Message("hello")));
        Assert.Equal("5:4é😀€", EncodeText(OutboundPacket.Message("é😀€")));
        Assert.Equal("1:36:4hello10:b4AQIDBA==", EncodeText(OutboundPacket.Pong, OutboundPacket.Message("hello"), OutboundPacket.Binary(new byte[] { 1, 2, 3, 4 })));

        var packets = new List<InboundPacket>();
        Assert.True(EngineProtocol.V3.TryDecodePayload("5:4é😀€1:210:b4AQIDBA==", null, packets, out var error), error);
        Assert.Equal([EnginePacketType.Message, EnginePacketType.Ping, EnginePacketType.Message], packets.Select(p => p.Type));
        Assert.Equal("é😀€", packets[0].Text);
        Assert.Equal(new byte[] { 1, 2, 3, 4 }, packets[2].Binary);
    }

    [Fact]
    public void Binary_payload_is_the_reference_bytes_both_ways()
    {
        // the v3 suite's expectation: 0 6 255 "4hello" 1 5 255 4 1 2 3 4
        byte[] expected = [0, 6, 255, 52, 104, 101, 108, 108, 111, 1, 5, 255, 4, 1, 2, 3, 4];
        var writer = new System.Buffers.ArrayBufferWriter<byte>();
        Assert.True(EngineProtocol.V3.EncodePayload([OutboundPacket.Message("hello"), OutboundPacket.Binary(new byte[] { 1, 2, 3, 4 })], writer));
        Assert.Equal(expected, writer.WrittenSpan.ToArray());

        var packets = new List<InboundPacket>();
        Assert.True(EngineProtocol.V3.TryDecodePayload(null, expected, packets, out var error), error);
        Assert.Equal("hello", packets[0].Text);
        Assert.Equal(new byte[] { 1, 2, 3, 4 }, packets[1].Binary);

        // a text part is UTF-8 and its length counts bytes
        writer.Clear();
        EngineProtocol.V3.EncodePayload([OutboundPacket.Message("é"), OutboundPacket.Binary(new byte[] { 9 })], writer);
        Assert.Equal(new byte[] { 0, 3, 255, 52, 0xC3, 0xA9, 1, 2, 255, 4, 9 }, writer.WrittenSpan.ToArray());
    }

    [Theory]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("6:4hell")]
    [InlineData("2:4")]
    [InlineData(":4hello")]
    [InlineData("99999999999:4")]
    [InlineData("1:9")]
    [InlineData("3:b4!")]
    [InlineData("6:4hello6")]
    public void Bad_string_payloads_are_refused(string payload)
    {
        Assert.False(EngineProtocol.V3.TryDecodePayload(payload, null, [], out var error));
        Assert.NotNull(error);
    }

    [Theory]
    [InlineData(new byte[] { 2, 1, 255, 4 })]
    [InlineData(new byte[] { 0, 9, 255, 52 })]
    [InlineData(new byte[] { 0, 1 })]
    [InlineData(new byte[] { 0, 255, 52 })]
    [InlineData(new byte[] { 0, 10, 255, 52 })]
    [InlineData(new byte[] { 1, 1, 255, 7 })]
    [InlineData(new byte[] { 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 255 })]
    [InlineData(new byte[] { 0, 2, 255, 52, 0xC3 })]
    public void Bad_binary_payloads_are_refused(byte[] payload)
    {
        Assert.False(EngineProtocol.V3.TryDecodePayload(null, payload, [], out var error));
        Assert.NotNull(error);
    }

    [Fact]
    public void WebSocket_binary_messages_carry_their_type_byte_or_go_as_base64_text()
    {
        var (text, bytes) = EngineProtocol.V3.WebSocketBinary(OutboundPacket.Binary(new byte[] { 1, 2 }));
        Assert.False(text);
        Assert.Equal(new byte[] { 4, 1, 2 }, bytes.ToArray());
        (text, bytes) = EngineProtocol.V3Base64.WebSocketBinary(OutboundPacket.Binary(new byte[] { 1, 2 }));
        Assert.True(text);
        Assert.Equal("b4AQI=", Encoding.ASCII.GetString(bytes.Span));
        (text, bytes) = EngineProtocol.V4.WebSocketBinary(OutboundPacket.Binary(new byte[] { 1, 2 }));
        Assert.False(text);
        Assert.Equal(new byte[] { 1, 2 }, bytes.ToArray());

        Assert.True(EngineProtocol.V3.TryParseBinary([4, 7], out var packet, out _));
        Assert.Equal(new byte[] { 7 }, packet.Binary);
        Assert.False(EngineProtocol.V3.TryParseBinary([], out _, out _));
        Assert.True(EngineProtocol.V3.TryParseText("b4Bw==", out packet, out _));
        Assert.Equal(new byte[] { 7 }, packet.Binary);
    }

    [Theory]
    [InlineData("4", false, 4)]
    [InlineData("4", true, 4)]
    [InlineData("3", true, 3)]
    [InlineData("3", false, 0)]
    [InlineData("", true, 0)]
    [InlineData("abc", true, 0)]
    [InlineData("2", true, 0)]
    public void Only_an_exact_EIO_value_selects_a_revision(string eio, bool allowEio3, int expected)
    {
        Assert.Equal(expected, EngineProtocol.For(eio, allowEio3, base64: false)?.Revision ?? 0);
    }
}

public sealed class Eio3HostFixture : IAsyncLifetime
{
    public EngineHost Host { get; private set; } = null!;

    public async Task InitializeAsync() => Host = await EngineHost.StartAsync(o =>
    {
        o.AllowEIO3 = true;
        o.PingInterval = 1500;
        o.PingTimeout = 1500;
    });

    public async Task DisposeAsync() => await Host.DisposeAsync();
}

/// <summary>An Engine.IO server with AllowEIO3 (a client ping due within 1.5 + 1.5 s), over HTTP and WebSocket.</summary>
public class Eio3ServerTests(Eio3HostFixture fixture) : IClassFixture<Eio3HostFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);
    private readonly EngineHost _host = fixture.Host;

    private async Task<string> HandshakeAsync(string extra = "&b64=1")
    {
        var body = await _host.Http.GetStringAsync(EngineHost.Path + "?EIO=3&transport=polling" + extra);
        var colon = body.IndexOf(':');
        Assert.Equal(body.Length - colon - 1, int.Parse(body[..colon]));
        var open = JsonNode.Parse(body[(colon + 2)..])!.AsObject();
        Assert.Equal(["sid", "upgrades", "pingInterval", "pingTimeout"], open.Select(p => p.Key)); // no maxPayload in revision 3
        return open["sid"]!.GetValue<string>();
    }

    private async Task<string> PollAsync(string sid)
    {
        using var response = await _host.Http.GetAsync(EngineHost.Path + "?EIO=3&transport=polling&sid=" + sid);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    private async Task<HttpStatusCode> PostAsync(string sid, string body, string eio = "3")
    {
        using var response = await _host.Http.PostAsync(EngineHost.Path + $"?EIO={eio}&transport=polling&sid=" + sid, new StringContent(body));
        return response.StatusCode;
    }

    [Fact]
    public async Task A_client_ping_is_answered_with_a_pong_and_keeps_the_session_past_its_window()
    {
        var sid = await HandshakeAsync();
        Assert.Equal(3, _host.Server.TryGetSession(sid, out var session) ? session.ProtocolVersion : 0);

        // pinging every second for 6 s (twice the 3 s window): the session stays open, one pong per ping
        for (var i = 0; i < 6; i++)
        {
            Assert.Equal(HttpStatusCode.OK, await PostAsync(sid, "1:2"));
            Assert.Equal("1:3", await PollAsync(sid));
            await Task.Delay(1000);
        }

        Assert.Equal(EngineReadyState.Open, session.ReadyState);
    }

    [Fact]
    public async Task Without_a_client_ping_the_session_closes_after_ping_interval_plus_timeout_and_the_server_never_pings()
    {
        var sid = await HandshakeAsync();
        var listener = _host.Listeners[sid];
        var (reason, _) = await listener.Closed.WaitAsync(Wait);
        Assert.Equal(EngineCloseReason.PingTimeout, reason);
        Assert.Equal(HttpStatusCode.BadRequest, await PostAsync(sid, "1:2"));
    }

    [Fact]
    public async Task A_pong_from_the_client_is_the_wrong_heartbeat_direction()
    {
        var sid = await HandshakeAsync();
        await PostAsync(sid, "1:3");
        var (reason, description) = await _host.Listeners[sid].Closed.WaitAsync(Wait);
        Assert.Equal(EngineCloseReason.ParseError, reason);
        Assert.Equal("invalid heartbeat direction", description);
    }

    [Fact]
    public async Task Polling_carries_text_and_binary_both_ways_in_either_payload_form()
    {
        var sid = await HandshakeAsync();
        Assert.Equal(HttpStatusCode.OK, await PostAsync(sid, "5:4é😀€10:b4AQIDBA=="));
        Assert.Equal("5:4é😀€10:b4AQIDBA==", await PollAsync(sid));

        // an XHR2 client (no b64): a binary POST, and a binary answer when a binary packet is in it
        var binarySid = await HandshakeAsync(extra: "");
        var content = new ByteArrayContent([0, 6, 255, 52, 104, 101, 108, 108, 111, 1, 3, 255, 4, 1, 2]);
        content.Headers.ContentType = new("application/octet-stream");
        using (var post = await _host.Http.PostAsync(EngineHost.Path + "?EIO=3&transport=polling&sid=" + binarySid, content))
        {
            Assert.Equal(HttpStatusCode.OK, post.StatusCode);
        }

        using var poll = await _host.Http.GetAsync(EngineHost.Path + "?EIO=3&transport=polling&sid=" + binarySid);
        Assert.Equal("application/octet-stream", poll.Content.Headers.ContentType!.MediaType);
        Assert.Equal(new byte[] { 0, 6, 255, 52, 104, 101, 108, 108, 111, 1, 3, 255, 4, 1, 2 }, await poll.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task A_request_in_the_other_revision_for_a_session_is_refused()
    {
        var sid = await HandshakeAsync();
        Assert.Equal(HttpStatusCode.BadRequest, await PostAsync(sid, "4hello", eio: "4"));
        Assert.Equal(HttpStatusCode.OK, await PostAsync(sid, "1:2"));
    }

    [Fact]
    public async Task WebSocket_binary_frames_carry_the_type_byte_and_the_client_pings()
    {
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(_host.WebSocketUri("EIO=3&transport=websocket"), CancellationToken.None);
        var buffer = new byte[4096];
        var open = await ws.ReceiveAsync(buffer, CancellationToken.None);
        Assert.StartsWith("0{\"sid\"", Encoding.UTF8.GetString(buffer, 0, open.Count));

        await ws.SendAsync(new byte[] { 4, 1, 2, 3 }, WebSocketMessageType.Binary, true, CancellationToken.None);
        var echoed = await ws.ReceiveAsync(buffer, CancellationToken.None);
        Assert.Equal(WebSocketMessageType.Binary, echoed.MessageType);
        Assert.Equal(new byte[] { 4, 1, 2, 3 }, buffer[..echoed.Count]);

        await ws.SendAsync("2"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        var pong = await ws.ReceiveAsync(buffer, CancellationToken.None);
        Assert.Equal("3", Encoding.UTF8.GetString(buffer, 0, pong.Count));
        await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
    }
}

/// <summary>Without AllowEIO3 (the default), EIO=3 keeps its refusal.</summary>
public class Eio3RefusedTests(EngineHttpFixture fixture) : IClassFixture<EngineHttpFixture>
{
    [Fact]
    public async Task EIO3_is_refused_with_code_5_unless_allowed()
    {
        using var response = await fixture.Host.Http.GetAsync(EngineHost.Path + "?EIO=3&transport=polling");
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("{\"code\":5,\"message\":\"Unsupported protocol version\"}", await response.Content.ReadAsStringAsync());
    }
}

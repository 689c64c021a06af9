using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using Evolution.Events.EngineIO.Protocol;

namespace Evolution.Events.EngineIO.Tests;

public class EngineWebSocketFixture : IAsyncLifetime
{
    public EngineHost Host { get; private set; } = null!;

    /// <summary>WebSocket upgrades served on the raw connection.</summary>
    protected virtual bool RawUpgrade => false;

    public async Task InitializeAsync() => Host = await EngineHost.StartAsync(o => o.MaxPayload = 2000, rawUpgrade: RawUpgrade);

    public async Task DisposeAsync() => await Host.DisposeAsync();
}

public class EngineWebSocketTests(EngineWebSocketFixture fixture) : IClassFixture<EngineWebSocketFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15); // a wait on a condition: generous for a loaded machine
    private readonly EngineHost _host = fixture.Host;

    [Fact]
    public async Task A_websocket_session_opens_with_no_upgrades_and_echoes_text_and_binary()
    {
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(_host.WebSocketUri("EIO=4&transport=websocket"), CancellationToken.None);
        var open = await ReceiveAsync(ws);
        Assert.Equal(WebSocketMessageType.Text, open.Type);
        Assert.StartsWith("0{", open.Text);
        var payload = JsonNode.Parse(open.Text![1..])!.AsObject();
        Assert.Empty(payload["upgrades"]!.AsArray());
        var sid = payload["sid"]!.GetValue<string>();
        Assert.True(_host.Server.TryGetSession(sid, out var session));
        Assert.Equal("websocket", session.Transport);

        await SendTextAsync(ws, "4héllo");
        Assert.Equal("4héllo", (await ReceiveAsync(ws)).Text);
        await ws.SendAsync(new byte[] { 0, 1, 254, 255 }, WebSocketMessageType.Binary, true, CancellationToken.None);
        var binary = await ReceiveAsync(ws);
        Assert.Equal(WebSocketMessageType.Binary, binary.Type);
        Assert.Equal(new byte[] { 0, 1, 254, 255 }, binary.Binary);
        Assert.Equal(["héllo"], _host.Listeners[sid].Messages);

        await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        Assert.Equal(EngineCloseReason.TransportClose, (await _host.Listeners[sid].Closed.WaitAsync(Wait)).Reason);
    }

    [Fact]
    public async Task A_message_over_MaxPayload_closes_the_websocket_with_1009()
    {
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(_host.WebSocketUri("EIO=4&transport=websocket"), CancellationToken.None);
        var sid = JsonNode.Parse((await ReceiveAsync(ws)).Text![1..])!["sid"]!.GetValue<string>();
        await SendTextAsync(ws, "4" + new string('z', 5000));
        var closing = await ReceiveAsync(ws);
        Assert.Equal(WebSocketMessageType.Close, closing.Type);
        Assert.Equal(WebSocketCloseStatus.MessageTooBig, ws.CloseStatus);
        Assert.Equal(EngineCloseReason.TransportError, (await _host.Listeners[sid].Closed.WaitAsync(Wait)).Reason);
        Assert.Empty(_host.Listeners[sid].Messages);
    }

    [Fact]
    public async Task An_invalid_packet_on_the_websocket_is_a_parse_error()
    {
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(_host.WebSocketUri("EIO=4&transport=websocket"), CancellationToken.None);
        var sid = JsonNode.Parse((await ReceiveAsync(ws)).Text![1..])!["sid"]!.GetValue<string>();
        await SendTextAsync(ws, "8nonsense");
        var closed = await _host.Listeners[sid].Closed.WaitAsync(Wait);
        Assert.Equal(EngineCloseReason.ParseError, closed.Reason);
        Assert.Contains("unknown packet type", closed.Description);
    }

    [Fact]
    public async Task Upgrade_from_polling_moves_the_queue_to_the_websocket_without_loss_or_duplicates()
    {
        var (sid, _) = await _host.HandshakeAsync();
        Assert.True(_host.Server.TryGetSession(sid, out var session));
        Assert.True(session.Send(OutboundPacket.Message("before-1")));
        using (var poll = await _host.PollAsync(sid))
        {
            Assert.Equal("4before-1", await poll.Content.ReadAsStringAsync());
        }

        var waitingPoll = _host.PollAsync(sid);
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(_host.WebSocketUri("EIO=4&transport=websocket&sid=" + sid), CancellationToken.None);
        await SendTextAsync(ws, "2probe");
        Assert.Equal("3probe", (await ReceiveAsync(ws)).Text);

        // the waiting poll is released with a noop so the client can pause polling
        using (var released = await waitingPoll.WaitAsync(Wait))
        {
            Assert.Equal("6", await released.Content.ReadAsStringAsync());
        }

        // sent mid-upgrade: must leave exactly once, by the WebSocket
        Assert.True(session.Send(OutboundPacket.Message("during")));
        Assert.Equal("polling", session.Transport);
        await SendTextAsync(ws, "5");
        Assert.True(session.Send(OutboundPacket.Message("after")));

        Assert.Equal("4during", (await ReceiveAsync(ws)).Text);
        Assert.Equal("4after", (await ReceiveAsync(ws)).Text);
        Assert.Equal("websocket", session.Transport);
        Assert.True(_host.Server.WebSocketSessionCount >= 1);

        await SendTextAsync(ws, "4up");
        Assert.Equal("4up", (await ReceiveAsync(ws)).Text);

        // polling is over for this session
        using var late = await _host.PollAsync(sid);
        Assert.Equal(HttpStatusCode.BadRequest, late.StatusCode);
        Assert.Equal("{\"code\":3,\"message\":\"Bad request\"}", await late.Content.ReadAsStringAsync());

        // a second WebSocket for the upgraded session is accepted and closed at once
        using var second = new ClientWebSocket();
        await second.ConnectAsync(_host.WebSocketUri("EIO=4&transport=websocket&sid=" + sid), CancellationToken.None);
        Assert.Equal(WebSocketMessageType.Close, (await ReceiveAsync(second)).Type);
        Assert.Equal(EngineReadyState.Open, session.ReadyState);
    }

    [Fact]
    public async Task A_failed_probe_leaves_the_session_on_polling()
    {
        var (sid, _) = await _host.HandshakeAsync();
        Assert.True(_host.Server.TryGetSession(sid, out var session));
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(_host.WebSocketUri("EIO=4&transport=websocket&sid=" + sid), CancellationToken.None);
        await SendTextAsync(ws, "4not-a-probe");
        Assert.Equal(WebSocketMessageType.Close, (await ReceiveAsync(ws)).Type);
        Assert.Equal("polling", session.Transport);
        Assert.True(session.Send(OutboundPacket.Message("still polling")));
        using var poll = await _host.PollAsync(sid);
        Assert.Equal("4still polling", await poll.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Frames_small_and_larger_than_a_batch_arrive_whole_and_in_order_then_the_close()
    {
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(_host.WebSocketUri("EIO=4&transport=websocket"), CancellationToken.None);
        var sid = JsonNode.Parse((await ReceiveAsync(ws)).Text![1..])!["sid"]!.GetValue<string>();
        Assert.True(_host.Server.TryGetSession(sid, out var session));

        // a 100 KB message is written as its own frame (64-bit length), between batched ones (7- and 16-bit lengths)
        var large = new string('L', 100_000);
        var medium = new string('m', 300);
        Assert.True(session.Send(OutboundPacket.Message("a")));
        Assert.True(session.Send(OutboundPacket.Message(large)));
        Assert.True(session.Send(OutboundPacket.Message(medium)));
        Assert.True(session.Send(OutboundPacket.Binary(new byte[] { 7, 8, 9 })));
        session.Close();

        Assert.Equal("4a", (await ReceiveAsync(ws)).Text);
        Assert.Equal("4" + large, (await ReceiveAsync(ws)).Text);
        Assert.Equal("4" + medium, (await ReceiveAsync(ws)).Text);
        Assert.Equal(new byte[] { 7, 8, 9 }, (await ReceiveAsync(ws)).Binary);
        Assert.Equal(WebSocketMessageType.Close, (await ReceiveAsync(ws)).Type);
        Assert.Equal(EngineCloseReason.ForcedClose, (await _host.Listeners[sid].Closed.WaitAsync(Wait)).Reason);
    }

    internal static Task SendTextAsync(ClientWebSocket ws, string text) =>
        ws.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);

    internal static async Task<(WebSocketMessageType Type, string? Text, byte[]? Binary)> ReceiveAsync(ClientWebSocket ws)
    {
        using var cts = new CancellationTokenSource(Wait);
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        while (true)
        {
            var result = await ws.ReceiveAsync(buffer, cts.Token);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return (WebSocketMessageType.Close, null, null);
            }

            message.Write(buffer, 0, result.Count);
            if (result.EndOfMessage)
            {
                var bytes = message.ToArray();
                return result.MessageType == WebSocketMessageType.Text
                    ? (WebSocketMessageType.Text, Encoding.UTF8.GetString(bytes), null)
                    : (WebSocketMessageType.Binary, null, bytes);
            }
        }
    }
}

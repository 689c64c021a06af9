using System.Buffers.Binary;
using System.IO.Compression;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using Evolution.Events.EngineIO.Protocol;
using Evolution.Events.EngineIO.Transports;

namespace Evolution.Events.EngineIO.Tests;

public sealed class PerMessageDeflateFixture : IAsyncLifetime
{
    public const int MaxPayload = 100_000;

    /// <summary>permessage-deflate on, WebSocket upgrades through the HTTP pipeline.</summary>
    public EngineHost Http { get; private set; } = null!;

    /// <summary>permessage-deflate on, WebSocket upgrades on the raw connection.</summary>
    public EngineHost Raw { get; private set; } = null!;

    /// <summary>The default options: permessage-deflate off.</summary>
    public EngineHost Off { get; private set; } = null!;

    public EngineHost Host(bool raw) => raw ? Raw : Http;

    public async Task InitializeAsync()
    {
        Http = await EngineHost.StartAsync(Configure);
        Raw = await EngineHost.StartAsync(Configure, rawUpgrade: true);
        Off = await EngineHost.StartAsync(o => o.MaxPayload = MaxPayload);
    }

    private static void Configure(EngineIOOptions o)
    {
        o.MaxPayload = MaxPayload;
        o.PerMessageDeflate = new PerMessageDeflateOptions();
    }

    public async Task DisposeAsync()
    {
        await Http.DisposeAsync();
        await Raw.DisposeAsync();
        await Off.DisposeAsync();
    }
}

/// <summary>
/// permessage-deflate (RFC 7692) on the Engine.IO WebSocket, byte for byte on the wire (a raw socket client) and with
/// .NET's own ClientWebSocket. One class: the process-wide compression counter is read by one test at a time.
/// </summary>
[Collection(AttackCollection.Name)] // the zip-bomb test measures the process's allocations: nothing else may run meanwhile
public class PerMessageDeflateTests(PerMessageDeflateFixture fixture) : IClassFixture<PerMessageDeflateFixture>
{
    private const string Accepted = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_large_message_is_compressed_both_ways_and_arrives_intact(bool raw)
    {
        var host = fixture.Host(raw);
        await using var ws = await WireWebSocket.ConnectAsync(host, "EIO=4&transport=websocket", "permessage-deflate; client_max_window_bits");
        Assert.Equal(Accepted, ws.Extensions);
        var (open, openCompressed) = await ws.ReadTextAsync();
        Assert.False(openCompressed); // below the threshold: RSV1 clear
        var sid = JsonNode.Parse(open[1..])!["sid"]!.GetValue<string>();

        var text = Repetitive(50_000);
        var sentBytes = await ws.SendAsync(0x1, Encoding.UTF8.GetBytes("4" + text), compress: true);
        Assert.True(sentBytes < 5_000, $"the client's frame took {sentBytes} bytes");
        var echo = await ws.ReadFrameAsync();
        Assert.True(echo.Compressed);
        Assert.True(echo.WireLength < 5_000, $"the server's frame took {echo.WireLength} bytes");
        Assert.Equal("4" + text, Encoding.UTF8.GetString(Inflate(echo.Payload)));
        Assert.Equal([text], host.Listeners[sid].Messages);

        // binary too, and both ways
        var binary = new byte[30_000];
        for (var i = 0; i < binary.Length; i++)
        {
            binary[i] = (byte)(i % 7);
        }

        await ws.SendAsync(0x2, binary, compress: true);
        var binaryEcho = await ws.ReadFrameAsync();
        Assert.Equal(0x2, binaryEcho.Opcode);
        Assert.True(binaryEcho.Compressed);
        Assert.Equal(binary, Inflate(binaryEcho.Payload));
        Assert.Equal(binary, Assert.Single(host.Listeners[sid].Binaries));

        // a message under the threshold goes uncompressed; the client may send uncompressed frames too
        await ws.SendAsync(0x1, "4short"u8.ToArray(), compress: false);
        var small = await ws.ReadFrameAsync();
        Assert.False(small.Compressed);
        Assert.Equal("4short", Encoding.UTF8.GetString(small.Payload));
    }

    [Fact]
    public async Task A_fragmented_compressed_message_is_inflated_once_whole()
    {
        var host = fixture.Http;
        await using var ws = await WireWebSocket.ConnectAsync(host, "EIO=4&transport=websocket", "permessage-deflate");
        var sid = JsonNode.Parse((await ws.ReadTextAsync()).Text[1..])!["sid"]!.GetValue<string>();
        var text = "4" + Repetitive(20_000);
        var compressed = Deflate(Encoding.UTF8.GetBytes(text));
        var half = compressed.Length / 2;

        // RSV1 on the first frame only (RFC 7692 section 6.1), the continuation carries the rest
        await ws.SendRawFrameAsync(0x40 | 0x1, compressed[..half]);
        await ws.SendRawFrameAsync(0x80 | 0x0, compressed[half..]);
        var echo = await ws.ReadFrameAsync();
        Assert.Equal(text, Encoding.UTF8.GetString(Inflate(echo.Payload)));
        Assert.Equal([text[1..]], host.Listeners[sid].Messages);
    }

    [Fact]
    public async Task A_zip_bomb_is_refused_with_1009_before_it_is_inflated()
    {
        var host = fixture.Http;
        await using var ws = await WireWebSocket.ConnectAsync(host, "EIO=4&transport=websocket", "permessage-deflate");
        var sid = JsonNode.Parse((await ws.ReadTextAsync()).Text[1..])!["sid"]!.GetValue<string>();

        // 50 MB of zeros deflate to about 50 KB: under MaxPayload on the wire, 500 times over it inflated
        var bomb = Deflate(new byte[50_000_000]);
        Assert.True(bomb.Length < PerMessageDeflateFixture.MaxPayload);
        var before = GC.GetTotalAllocatedBytes(precise: false);
        await ws.SendAsync(0x1, bomb, compress: false, rsv1: true);

        Assert.Equal(WebSocketCloseStatus.MessageTooBig, await ws.ReadCloseAsync());
        Assert.Equal(EngineCloseReason.TransportError, (await host.Listeners[sid].Closed.WaitAsync(Wait)).Reason);
        Assert.Empty(host.Listeners[sid].Messages);
        var allocated = GC.GetTotalAllocatedBytes(precise: false) - before;
        Assert.True(allocated < 40_000_000, $"{allocated} bytes allocated while refusing the bomb"); // not 50 MB
    }

    [Fact]
    public async Task Data_that_does_not_inflate_closes_with_1007()
    {
        var host = fixture.Http;
        await using var ws = await WireWebSocket.ConnectAsync(host, "EIO=4&transport=websocket", "permessage-deflate");
        var sid = JsonNode.Parse((await ws.ReadTextAsync()).Text[1..])!["sid"]!.GetValue<string>();
        await ws.SendAsync(0x1, [0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3], compress: false, rsv1: true);
        Assert.Equal(WebSocketCloseStatus.InvalidPayloadData, await ws.ReadCloseAsync());
        Assert.Equal(EngineCloseReason.TransportError, (await host.Listeners[sid].Closed.WaitAsync(Wait)).Reason);
    }

    [Theory]
    [InlineData(0x80 | 0x40 | 0x9)] // RSV1 on a ping
    [InlineData(0x80 | 0x20 | 0x1)] // RSV2: no extension defines it
    public async Task Reserved_bits_outside_a_data_message_start_close_with_1002(int firstByte)
    {
        await using var ws = await WireWebSocket.ConnectAsync(fixture.Http, "EIO=4&transport=websocket", "permessage-deflate");
        await ws.ReadTextAsync();
        await ws.SendRawFrameAsync((byte)firstByte, "4x"u8.ToArray());
        Assert.Equal(WebSocketCloseStatus.ProtocolError, await ws.ReadCloseAsync());
    }

    [Fact]
    public async Task RSV1_on_a_continuation_frame_closes_with_1002()
    {
        await using var ws = await WireWebSocket.ConnectAsync(fixture.Http, "EIO=4&transport=websocket", "permessage-deflate");
        await ws.ReadTextAsync();
        await ws.SendRawFrameAsync(0x1, "4a"u8.ToArray());
        await ws.SendRawFrameAsync(0x80 | 0x40, "b"u8.ToArray());
        Assert.Equal(WebSocketCloseStatus.ProtocolError, await ws.ReadCloseAsync());
    }

    [Theory]
    [InlineData("permessage-deflate; server_max_window_bits=99")]
    [InlineData("permessage-deflate; server_max_window_bits")]
    [InlineData("permessage-deflate; client_max_window_bits=7")]
    [InlineData("permessage-deflate; client_no_context_takeover=1")]
    [InlineData("permessage-deflate; unknown_parameter")]
    [InlineData("permessage-deflate; server_no_context_takeover; server_no_context_takeover")]
    [InlineData("x-webkit-deflate-frame")]
    public async Task An_offer_that_cannot_be_accepted_is_declined_and_the_connection_goes_on_uncompressed(string offer)
    {
        await using var ws = await WireWebSocket.ConnectAsync(fixture.Http, "EIO=4&transport=websocket", offer);
        Assert.Null(ws.Extensions);
        await ws.ReadTextAsync();
        var text = "4" + Repetitive(5_000);
        await ws.SendAsync(0x1, Encoding.UTF8.GetBytes(text), compress: false);
        var echo = await ws.ReadFrameAsync();
        Assert.False(echo.Compressed);
        Assert.Equal(text, Encoding.UTF8.GetString(echo.Payload));

        // without the extension, RSV1 is a protocol error
        await ws.SendAsync(0x1, Deflate("4x"u8.ToArray()), compress: false, rsv1: true);
        Assert.Equal(WebSocketCloseStatus.ProtocolError, await ws.ReadCloseAsync());
    }

    [Fact]
    public async Task The_first_acceptable_offer_is_taken()
    {
        await using var ws = await WireWebSocket.ConnectAsync(fixture.Http, "EIO=4&transport=websocket",
            "permessage-deflate; unknown_parameter, permessage-deflate; client_max_window_bits=10");
        Assert.Equal(Accepted, ws.Extensions);
    }

    [Fact]
    public async Task A_client_window_limit_is_honoured_by_compressing_only_messages_that_fit_it()
    {
        await using var ws = await WireWebSocket.ConnectAsync(fixture.Http, "EIO=4&transport=websocket",
            "permessage-deflate; server_max_window_bits=12");
        Assert.Equal(Accepted + "; server_max_window_bits=12", ws.Extensions);
        await ws.ReadTextAsync();

        var fits = "4" + Repetitive(4_000); // 4001 bytes: within a 4096-byte window
        await ws.SendAsync(0x1, Encoding.UTF8.GetBytes(fits), compress: true);
        var first = await ws.ReadFrameAsync();
        Assert.True(first.Compressed);
        Assert.Equal(fits, Encoding.UTF8.GetString(Inflate(first.Payload)));

        var over = "4" + Repetitive(5_000);
        await ws.SendAsync(0x1, Encoding.UTF8.GetBytes(over), compress: true);
        var second = await ws.ReadFrameAsync();
        Assert.False(second.Compressed);
        Assert.Equal(over, Encoding.UTF8.GetString(second.Payload));
    }

    [Fact]
    public async Task Off_by_default_the_offer_is_not_answered()
    {
        Assert.Null(new EngineIOOptions().PerMessageDeflate);
        await using var ws = await WireWebSocket.ConnectAsync(fixture.Off, "EIO=4&transport=websocket", "permessage-deflate; client_max_window_bits");
        Assert.Null(ws.Extensions);
        await ws.ReadTextAsync();
        var text = "4" + Repetitive(5_000);
        await ws.SendAsync(0x1, Encoding.UTF8.GetBytes(text), compress: false);
        var echo = await ws.ReadFrameAsync();
        Assert.False(echo.Compressed);
        Assert.Equal(text, Encoding.UTF8.GetString(echo.Payload));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_upgrade_from_polling_negotiates_it_too(bool raw)
    {
        var host = fixture.Host(raw);
        var (sid, _) = await host.HandshakeAsync();
        await using var ws = await WireWebSocket.ConnectAsync(host, "EIO=4&transport=websocket&sid=" + sid, "permessage-deflate");
        Assert.Equal(Accepted, ws.Extensions);
        await ws.SendAsync(0x1, "2probe"u8.ToArray(), compress: false);
        Assert.Equal("3probe", (await ws.ReadTextAsync()).Text);
        await ws.SendAsync(0x1, "5"u8.ToArray(), compress: false);
        Assert.True(host.Server.TryGetSession(sid, out var session));
        var text = Repetitive(3_000);
        Assert.True(session.Send(OutboundPacket.Message(text)));
        var frame = await ws.ReadFrameAsync();
        Assert.True(frame.Compressed);
        Assert.Equal("4" + text, Encoding.UTF8.GetString(Inflate(frame.Payload)));
    }

    [Fact]
    public async Task A_message_sent_to_many_sockets_is_compressed_once_and_the_bytes_shared()
    {
        var host = fixture.Http;
        host.Echo = false;
        try
        {
            var sockets = new List<WireWebSocket>();
            var sessions = new List<EngineSocket>();
            for (var i = 0; i < 3; i++)
            {
                var ws = await WireWebSocket.ConnectAsync(host, "EIO=4&transport=websocket", "permessage-deflate");
                sockets.Add(ws);
                var sid = JsonNode.Parse((await ws.ReadTextAsync()).Text[1..])!["sid"]!.GetValue<string>();
                Assert.True(host.Server.TryGetSession(sid, out var session));
                sessions.Add(session);
            }

            var packet = OutboundPacket.Message(Repetitive(10_000)); // one packet, as a broadcast shares it
            var before = WebSocketDeflate.Compressions;
            foreach (var session in sessions)
            {
                Assert.True(session.Send(packet));
            }

            var frames = new List<byte[]>();
            foreach (var ws in sockets)
            {
                var frame = await ws.ReadFrameAsync();
                Assert.True(frame.Compressed);
                frames.Add(frame.Payload);
                await ws.DisposeAsync();
            }

            Assert.Equal(1, WebSocketDeflate.Compressions - before);
            Assert.All(frames, f => Assert.Equal(frames[0], f));
            Assert.Equal("4" + Repetitive(10_000), Encoding.UTF8.GetString(Inflate(frames[0])));
        }
        finally
        {
            host.Echo = true;
        }
    }

    [Fact]
    public async Task DotNet_ClientWebSocket_negotiates_it_and_exchanges_large_messages()
    {
        var host = fixture.Raw;
        using var ws = new ClientWebSocket();
        ws.Options.DangerousDeflateOptions = new WebSocketDeflateOptions();
        ws.Options.CollectHttpResponseDetails = true;
        await ws.ConnectAsync(host.WebSocketUri("EIO=4&transport=websocket"), CancellationToken.None);
        Assert.Contains("permessage-deflate", ws.HttpResponseHeaders!["Sec-WebSocket-Extensions"].Single(), StringComparison.Ordinal);
        var open = await ReceiveTextAsync(ws);
        var sid = JsonNode.Parse(open[1..])!["sid"]!.GetValue<string>();

        var text = "4" + Repetitive(80_000);
        await ws.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, WebSocketMessageFlags.EndOfMessage, CancellationToken.None);
        Assert.Equal(text, await ReceiveTextAsync(ws));
        Assert.Equal([text[1..]], host.Listeners[sid].Messages);
        await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
    }

    internal static string Repetitive(int length)
    {
        var builder = new StringBuilder(length + 64);
        for (var i = 0; builder.Length < length; i++)
        {
            builder.Append("{\"event\":\"messages.upsert\",\"n\":").Append(i % 100).Append("},");
        }

        return builder.ToString(0, length);
    }

    internal static byte[] Deflate(byte[] data)
    {
        using var output = new MemoryStream();
        using (var deflate = new DeflateStream(output, CompressionLevel.Optimal, leaveOpen: true))
        {
            deflate.Write(data);
            deflate.Flush();
        }

        var bytes = output.ToArray();
        var end = bytes.AsSpan().LastIndexOf((byte[])[0x00, 0x00, 0xFF, 0xFF]);
        return bytes[..end];
    }

    internal static byte[] Inflate(byte[] compressed)
    {
        using var input = new MemoryStream([.. compressed, 0x00, 0x00, 0xFF, 0xFF]);
        using var inflate = new DeflateStream(input, CompressionMode.Decompress);
        using var output = new MemoryStream();
        inflate.CopyTo(output);
        return output.ToArray();
    }

    private static async Task<string> ReceiveTextAsync(ClientWebSocket ws)
    {
        using var timeout = new CancellationTokenSource(Wait);
        var buffer = new byte[200_000];
        var count = 0;
        while (true)
        {
            var result = await ws.ReceiveAsync(buffer.AsMemory(count), timeout.Token);
            count += result.Count;
            if (result.EndOfMessage)
            {
                return Encoding.UTF8.GetString(buffer, 0, count);
            }
        }
    }
}

/// <summary>A WebSocket client on a bare socket: the handshake's exact headers, frames with their reserved bits.</summary>
internal sealed class WireWebSocket : IAsyncDisposable
{
    private readonly TcpClient _client;
    private readonly NetworkStream _stream;
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(20));

    private WireWebSocket(TcpClient client, string? extensions)
    {
        _client = client;
        _stream = client.GetStream();
        Extensions = extensions;
    }

    /// <summary>The server's Sec-WebSocket-Extensions answer (null: none).</summary>
    public string? Extensions { get; }

    public readonly record struct Frame(byte Opcode, bool Compressed, byte[] Payload, int WireLength);

    public static async Task<WireWebSocket> ConnectAsync(EngineHost host, string query, string? offer)
    {
        var client = new TcpClient();
        await client.ConnectAsync(host.BaseUri.Host, host.BaseUri.Port);
        var stream = client.GetStream();
        var request = $"GET {EngineHost.Path}?{query} HTTP/1.1\r\nHost: {host.BaseUri.Authority}\r\nUpgrade: websocket\r\n"
            + "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            + (offer is null ? "" : $"Sec-WebSocket-Extensions: {offer}\r\n") + "\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        var head = new List<byte>();
        var one = new byte[1];
        while (!(head.Count >= 4 && head[^4] == '\r' && head[^3] == '\n' && head[^2] == '\r' && head[^1] == '\n'))
        {
            if (await stream.ReadAsync(one) == 0)
            {
                throw new IOException("closed during the handshake: " + Encoding.ASCII.GetString([.. head]));
            }

            head.Add(one[0]);
        }

        var text = Encoding.ASCII.GetString([.. head]);
        Assert.StartsWith("HTTP/1.1 101", text, StringComparison.Ordinal);
        string? extensions = null;
        foreach (var line in text.Split("\r\n"))
        {
            if (line.StartsWith("Sec-WebSocket-Extensions:", StringComparison.OrdinalIgnoreCase))
            {
                extensions = line["Sec-WebSocket-Extensions:".Length..].Trim();
            }
        }

        return new WireWebSocket(client, extensions);
    }

    /// <summary>Sends one whole message (compressed with RSV1 when asked); returns the frame's length on the wire.</summary>
    public async Task<int> SendAsync(byte opcode, byte[] payload, bool compress, bool rsv1 = false)
    {
        var body = compress ? PerMessageDeflateTests.Deflate(payload) : payload;
        return await SendRawFrameAsync((byte)(0x80 | (compress || rsv1 ? 0x40 : 0) | opcode), body);
    }

    /// <summary>Sends one masked frame with this first byte (FIN, RSV bits, opcode) as given.</summary>
    public async Task<int> SendRawFrameAsync(byte first, byte[] payload)
    {
        var header = new List<byte> { first };
        if (payload.Length < 126)
        {
            header.Add((byte)(0x80 | payload.Length));
        }
        else if (payload.Length <= ushort.MaxValue)
        {
            header.Add(0x80 | 126);
            header.Add((byte)(payload.Length >> 8));
            header.Add((byte)payload.Length);
        }
        else
        {
            header.Add(0x80 | 127);
            var length = new byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(length, (ulong)payload.Length);
            header.AddRange(length);
        }

        byte[] mask = [0x12, 0x34, 0x56, 0x78];
        header.AddRange(mask);
        var masked = new byte[payload.Length];
        for (var i = 0; i < payload.Length; i++)
        {
            masked[i] = (byte)(payload[i] ^ mask[i & 3]);
        }

        await _stream.WriteAsync((byte[])[.. header, .. masked], _timeout.Token);
        return header.Count + masked.Length;
    }

    public async Task<Frame> ReadFrameAsync()
    {
        var head = await ReadExactlyAsync(2);
        var length = (long)(head[1] & 0x7F);
        var size = 2;
        if (length == 126)
        {
            length = BinaryPrimitives.ReadUInt16BigEndian(await ReadExactlyAsync(2));
            size += 2;
        }
        else if (length == 127)
        {
            length = (long)BinaryPrimitives.ReadUInt64BigEndian(await ReadExactlyAsync(8));
            size += 8;
        }

        Assert.Equal(0, head[1] & 0x80); // a server never masks
        Assert.Equal(0x80, head[0] & 0x80); // the server sends whole messages
        var payload = await ReadExactlyAsync((int)length);
        return new Frame((byte)(head[0] & 0x0F), (head[0] & 0x40) != 0, payload, size + (int)length);
    }

    public async Task<(string Text, bool Compressed)> ReadTextAsync()
    {
        var frame = await ReadFrameAsync();
        Assert.Equal(0x1, frame.Opcode);
        var bytes = frame.Compressed ? PerMessageDeflateTests.Inflate(frame.Payload) : frame.Payload;
        return (Encoding.UTF8.GetString(bytes), frame.Compressed);
    }

    /// <summary>Reads frames until the close frame; returns its code.</summary>
    public async Task<WebSocketCloseStatus> ReadCloseAsync()
    {
        while (true)
        {
            var frame = await ReadFrameAsync();
            if (frame.Opcode == 0x8)
            {
                return (WebSocketCloseStatus)BinaryPrimitives.ReadUInt16BigEndian(frame.Payload);
            }
        }
    }

    private async Task<byte[]> ReadExactlyAsync(int count)
    {
        var bytes = new byte[count];
        await _stream.ReadExactlyAsync(bytes, _timeout.Token);
        return bytes;
    }

    public ValueTask DisposeAsync()
    {
        _client.Dispose();
        _timeout.Dispose();
        return ValueTask.CompletedTask;
    }
}

using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Evolution.Events.EngineIO.Tests;

/// <summary>Tests that measure this process's managed memory or its process-wide string table: nothing else may run meanwhile.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AttackCollection
{
    public const string Name = "Engine.IO attacks (not parallel: they measure memory)";
}

/// <summary>
/// What a stranger can send must cost little and briefly. Each test is the attack, done by a real
/// client on loopback (raw TCP where a well-behaved client library would not misbehave), in bounded loops.
/// </summary>
[Collection(AttackCollection.Name)]
public class AttackTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int MiB = 1024 * 1024;

    [Fact]
    public async Task Frame_headers_that_announce_a_megabyte_cost_what_was_received_not_what_was_announced()
    {
        await using var host = await EngineHost.StartAsync(o => o.MaxPayload = 1_000_000);
        const int connections = 300;
        var clients = new List<RawWebSocket>();
        try
        {
            for (var i = 0; i < connections; i++)
            {
                clients.Add(await RawWebSocket.ConnectAsync(host, "EIO=4&transport=websocket"));
            }

            await WaitUntilAsync(() => host.Server.SessionCount == connections, TimeSpan.FromSeconds(20));
            var before = GC.GetTotalMemory(forceFullCollection: true);

            // a masked text frame announcing 1,000,000 bytes (14-byte header), then 10 bytes of it
            foreach (var client in clients)
            {
                client.Send(RawWebSocket.FrameHeader(0x1, 1_000_000).Concat(Enumerable.Repeat((byte)'x', 10)).ToArray());
            }

            // the server reads as the bytes arrive: give it time, and keep the worst measurement
            var growth = 0L;
            for (var round = 0; round < 3; round++)
            {
                await Task.Delay(700);
                growth = Math.Max(growth, GC.GetTotalMemory(forceFullCollection: true) - before);
            }

            output.WriteLine($"{connections} headers announcing 1 MB: managed memory +{growth / (double)MiB:F1} MiB");
            Assert.True(growth < 10 * MiB, $"managed memory grew by {growth / (double)MiB:F1} MiB for {connections} announced 1 MB frames");
            Assert.Equal(connections, host.Server.SessionCount); // nobody was closed for it: they are just waiting
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }
    }

    [Fact]
    public async Task A_client_that_floods_pings_and_never_reads_loses_its_connection_at_the_ping_timeout()
    {
        await using var host = await EngineHost.StartAsync(o =>
        {
            o.PingInterval = 1000;
            o.PingTimeout = 1000;
        });
        using var client = await RawWebSocket.ConnectAsync(host, "EIO=4&transport=websocket", receiveBuffer: 4096);
        await WaitUntilAsync(() => host.Server.SessionCount == 1, TimeSpan.FromSeconds(10));

        // WebSocket pings with 125-byte payloads until the server stops taking them (its pongs fill
        // both socket buffers since this client never reads) or a bound is reached
        var ping = RawWebSocket.Frame(0x9, new byte[125]);
        var sent = client.SendUntilBlocked(ping, maxBytes: 256 * MiB, maxTime: TimeSpan.FromSeconds(15));
        Assert.True(sent > 0);

        var closedWithin = Stopwatch.StartNew();
        await WaitUntilAsync(() => host.Server.SessionCount == 0, TimeSpan.FromSeconds(15));
        var sessionGone = closedWithin.Elapsed;
        // the session is gone and so is its connection: the server aborted it (without the client reading a byte)
        await WaitUntilAsync(() => !client.IsEstablished(), TimeSpan.FromSeconds(10));
        output.WriteLine($"ping flood, {sent / (double)MiB:F1} MiB sent: session gone after {sessionGone.TotalSeconds:F1} s, connection after {closedWithin.Elapsed.TotalSeconds:F1} s");
        Assert.True(closedWithin.Elapsed < TimeSpan.FromSeconds(20), $"closed after {closedWithin.Elapsed}");
        Assert.True(await client.DrainsToEndAsync(TimeSpan.FromSeconds(10)), "the client never saw the end of the connection");
    }

    [Fact]
    public async Task A_write_that_waits_past_the_ping_timeout_aborts_the_connection_even_if_pongs_keep_coming()
    {
        await using var host = await EngineHost.StartAsync(o =>
        {
            o.PingInterval = 500;
            o.PingTimeout = 1500;
            o.MaxPayload = 100_000;
            o.MaxQueuedBytes = 1L << 30; // the queue bound is not what ends this
            o.MaxQueuedPackets = 1_000_000;
        });
        using var client = await RawWebSocket.ConnectAsync(host, "EIO=4&transport=websocket", receiveBuffer: 4096);
        await WaitUntilAsync(() => host.Server.SessionCount == 1, TimeSpan.FromSeconds(10));

        // messages the host echoes back (so the server's write to this non-reading client blocks),
        // and from the start a blind pong ("3") every 200 ms: the heartbeat alone would keep this
        // session forever
        var message = RawWebSocket.Frame(0x1, Encoding.ASCII.GetBytes("4" + new string('e', 60_000)));
        var pong = RawWebSocket.Frame(0x1, "3"u8.ToArray());
        long flooded = 0;
        var lastPong = TimeSpan.Zero;
        var watch = Stopwatch.StartNew();
        try
        {
            while (client.IsEstablished() && watch.Elapsed < TimeSpan.FromSeconds(15))
            {
                if (watch.Elapsed - lastPong > TimeSpan.FromMilliseconds(200))
                {
                    client.Send(pong);
                    lastPong = watch.Elapsed;
                }

                if (flooded < 16 * MiB)
                {
                    client.Send(message);
                    flooded += message.Length;
                }
                else
                {
                    await Task.Delay(50);
                }
            }
        }
        catch (System.Net.Sockets.SocketException)
        {
            // reset by the server: what this test waits for
        }

        output.WriteLine($"blind pongs with a stuck write: connection aborted after {watch.Elapsed.TotalSeconds:F1} s");
        Assert.False(client.IsEstablished(), "the connection with a write stuck for 15 s is still open");
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"aborted after {watch.Elapsed}");
        await WaitUntilAsync(() => host.Server.SessionCount == 0, TimeSpan.FromSeconds(5));
        Assert.Equal(EngineCloseReason.TransportError, (await host.Listeners.Values.Single().Closed.WaitAsync(TimeSpan.FromSeconds(5))).Reason);
    }

    [Fact]
    public async Task A_server_close_whose_flush_never_ends_aborts_the_connection_at_the_close_timeout()
    {
        await using var host = await EngineHost.StartAsync(o => o.CloseTimeout = 1000);
        using var client = await RawWebSocket.ConnectAsync(host, "EIO=4&transport=websocket", receiveBuffer: 4096);
        await WaitUntilAsync(() => host.Server.SessionCount == 1, TimeSpan.FromSeconds(10));
        var session = host.Listeners.Keys.Select(sid => host.Server.TryGetSession(sid, out var s) ? s : null).Single(s => s is not null)!;

        // more than both socket buffers hold, to a client that never reads; then a graceful close
        var chunk = Protocol.OutboundPacket.Message(new string('q', 60_000));
        for (var i = 0; i < 120; i++)
        {
            Assert.True(session.Send(chunk));
        }

        session.Close();
        var watch = Stopwatch.StartNew();
        await WaitUntilAsync(() => host.Server.SessionCount == 0 && !client.IsEstablished(), TimeSpan.FromSeconds(20));
        // due at the 1 s close timeout; without it the connection lives until the ping timeout (45 s by default):
        // 10 s tells the two apart with room for a loaded machine
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"closed after {watch.Elapsed}");
    }

    [Fact]
    public async Task A_session_whose_close_throws_is_still_forgotten()
    {
        using var factory = LoggerFactory.Create(b => b.AddProvider(new ThrowingLoggerProvider(eventId: 1002)).SetMinimumLevel(LogLevel.Trace));
        await using var host = await EngineHost.StartAsync(logger: factory.CreateLogger<EngineIOServer>());
        var (sid, _) = await host.HandshakeAsync();
        using var post = await host.PostAsync(sid, "1"); // the client closes: the close's log line throws
        Assert.True((int)post.StatusCode < 500, $"POST answered {(int)post.StatusCode}");
        Assert.False(host.Server.TryGetSession(sid, out _));
        Assert.Equal(0, host.Server.SessionCount);
        Assert.Equal(EngineCloseReason.TransportClose, (await host.Listeners[sid].Closed.WaitAsync(TimeSpan.FromSeconds(5))).Reason);
    }

    [Fact]
    public async Task A_handshake_with_a_30_KB_header_keeps_a_bounded_copy()
    {
        await using var host = await EngineHost.StartAsync();
        using var request = new HttpRequestMessage(HttpMethod.Get, EngineHost.Path + "?EIO=4&transport=polling");
        request.Headers.Add("X-Big", new string('b', 30_000));
        request.Headers.Add("apikey", "k1");
        using var response = await host.Http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        var sid = System.Text.Json.Nodes.JsonNode.Parse(body[1..])!["sid"]!.GetValue<string>();
        Assert.True(host.Server.TryGetSession(sid, out var session));
        var kept = session.Request.Headers.Sum(h => h.Key.Length + h.Value.Length);
        Assert.True(kept <= host.Server.Options.MaxHandshakeHeaderChars, $"kept {kept} characters of headers");
        Assert.False(session.Request.Headers.ContainsKey("X-Big"));
        Assert.Equal("k1", session.Request.Headers["apikey"]); // the small headers stay
    }

    internal static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            if (watch.Elapsed > timeout)
            {
                throw new TimeoutException($"condition not met within {timeout}");
            }

            await Task.Delay(50);
        }
    }
}

/// <summary>A logger whose provider throws for one event id (a failing log sink).</summary>
public sealed class ThrowingLoggerProvider(int eventId) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new Thrower(eventId);

    public void Dispose()
    {
    }

    private sealed class Thrower(int eventId) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId id, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (id.Id == eventId)
            {
                throw new InvalidOperationException("log sink failed");
            }
        }
    }
}

/// <summary>
/// A WebSocket client on a raw TCP socket, for what a client library would never do: announce
/// lengths it does not send, never read, send blind pongs.
/// </summary>
public sealed class RawWebSocket : IDisposable
{
    private readonly Socket _socket;

    private RawWebSocket(Socket socket) => _socket = socket;

    public static async Task<RawWebSocket> ConnectAsync(EngineHost host, string query, int? receiveBuffer = null)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        if (receiveBuffer is { } size)
        {
            socket.ReceiveBufferSize = size; // before connecting: the window the server sees
        }

        await socket.ConnectAsync(host.BaseUri.Host, host.BaseUri.Port);
        var request = $"GET {EngineHost.Path}?{query} HTTP/1.1\r\nHost: {host.BaseUri.Authority}\r\nUpgrade: websocket\r\n" +
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        await socket.SendAsync(Encoding.ASCII.GetBytes(request));

        // read the 101 response head (and whatever follows in the same reads) and nothing more
        var head = new StringBuilder();
        var buffer = new byte[1024];
        while (!head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory()).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            if (n == 0)
            {
                throw new IOException("connection closed during the handshake: " + head);
            }

            head.Append(Encoding.Latin1.GetString(buffer, 0, n));
        }

        Assert.StartsWith("HTTP/1.1 101", head.ToString(), StringComparison.Ordinal);
        socket.Blocking = false;
        return new RawWebSocket(socket);
    }

    /// <summary>A masked client frame header (FIN set) announcing <paramref name="length"/> bytes, zero mask.</summary>
    public static byte[] FrameHeader(byte opcode, long length)
    {
        var header = new List<byte> { (byte)(0x80 | opcode) };
        if (length < 126)
        {
            header.Add((byte)(0x80 | length));
        }
        else if (length <= ushort.MaxValue)
        {
            header.Add(0x80 | 126);
            header.AddRange([(byte)(length >> 8), (byte)length]);
        }
        else
        {
            header.Add(0x80 | 127);
            var len = new byte[8];
            BinaryPrimitives.WriteInt64BigEndian(len, length);
            header.AddRange(len);
        }

        header.AddRange([0, 0, 0, 0]); // a zero mask leaves the payload as is
        return [.. header];
    }

    public static byte[] Frame(byte opcode, byte[] payload) => [.. FrameHeader(opcode, payload.Length), .. payload];

    /// <summary>Sends all of it, waiting (bounded) while the socket buffer is full.</summary>
    public void Send(byte[] data)
    {
        var offset = 0;
        var watch = Stopwatch.StartNew();
        while (offset < data.Length)
        {
            var n = _socket.Send(data, offset, data.Length - offset, SocketFlags.None, out var error);
            if (error == SocketError.WouldBlock)
            {
                if (watch.Elapsed > TimeSpan.FromSeconds(10))
                {
                    throw new TimeoutException("send blocked");
                }

                Thread.Sleep(5);
                continue;
            }

            if (error != SocketError.Success)
            {
                throw new SocketException((int)error);
            }

            offset += n;
        }
    }

    /// <summary>Sends the frame over and over until the socket would block for 500 ms, or a bound; returns the bytes sent.</summary>
    public long SendUntilBlocked(byte[] frame, long maxBytes, TimeSpan maxTime)
    {
        long sent = 0;
        var offset = 0;
        var watch = Stopwatch.StartNew();
        var blockedSince = (TimeSpan?)null;
        while (sent < maxBytes && watch.Elapsed < maxTime)
        {
            var n = _socket.Send(frame, offset, frame.Length - offset, SocketFlags.None, out var error);
            if (error == SocketError.WouldBlock)
            {
                blockedSince ??= watch.Elapsed;
                if (watch.Elapsed - blockedSince > TimeSpan.FromMilliseconds(500))
                {
                    break;
                }

                Thread.Sleep(10);
                continue;
            }

            if (error != SocketError.Success)
            {
                break;
            }

            blockedSince = null;
            sent += n;
            offset = (offset + n) % frame.Length;
        }

        // finish the frame under way, so what follows is frame-aligned (bounded: the server may not read it)
        var finish = Stopwatch.StartNew();
        while (offset != 0 && finish.Elapsed < TimeSpan.FromSeconds(2))
        {
            var n = _socket.Send(frame, offset, frame.Length - offset, SocketFlags.None, out var error);
            if (error == SocketError.Success)
            {
                offset = (offset + n) % frame.Length;
            }
            else if (error == SocketError.WouldBlock)
            {
                Thread.Sleep(10);
            }
            else
            {
                break;
            }
        }

        return sent;
    }

    /// <summary>Sends all of it within the timeout; false when the connection ended or stayed full.</summary>
    public bool TrySendAll(byte[] data, TimeSpan timeout)
    {
        var offset = 0;
        var watch = Stopwatch.StartNew();
        while (offset < data.Length)
        {
            var n = _socket.Send(data, offset, data.Length - offset, SocketFlags.None, out var error);
            if (error == SocketError.WouldBlock)
            {
                if (watch.Elapsed > timeout)
                {
                    return false;
                }

                Thread.Sleep(2);
                continue;
            }

            if (error != SocketError.Success)
            {
                return false;
            }

            offset += n;
        }

        return true;
    }

    /// <summary>Sends if the socket takes it at once (a whole small frame or nothing).</summary>
    public void TrySend(byte[] frame) => _socket.Send(frame, 0, frame.Length, SocketFlags.None, out _);

    /// <summary>Whether the kernel still has this connection ESTABLISHED (no FIN or RST from the server yet).</summary>
    public bool IsEstablished()
    {
        var local = (System.Net.IPEndPoint)_socket.LocalEndPoint!;
        return IPGlobalProperties.GetIPGlobalProperties().GetActiveTcpConnections()
            .Any(c => c.LocalEndPoint.Equals(local) && c.State == TcpState.Established);
    }

    /// <summary>Reads everything left until the end of the stream (EOF or reset); false past the timeout.</summary>
    public async Task<bool> DrainsToEndAsync(TimeSpan timeout)
    {
        _socket.Blocking = true;
        var buffer = new byte[64 * 1024];
        var watch = Stopwatch.StartNew();
        try
        {
            while (watch.Elapsed < timeout)
            {
                var n = await _socket.ReceiveAsync(buffer.AsMemory()).AsTask().WaitAsync(timeout);
                if (n == 0)
                {
                    return true;
                }
            }
        }
        catch (SocketException)
        {
            return true; // reset
        }
        catch (TimeoutException)
        {
            return false;
        }

        return false;
    }

    public void Dispose() => _socket.Dispose();
}

using System.Net.Sockets;
using TcpSocket = System.Net.Sockets.Socket;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using Evolution.Events.EngineIO;

namespace Evolution.Events.SocketIO.Tests;

/// <summary>
/// One client stops reading while another keeps up, and the server broadcasts a lot: the slow one is
/// cut off (reason "slow consumer") with its queue bounded, the healthy one gets everything.
/// </summary>
// measures the managed heap (process-wide): in the non-parallel collection, so other tests do not allocate meanwhile
[Collection(AttackCollection.Name)]
public sealed class SlowConsumerTests : IAsyncLifetime
{
    private const int MaxQueued = 256;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync(o => o.Engine.MaxQueuedPackets = MaxQueued);

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_client_that_stops_reading_is_disconnected_and_the_others_get_everything()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var memoryBefore = GC.GetTotalMemory(forceFullCollection: true);

        using var slow = await RawSocketIOClient.ConnectAsync(_server.BaseUri, "slow");
        Assert.True(_server.Io.Engine.TryGetSession(slow.Sid, out var slowSession));
        using var healthy = new HealthyClient();
        await healthy.ConnectAsync(_server.BaseUri, "healthy");
        await _server.WaitForAsync(o => o.Tag == "healthy" && o.Kind == "connect");
        await _server.WaitForAsync(o => o.Tag == "slow" && o.Kind == "connect");

        // from here on the slow client never reads again
        var payload = new string('x', 16 * 1024);
        var sent = 0;
        var maxQueued = 0;
        var batchesAfterCut = 0;
        while (sent < 4000 && batchesAfterCut < 5)
        {
            for (var j = 0; j < 64; j++)
            {
                _server.Io.Sockets.Emit("blob", sent++, payload);
            }

            maxQueued = Math.Max(maxQueued, slowSession.QueuedPackets);
            await healthy.WaitForCountAsync(sent, Wait); // the producer keeps the healthy client's pace
            if (slowSession.ReadyState != EngineReadyState.Open)
            {
                batchesAfterCut++;
            }
        }

        // the slow client was cut off for being slow, with its queue bounded all along
        var cut = await _server.WaitForAsync(o => o.Tag == "slow" && o.Kind == "disconnect");
        Assert.Equal(DisconnectReason.SlowConsumer, cut.Value);
        Assert.True(maxQueued <= MaxQueued, $"slow queue reached {maxQueued}");
        // the close cascade runs on the thread pool (not on the broadcasting thread): the session goes right after
        await WaitUntilAsync(() => !_server.Io.Engine.TryGetSession(slow.Sid, out _));
        Assert.True(slowSession.DroppedPackets >= 1);
        Assert.True(sent < 4000, "the slow client was never cut off");

        // the healthy one got every packet, in order, and is still connected
        Assert.Equal(Enumerable.Range(0, sent), healthy.Received);
        Assert.DoesNotContain(_server.Observations, o => o.Tag == "healthy" && o.Kind == "disconnect");
        Assert.Equal(1, _server.Io.Sockets.SocketCount);

        GC.Collect();
        GC.WaitForPendingFinalizers();
        var growth = GC.GetTotalMemory(forceFullCollection: true) - memoryBefore;
        Assert.True(growth < 64L * 1024 * 1024, $"managed memory grew by {growth / 1024 / 1024} MiB");
    }

    /// <summary>
    /// Issue 13: the slow consumer's close cascade (its Disconnected handlers) is handed off the broadcasting
    /// thread. Here the handler broadcasts, then blocks until the broadcaster has finished its loop: run on the
    /// broadcaster's thread, it would wait for itself (the release never comes, the handler gives up after 30 s
    /// and the test fails); handed off, the broadcaster finishes, releases it, and the handler's broadcast arrives.
    /// </summary>
    [Fact]
    public async Task A_slow_consumers_disconnect_handler_does_not_run_on_the_broadcasting_thread()
    {
        var nsp = _server.Io.Of("/handoff");
        using var entered = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var handlerThread = -1;
        var released = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        nsp.OnConnection(socket =>
        {
            if (socket.Handshake.Auth["tag"]?.GetValue<string>() != "slow-handoff")
            {
                return;
            }

            socket.Join("slow-room");
            socket.Disconnected += (_, reason) =>
            {
                handlerThread = Environment.CurrentManagedThreadId;
                nsp.Emit("after-cut", reason); // a handler that broadcasts
                entered.Set();
                released.TrySetResult(release.Wait(TimeSpan.FromSeconds(30)));
            };
        });

        using var slow = await RawSocketIOClient.ConnectAsync(_server.BaseUri, "slow-handoff", "/handoff");
        Assert.True(_server.Io.Engine.TryGetSession(slow.Sid, out var slowSession));
        await using var healthy = await WsSocketIOClient.OpenAsync(_server.BaseUri);
        Assert.True((await healthy.ConnectAsync("/handoff", new System.Text.Json.Nodes.JsonObject { ["tag"] = "healthy-handoff" })).Ok);
        await WaitUntilAsync(() => nsp.SocketCount == 2);

        var broadcasterThread = 0;
        var broadcaster = Task.Factory.StartNew(
            () =>
            {
                broadcasterThread = Environment.CurrentManagedThreadId;
                var payload = new string('x', 16 * 1024);
                for (var i = 0; i < 20_000 && slowSession.ReadyState == EngineReadyState.Open; i++)
                {
                    nsp.To("slow-room").Emit("blob", payload); // only the slow one: the healthy one is not flooded
                }

                // the fan-out goes on after the cut, then waits for the handler, which runs elsewhere meanwhile
                for (var i = 0; i < 16; i++)
                {
                    nsp.Emit("tick", i);
                }

                var handlerRan = entered.Wait(TimeSpan.FromSeconds(30));
                release.Set();
                return handlerRan;
            },
            TaskCreationOptions.LongRunning);

        Assert.True(await broadcaster.WaitAsync(TimeSpan.FromSeconds(90)), "the Disconnected handler never ran");
        Assert.True(await released.Task.WaitAsync(TimeSpan.FromSeconds(60)), "the handler ran on the broadcasting thread and waited for itself");
        Assert.NotEqual(broadcasterThread, handlerThread);
        Assert.Equal(EngineReadyState.Closed, slowSession.ReadyState);

        // the healthy client gets the handler's broadcast (after everything queued before it) and stays connected
        while (true)
        {
            var e = await healthy.NextEventAsync("/handoff", TimeSpan.FromSeconds(30));
            if ((string?)e[0] == "after-cut")
            {
                Assert.Equal(DisconnectReason.SlowConsumer, (string?)e[1]);
                break;
            }
        }

        Assert.Equal(1, nsp.SocketCount);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the condition never held");
            await Task.Delay(20);
        }
    }

    /// <summary>
    /// A Socket.IO client on a raw TCP socket with a tiny receive buffer: it does the WebSocket
    /// handshake by hand, joins "/", and then reads nothing more.
    /// </summary>
    internal sealed class RawSocketIOClient : IDisposable
    {
        private readonly TcpSocket _socket;
        private readonly NetworkStream _stream;

        private RawSocketIOClient(TcpSocket socket, string sid)
        {
            _socket = socket;
            _stream = new NetworkStream(socket, ownsSocket: false);
            Sid = sid;
        }

        public string Sid { get; }

        public static async Task<RawSocketIOClient> ConnectAsync(Uri server, string tag, string nsp = "/")
        {
            var socket = new TcpSocket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096, NoDelay = true };
            await socket.ConnectAsync(server.Host, server.Port);
            var stream = new NetworkStream(socket, ownsSocket: false);
            var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
            var request = $"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {server.Authority}\r\n" +
                          $"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
            var head = await ReadHeadAsync(stream);
            Assert.StartsWith("HTTP/1.1 101", head);

            var open = await ReadTextFrameAsync(stream);
            Assert.StartsWith("0{", open);
            var sid = System.Text.Json.Nodes.JsonNode.Parse(open[1..])!["sid"]!.GetValue<string>();
            var prefix = nsp == "/" ? "40" : "40" + nsp + ",";
            await WriteTextFrameAsync(stream, prefix + "{\"tag\":\"" + tag + "\"}");
            Assert.StartsWith(prefix + "{\"sid\":", await ReadTextFrameAsync(stream));
            return new RawSocketIOClient(socket, sid);
        }

        public void Dispose()
        {
            _stream.Dispose();
            _socket.Dispose();
        }

        private static async Task<string> ReadHeadAsync(NetworkStream stream)
        {
            var head = new List<byte>();
            var one = new byte[1];
            while (head.Count < 4 || head[^4] != '\r' || head[^3] != '\n' || head[^2] != '\r' || head[^1] != '\n')
            {
                await stream.ReadExactlyAsync(one);
                head.Add(one[0]);
            }

            return Encoding.ASCII.GetString(head.ToArray());
        }

        private static async Task<string> ReadTextFrameAsync(NetworkStream stream)
        {
            var header = new byte[2];
            await stream.ReadExactlyAsync(header);
            Assert.Equal(0x81, header[0]); // FIN + text
            long length = header[1] & 0x7f;
            if (length == 126)
            {
                var ext = new byte[2];
                await stream.ReadExactlyAsync(ext);
                length = (ext[0] << 8) | ext[1];
            }
            else if (length == 127)
            {
                var ext = new byte[8];
                await stream.ReadExactlyAsync(ext);
                length = (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(ext);
            }

            var payload = new byte[length];
            await stream.ReadExactlyAsync(payload);
            return Encoding.UTF8.GetString(payload);
        }

        private static async Task WriteTextFrameAsync(NetworkStream stream, string text)
        {
            var payload = Encoding.UTF8.GetBytes(text);
            Assert.True(payload.Length < 126);
            var mask = RandomNumberGenerator.GetBytes(4);
            var frame = new byte[2 + 4 + payload.Length];
            frame[0] = 0x81;
            frame[1] = (byte)(0x80 | payload.Length);
            mask.CopyTo(frame, 2);
            for (var i = 0; i < payload.Length; i++)
            {
                frame[6 + i] = (byte)(payload[i] ^ mask[i % 4]);
            }

            await stream.WriteAsync(frame);
        }
    }

    /// <summary>A minimal Socket.IO client on ClientWebSocket that reads everything and answers pings.</summary>
    private sealed class HealthyClient : IDisposable
    {
        private readonly ClientWebSocket _ws = new();
        private readonly List<int> _received = [];
        private readonly CancellationTokenSource _stop = new();
        private Task? _loop;

        public List<int> Received
        {
            get
            {
                lock (_received)
                {
                    return [.. _received];
                }
            }
        }

        public async Task ConnectAsync(Uri server, string tag)
        {
            await _ws.ConnectAsync(new Uri($"ws://{server.Authority}/socket.io/?EIO=4&transport=websocket"), CancellationToken.None);
            Assert.StartsWith("0{", await ReceiveAsync(CancellationToken.None));
            await SendAsync("40{\"tag\":\"" + tag + "\"}");
            Assert.StartsWith("40{", await ReceiveAsync(CancellationToken.None));
            _loop = Task.Run(LoopAsync);
        }

        public async Task WaitForCountAsync(int count, TimeSpan timeout)
        {
            var deadline = DateTime.UtcNow + timeout;
            while (true)
            {
                lock (_received)
                {
                    if (_received.Count >= count)
                    {
                        return;
                    }
                }

                if (_loop!.IsCompleted)
                {
                    await _loop; // surfaces the loop's failure
                    throw new InvalidOperationException("the healthy client stopped");
                }

                if (DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException($"healthy client got {Received.Count} of {count}");
                }

                await Task.Delay(5);
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            _ws.Abort();
            _ws.Dispose();
        }

        private async Task LoopAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                var text = await ReceiveAsync(_stop.Token);
                if (text == "2")
                {
                    await SendAsync("3");
                }
                else if (text.StartsWith("42[\"blob\",", StringComparison.Ordinal))
                {
                    var start = "42[\"blob\",".Length;
                    var n = int.Parse(text.AsSpan(start, text.IndexOf(',', start) - start));
                    lock (_received)
                    {
                        _received.Add(n);
                    }
                }
            }
        }

        private Task SendAsync(string text) =>
            _ws.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);

        private async Task<string> ReceiveAsync(CancellationToken cancellationToken)
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cts.CancelAfter(Wait);
            var buffer = new byte[32 * 1024];
            using var message = new MemoryStream();
            while (true)
            {
                var result = await _ws.ReceiveAsync(buffer, cts.Token);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    throw new InvalidOperationException("the server closed the healthy client");
                }

                message.Write(buffer, 0, result.Count);
                if (result.EndOfMessage)
                {
                    return Encoding.UTF8.GetString(message.GetBuffer(), 0, (int)message.Length);
                }
            }
        }
    }
}

using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using System.Text.RegularExpressions;

namespace Evolution.Events.SocketIO.Tests;

/// <summary><see cref="Namespace.OnJoining"/> / <see cref="ParentNamespace.OnJoining"/>, seen by raw WebSocket clients.</summary>
public class JoinInterceptorTests
{
    /// <summary>
    /// A broadcaster emits "live" n = 1, 2, 3… under a lock; the interceptor joins and emits "replay" with the
    /// last n under the same lock. Every client must get CONNECT, then "replay" k, then live k + 1, k + 2, …:
    /// never a live event before the replay, never one it already had.
    /// </summary>
    [Fact]
    public async Task PacketsEmittedAfterJoinPrecedeBroadcastsSerializedWithTheInterceptor()
    {
        await using var server = await TestServer.StartAsync();
        var gate = new Lock();
        var last = 0;
        var nsp = server.Io.Of("/joined").OnJoining((socket, join) =>
        {
            lock (gate)
            {
                join();
                socket.Emit("replay", last);
            }
        });
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var broadcaster = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                lock (gate)
                {
                    last++;
                    nsp.Emit("live", last);
                }

                if (last % 20 == 0)
                {
                    await Task.Delay(1);
                }
            }
        });

        try
        {
            for (var i = 0; i < 20; i++)
            {
                using var client = await RawClient.ConnectAsync(server.BaseUri, "/joined");
                var replay = ParseArg(await client.NextEventAsync(), "replay");
                for (var expected = replay + 1; expected <= replay + 5; expected++)
                {
                    Assert.Equal(expected, ParseArg(await client.NextEventAsync(), "live"));
                }
            }
        }
        finally
        {
            await stop.CancelAsync();
            await broadcaster;
        }
    }

    [Fact]
    public async Task ParentInterceptorsRunOutermostAndAFaultyInterceptorStillLetsTheSocketJoin()
    {
        await using var server = await TestServer.StartAsync();
        var calls = new ConcurrentQueue<string>();
        Exception? secondJoin = null;
        server.Io.Of(new Regex(@"^/icpt-\w+$"))
            .OnJoining((socket, join) =>
            {
                calls.Enqueue("parent:before");
                join();
                calls.Enqueue("parent:after");
                try
                {
                    join();
                }
                catch (InvalidOperationException ex)
                {
                    secondJoin = ex;
                }
            })
            .OnConnection(socket => socket.Emit("hello", socket.Namespace.Name));
        server.Io.Of("/forgets").OnJoining((_, _) => calls.Enqueue("forgot"));
        server.Io.Of("/throws").OnJoining((_, _) => throw new InvalidOperationException("boom"));

        // the child made on demand runs the parent's interceptor; one added to the child runs inside it
        using var first = await RawClient.ConnectAsync(server.BaseUri, "/icpt-a");
        Assert.Equal("/icpt-a", ParseString(await first.NextEventAsync(), "hello"));
        Assert.Equal(["parent:before", "parent:after"], calls);
        Assert.NotNull(secondJoin);
        calls.Clear();
        Assert.True(server.Io.TryGetNamespace("/icpt-a", out var child));
        child.OnJoining((socket, join) =>
        {
            calls.Enqueue("own:before:" + socket.Connected);
            join();
            calls.Enqueue("own:after:" + socket.Connected);
        });
        using (var second = await RawClient.ConnectAsync(server.BaseUri, "/icpt-a"))
        {
            Assert.Equal("/icpt-a", ParseString(await second.NextEventAsync(), "hello"));
        }

        Assert.Equal(["parent:before", "own:before:False", "own:after:True", "parent:after"], calls);

        // an interceptor that never calls join(), or throws before it: the socket joins anyway
        foreach (var name in new[] { "/forgets", "/throws" })
        {
            using var client = await RawClient.ConnectAsync(server.BaseUri, name);
            Assert.True(server.Io.TryGetNamespace(name, out var joined));
            Assert.Contains(joined.SocketsById.Values, s => s.Connected);
            Assert.Equal(1, joined.SocketCount);
        }
    }

    private static int ParseArg(string packet, string eventName)
    {
        var match = Regex.Match(packet, $"^42/[^,]+,\\[\"{eventName}\",(\\d+)\\]$");
        Assert.True(match.Success, $"expected {eventName}, got {packet}");
        return int.Parse(match.Groups[1].Value);
    }

    private static string ParseString(string packet, string eventName)
    {
        var match = Regex.Match(packet, $"^42/[^,]+,\\[\"{eventName}\",\"([^\"]*)\"\\]$");
        Assert.True(match.Success, $"expected {eventName}, got {packet}");
        return match.Groups[1].Value;
    }

    /// <summary>A Socket.IO client on ClientWebSocket: handshake, CONNECT to one namespace, then its packets in order.</summary>
    private sealed class RawClient : IDisposable
    {
        private readonly ClientWebSocket _ws = new();
        private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(15));

        public static async Task<RawClient> ConnectAsync(Uri server, string nsp)
        {
            var client = new RawClient();
            await client._ws.ConnectAsync(new Uri($"ws://{server.Authority}/socket.io/?EIO=4&transport=websocket"), client._timeout.Token);
            Assert.StartsWith("0{", await client.ReceiveAsync());
            await client.SendAsync($"40{nsp},");
            Assert.StartsWith($"40{nsp},{{\"sid\":", await client.ReceiveAsync());
            return client;
        }

        /// <summary>The next EVENT packet (pings answered on the way); fails on anything else.</summary>
        public async Task<string> NextEventAsync()
        {
            while (true)
            {
                var text = await ReceiveAsync();
                if (text == "2")
                {
                    await SendAsync("3");
                    continue;
                }

                Assert.StartsWith("42", text);
                return text;
            }
        }

        public void Dispose()
        {
            _ws.Abort();
            _ws.Dispose();
            _timeout.Dispose();
        }

        private Task SendAsync(string text) =>
            _ws.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, _timeout.Token);

        private async Task<string> ReceiveAsync()
        {
            var buffer = new byte[8192];
            using var message = new MemoryStream();
            while (true)
            {
                var result = await _ws.ReceiveAsync(buffer, _timeout.Token);
                Assert.NotEqual(WebSocketMessageType.Close, result.MessageType);
                message.Write(buffer, 0, result.Count);
                if (result.EndOfMessage)
                {
                    return Encoding.UTF8.GetString(message.ToArray());
                }
            }
        }
    }
}

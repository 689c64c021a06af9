using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.ExceptionServices;
using System.Text;
using Evolution.Events.Gateway.PlainWebSockets;
using SocketIOServer = Evolution.Events.SocketIO.SocketIOServer;
using Microsoft.Extensions.DependencyInjection;

namespace Evolution.Events.Gateway.Tests;

/// <summary>Tests that count this process's exceptions: nothing else may run meanwhile.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ExceptionCountCollection
{
    public const string Name = "Gateway exception counts (not parallel)";
}

/// <summary>
/// A client whose connection is reset (a phone losing its network, a killed process) costs the gateway the one
/// exception the reset raises in the read, and no close frame written into the dead connection: that write threw, and
/// was rethrown twice, for every such client (10,000 resets took 1.2 s of server CPU instead of 0.7).
/// </summary>
[Collection(ExceptionCountCollection.Name)]
public class ResetClientTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_reset_client_is_not_written_a_close_frame(bool socketIO)
    {
        await using var gw = await TestGateway.StartAsync();
        var io = gw.App.Services.GetRequiredService<SocketIOServer>();
        var hub = gw.App.Services.GetRequiredService<PlainWebSocketHub>();
        Func<int> connected = socketIO ? () => io.Engine.WebSocketSessionCount : () => hub.Count;
        const int clients = 200;
        var sockets = new List<Socket>();
        try
        {
            for (var i = 0; i < clients; i++)
                sockets.Add(await UpgradeAsync(gw, socketIO));
            await PlainWebSocketTests.WaitUntilAsync(() => connected() == clients);

            var thrown = new ConcurrentQueue<string>();
            void Count(object? sender, FirstChanceExceptionEventArgs e)
            {
                if (e.Exception is IOException { Message: "The connection is closed." })
                    thrown.Enqueue(e.Exception.Message);
            }

            AppDomain.CurrentDomain.FirstChanceException += Count;
            try
            {
                foreach (var socket in sockets)
                {
                    socket.LingerState = new LingerOption(true, 0);
                    socket.Close(); // a reset: no close frame, no FIN
                }

                await PlainWebSocketTests.WaitUntilAsync(() => connected() == 0);
                await Task.Delay(300); // a close frame's write comes right after the session closed
            }
            finally
            {
                AppDomain.CurrentDomain.FirstChanceException -= Count;
            }

            Assert.True(thrown.IsEmpty, $"{thrown.Count} writes into reset connections threw");
        }
        finally
        {
            foreach (var socket in sockets)
                socket.Dispose();
        }
    }

    private static async Task<Socket> UpgradeAsync(TestGateway gw, bool socketIO)
    {
        var target = socketIO ? "/socket.io/?EIO=4&transport=websocket" : $"/ws/events?apikey={TestGateway.Key}";
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(gw.BaseUri.Host, gw.BaseUri.Port);
        var request = $"GET {target} HTTP/1.1\r\nHost: {gw.BaseUri.Authority}\r\nUpgrade: websocket\r\n" +
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        await socket.SendAsync(Encoding.ASCII.GetBytes(request));
        var received = new StringBuilder();
        var buffer = new byte[1024];
        // the 101 (and, on the Socket.IO path, the open packet's frame)
        while (!received.ToString().Contains(socketIO ? "0{" : "\r\n\r\n", StringComparison.Ordinal))
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory()).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.True(n > 0, "closed during the handshake: " + received);
            received.Append(Encoding.Latin1.GetString(buffer, 0, n));
        }

        Assert.StartsWith("HTTP/1.1 101", received.ToString(), StringComparison.Ordinal);
        return socket;
    }
}

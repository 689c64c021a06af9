using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.ExceptionServices;
using Evolution.Events.Gateway.PlainWebSockets;
using Evolution.Events.Testing;
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
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        // the 101 (and, on the Socket.IO path, the open packet's frame)
        var received = await RawHttp.SendAsync(stream,
            $"GET {target} HTTP/1.1\r\nHost: {gw.BaseUri.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            until: text => socketIO ? text.Contains("0{", StringComparison.Ordinal) : RawHttp.HasHead(text));
        Assert.StartsWith("HTTP/1.1 101", received, StringComparison.Ordinal);
        return socket;
    }
}

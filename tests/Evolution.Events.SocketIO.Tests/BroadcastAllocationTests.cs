using Evolution.Events.EngineIO;
using Evolution.Events.SocketIO.Protocol;

namespace Evolution.Events.SocketIO.Tests;

/// <summary>
/// A broadcast walks the namespace's sockets without copying them for itself (the array of them is made once, while
/// the membership holds still: <see cref="BroadcastMembershipTests"/>): what the broadcasting thread allocates per
/// broadcast does not grow with the number of sockets.
/// </summary>
public sealed class BroadcastAllocationTests
{
    private const int Clients = 200;

    [Fact]
    public async Task A_broadcast_allocates_nothing_per_socket_on_the_broadcasting_thread()
    {
        await using var server = await TestServer.StartAsync();
        var clients = new List<SlowConsumerTests.RawSocketIOClient>();
        try
        {
            for (var i = 0; i < Clients; i++)
            {
                clients.Add(await SlowConsumerTests.RawSocketIOClient.ConnectAsync(server.BaseUri, "alloc-" + i));
            }

            var nsp = server.Io.Of("/");
            await AttackTests.WaitUntilAsync(() => nsp.SocketCount >= Clients);
            Assert.Equal(Clients, nsp.SocketCount);
            var packet = SocketPacketEncoder.Event("/", "tick", [1]);
            long PerBroadcast()
            {
                // the writers' wake-ups wait for the end of the cork, so the queues keep what the first broadcast gave
                // them (their rings): only the broadcasts after it are measured
                using (OutboundQueue.Cork())
                {
                    nsp.Local.Emit(packet);
                    var before = GC.GetAllocatedBytesForCurrentThread();
                    for (var i = 0; i < 3; i++)
                    {
                        nsp.Local.Emit(packet);
                    }

                    return (GC.GetAllocatedBytesForCurrentThread() - before) / 3;
                }
            }

            PerBroadcast(); // JIT, the cork's list
            await Task.Delay(200);
            var bytes = PerBroadcast();

            // a copy of the sockets would be at least a pointer per socket
            Assert.True(bytes < Clients * sizeof(long) / 2, $"{bytes} bytes per broadcast to {Clients} sockets");
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }
    }
}

using Evolution.Events.Gateway.Fanout;
using Evolution.Events.Gateway.Instances;
using Evolution.Events.SocketIO;
using Evolution.Events.SocketIO.Protocol;

namespace Evolution.Events.Gateway.Namespaces;

/// <summary>
/// The Socket.IO side of <see cref="LastStateReplay"/>: a join interceptor on the instance namespaces that
/// joins the socket and emits the instance's last state to it under the instance's lock, so the replay
/// follows the CONNECT and precedes every live event (the fan-out broadcasts under the same lock).
/// </summary>
internal static class SocketIOReplay
{
    public static JoinInterceptor Interceptor(LastStateReplay replay, InstanceRegistry registry) => (socket, join) =>
    {
        var instance = NamespaceAuthorization.InstanceOf(socket.Namespace);
        lock (replay.LockFor(instance))
        {
            join();
            if (IsRecovered(socket))
                return;
            var settings = registry.GetSettings(instance);
            foreach (var e in replay.Replay(instance))
            {
                if (SubscriberFilter.ScopedReceives(e, instance, settings))
                    socket.Emit(e.EventName, new RawJson(e.EnvelopeJson));
            }
        }
    };

    /// <summary>
    /// A socket whose connection state was recovered already got these events: no replay. The seam for
    /// Socket.IO connection state recovery (return <c>socket.Recovered</c> once the library has it); no
    /// socket is recovered yet.
    /// </summary>
    internal static bool IsRecovered(Socket socket) => false;
}

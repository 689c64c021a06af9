using Evolution.Events.Gateway.Fanout;
using Evolution.Events.Gateway.Instances;
using Evolution.Events.SocketIO;
using Evolution.Events.SocketIO.Protocol;

namespace Evolution.Events.Gateway.Namespaces;

/// <summary>
/// The Socket.IO side of <see cref="LastStateReplay"/>: a join interceptor on the instance namespaces that
/// joins the socket and emits the instance's last state to it under the instance's lock, so the replay
/// follows the CONNECT and precedes every live event (the fan-out broadcasts under the same lock).
/// A socket restored by connection state recovery never reaches it (the library runs no join interceptor
/// for it): it gets the packets it missed instead, so nothing is replayed twice.
/// </summary>
internal static class SocketIOReplay
{
    public static JoinInterceptor Interceptor(LastStateReplay replay, InstanceRegistry registry) => (socket, join) =>
    {
        var instance = NamespaceAuthorization.InstanceOf(socket.Namespace);
        lock (replay.LockFor(instance))
        {
            join();
            var settings = registry.GetSettings(instance);
            foreach (var e in replay.Replay(instance))
            {
                if (SubscriberFilter.ScopedReceives(e, instance, settings))
                    socket.Emit(e.EventName, new RawJson(e.EnvelopeJson));
            }
        }
    };
}

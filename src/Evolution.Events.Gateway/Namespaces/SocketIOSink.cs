using Evolution.Events.Gateway.Events;
using Evolution.Events.Gateway.Fanout;
using Evolution.Events.Gateway.Instances;
using Evolution.Events.Gateway.Observability;
using Evolution.Events.Gateway.Options;
using Evolution.Events.SocketIO;
using Evolution.Events.SocketIO.Protocol;

namespace Evolution.Events.Gateway.Namespaces;

/// <summary>
/// Fans events out to Socket.IO: to <c>/{instance}</c> when that instance's settings allow the
/// event, and to <c>/</c> while WEBSOCKET_GLOBAL_EVENTS is on. The envelope bytes go into the
/// packet as they are, and each namespace's packet is encoded once for all its sockets.
/// </summary>
public sealed class SocketIOSink(SocketIOServer io, GatewayOptions options, GatewayMetrics metrics) : IEventSink
{
    public void Deliver(GatewayEvent gatewayEvent, InstanceSettings? settings)
    {
        var envelope = new RawJson(gatewayEvent.EnvelopeJson);
        var copies = 0;
        if (io.TryGetNamespace("/" + gatewayEvent.Instance, out var nsp)
            && nsp.HasSocketsOrSessions // a dropped socket that may recover gets it too
            && SubscriberFilter.ScopedReceives(gatewayEvent, gatewayEvent.Instance, settings))
        {
            nsp.Emit(gatewayEvent.EventName, envelope);
            copies += nsp.SocketCount;
        }

        if (options.WebSocketGlobalEvents && io.Sockets.HasSocketsOrSessions)
        {
            io.Sockets.Emit(gatewayEvent.EventName, envelope);
            copies += io.Sockets.SocketCount;
        }

        metrics.Delivered(GatewayMetrics.SocketIOTransport, gatewayEvent, copies);
    }
}

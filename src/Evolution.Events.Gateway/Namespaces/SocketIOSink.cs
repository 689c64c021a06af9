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
/// <para>
/// Every broadcast is local to this node (the event bus brought the event to every node; the Socket.IO adapter
/// never carries it). An event from the Redis event bus carries its cluster-wide <see cref="GatewayEvent.Offset"/>:
/// it becomes the packet's recovery offset on every node, and the packet is kept in the recovery store even where
/// the namespace has no socket yet, so a client that drops from one node recovers on another.
/// </para>
/// </summary>
public sealed class SocketIOSink(SocketIOServer io, GatewayOptions options, GatewayMetrics metrics) : IEventSink
{
    private readonly bool _recovery = options.RecoverySeconds > 0;

    public void Deliver(GatewayEvent gatewayEvent, InstanceSettings? settings)
    {
        var envelope = new RawJson(gatewayEvent.EnvelopeJson);
        var offset = _recovery ? gatewayEvent.Offset : 0;
        if (offset > 0)
            io.ContinueOffsets(offset - RedisEventBus.OffsetScale, offset);
        var copies = 0;
        // an instance named like the Admin UI's namespace (made before ADMIN_UI_ENABLED) gets no Socket.IO fan-out
        if (SubscriberFilter.ScopedReceives(gatewayEvent, gatewayEvent.Instance, settings) && !options.IsReservedInstanceName(gatewayEvent.Instance))
            copies += Emit("/" + gatewayEvent.Instance, gatewayEvent.EventName, envelope, offset);

        if (options.WebSocketGlobalEvents)
            copies += Emit("/", gatewayEvent.EventName, envelope, offset);

        metrics.Delivered(GatewayMetrics.SocketIOTransport, gatewayEvent, copies);
    }

    private int Emit(string name, string eventName, RawJson envelope, long offset)
    {
        // the cluster's offset; refused only when it is not after this namespace's newest (the shared counter went
        // back, or local numbering during a Redis outage got ahead): then this node numbers it
        if (offset > 0 && io.EmitLocalAt(name, offset, eventName, envelope))
            return io.TryGetNamespace(name, out var target) ? target.SocketCount : 0;

        if (io.TryGetNamespace(name, out var nsp) && nsp.HasSocketsOrSessions) // a dropped socket that may recover gets it too
        {
            nsp.Local.Emit(eventName, envelope);
            return nsp.SocketCount;
        }
        return 0;
    }
}

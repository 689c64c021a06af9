using Evolution.Events.Gateway.Events;
using Evolution.Events.Gateway.Instances;

namespace Evolution.Events.Gateway.Fanout;

/// <summary>
/// A delivery target of the fan-out (plain WebSocket, Socket.IO…). <see cref="Deliver"/> is called once
/// per event, in publish order, from a single fan-out loop: it must only enqueue and never block or await a
/// client. <paramref name="settings"/> is the instance's websocket settings (null when the instance is
/// unknown or was deleted); apply them with <see cref="SubscriberFilter"/>.
/// </summary>
public interface IEventSink
{
    void Deliver(GatewayEvent gatewayEvent, InstanceSettings? settings);
}

/// <summary>The contract's filtering rules, shared by every sink.</summary>
public static class SubscriberFilter
{
    /// <summary>
    /// Subscribers scoped to an instance (namespace <c>/{name}</c>, plain WebSocket with an instance token or
    /// <c>?instance=</c>) get its events allowed by its settings; <c>enabled: false</c> stops them all.
    /// </summary>
    public static bool ScopedReceives(GatewayEvent e, string scopedInstance, InstanceSettings? settings) =>
        string.Equals(e.Instance, scopedInstance, StringComparison.Ordinal)
        && (settings ?? InstanceSettings.Default).Allows(e.SettingName);

    /// <summary>Global subscribers receive every event of every instance, whatever its settings.</summary>
    public static bool GlobalReceives(GatewayEvent e) => true;
}

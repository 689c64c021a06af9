using System.Collections.Frozen;
using Evolution.Events.Gateway.Auth;
using Evolution.Events.Gateway.Events;
using Evolution.Events.Gateway.Fanout;
using Evolution.Events.Gateway.Instances;

namespace Evolution.Events.Gateway.PlainWebSockets;

/// <summary>What one plain-WebSocket client receives.</summary>
/// <param name="Instance">Scoped instance (token or <c>?instance=</c>); null = global subscriber.</param>
/// <param name="Events">The <c>?event=</c> filter as setting names; null = no filter.</param>
/// <param name="Simple">True for <c>?format=simple</c>.</param>
public sealed record PlainSubscription(string? Instance, FrozenSet<string>? Events, bool Simple)
{
    /// <summary>How the client got in: the global key, the instance's token, or none (WEBSOCKET_ALLOWED_HOSTS).</summary>
    public AuthKind Auth { get; init; } = AuthKind.Global;

    public bool Accepts(GatewayEvent e, InstanceSettings? settings)
    {
        if (Events is not null && !Events.Contains(e.SettingName))
            return false;
        return Instance is null
            ? SubscriberFilter.GlobalReceives(e)
            : SubscriberFilter.ScopedReceives(e, Instance, settings);
    }

    /// <summary>The frames to send for an event (the shared envelope bytes, or the simple frames).</summary>
    public IReadOnlyList<ReadOnlyMemory<byte>> FramesFor(GatewayEvent e) =>
        Simple ? e.SimpleFrames : [e.EnvelopeJson];

    public string Describe() =>
        $"instance={Instance ?? "*"} events={(Events is null ? "*" : string.Join(',', Events))} format={(Simple ? "simple" : "envelope")}";
}

using System.Collections.Concurrent;
using System.Text.Json;
using Evolution.Events.Gateway.Events;
using Evolution.Events.Gateway.Instances;
using Evolution.Events.Gateway.Options;

namespace Evolution.Events.Gateway.Fanout;

/// <summary>
/// WEBSOCKET_REPLAY_LAST_STATE: remembers, per instance, the last <c>connection.update</c> and the last
/// <c>qrcode.updated</c> (the accepted <see cref="GatewayEvent"/>, its envelope as already serialized), and
/// hands them to a subscriber scoped to that instance when it joins, before any live event. So a QR page
/// opened after the QR was sent shows it at once instead of "waiting" until the next one.
/// </summary>
/// <remarks>
/// <para><b>Atomic with the fan-out.</b> <see cref="FanoutService"/> records an event and hands it to every
/// sink under the lock of its instance (<see cref="LockFor"/>); a joining subscriber is registered and given
/// the replay under the same lock. A live event therefore either happened before the join (it is in the
/// replay, and the subscriber did not get it live) or after (it follows the replay): never both, never
/// before it.</para>
/// <para><b>Order of the replay: <c>connection.update</c>, then <c>qrcode.updated</c>.</b> That is the
/// order Evolution sends them in (state <c>connecting</c>, then the QR), and a QR page reacts to the QR last:
/// it shows the code, whatever the state text said before. While the state is <c>connecting</c> or
/// <c>close</c>, the last QR (if any) is still the one to scan and comes last.</para>
/// <para><b>Nothing is replayed once the instance is <c>open</c>.</b> A <c>connection.update</c> with
/// <c>state: "open"</c> forgets both events. The QR pages this replay exists for react to <c>open</c> (seed
/// 001's page reloads itself 3.5 s later): replaying <c>open</c> to every page load would reload them forever.
/// Evolution API sends <c>open</c> once, on the change; so does this replay, by not repeating it.</para>
/// <para><b>Bounded.</b> At most two events per instance, kept only for events that passed ingestion and
/// only while the instance is in the registry (forgotten on <see cref="InstanceRegistry.InstanceDeleted"/>),
/// so the state is bounded by the registry. The locks are a fixed set of stripes, so a join to a name that
/// never got an event costs no memory.</para>
/// </remarks>
public sealed class LastStateReplay
{
    private const int Stripes = 64;
    private const string ConnectionUpdate = "CONNECTION_UPDATE";
    private const string QrCodeUpdated = "QRCODE_UPDATED";
    private readonly Lock[] _locks = [.. Enumerable.Range(0, Stripes).Select(_ => new Lock())];
    private readonly ConcurrentDictionary<string, InstanceState> _states = new(StringComparer.Ordinal);
    private readonly InstanceRegistry _registry;

    public LastStateReplay(GatewayOptions options, InstanceRegistry registry)
    {
        _registry = registry;
        Enabled = options.WebSocketReplayLastState;
        registry.InstanceDeleted += instance => Forget(instance.Name);
    }

    /// <summary>WEBSOCKET_REPLAY_LAST_STATE; when false nothing is recorded, replayed or locked.</summary>
    public bool Enabled { get; }

    /// <summary>Instances with a remembered state (for tests and diagnostics).</summary>
    public int Count => _states.Count;

    /// <summary>
    /// The lock that serializes an instance's "record + broadcast" with "join + replay". Held only around
    /// enqueueing (sinks never wait for a client), never across I/O.
    /// </summary>
    public Lock LockFor(string instance) =>
        _locks[(uint)StringComparer.Ordinal.GetHashCode(instance) % Stripes];

    /// <summary>Remembers the event when it is part of the last state. Call under <see cref="LockFor"/>.</summary>
    public void Record(GatewayEvent e)
    {
        var isConnection = e.SettingName == ConnectionUpdate;
        if (!Enabled || (!isConnection && e.SettingName != QrCodeUpdated))
            return;
        // Read under the lock: an instance deleted meanwhile is already out of the registry (its snapshot is
        // replaced before InstanceDeleted is raised, whose handler takes this lock), so nothing stale stays.
        if (!_registry.TryGet(e.Instance, out _))
            return;
        var state = _states.GetOrAdd(e.Instance, static _ => new InstanceState());
        if (isConnection)
        {
            // open: nothing to replay (see the remarks: a page that reloads on open would loop)
            var open = IsOpen(e);
            state.Connection = open ? null : e;
            if (open)
                state.QrCode = null;
        }
        else
        {
            state.QrCode = e;
        }
    }

    /// <summary>The events to replay to a subscriber of the instance, in order. Call under <see cref="LockFor"/>.</summary>
    public IReadOnlyList<GatewayEvent> Replay(string instance)
    {
        if (!Enabled || !_states.TryGetValue(instance, out var state))
            return [];
        return (state.Connection, state.QrCode) switch
        {
            (null, null) => [],
            ({ } c, null) => [c],
            (null, { } q) => [q],
            ({ } c, { } q) => [c, q],
        };
    }

    private void Forget(string instance)
    {
        lock (LockFor(instance))
            _states.TryRemove(instance, out _);
    }

    /// <summary>True for a <c>connection.update</c> whose <c>data.state</c> is <c>"open"</c>.</summary>
    internal static bool IsOpen(GatewayEvent e)
    {
        try
        {
            using var document = JsonDocument.Parse(e.EnvelopeJson);
            return document.RootElement.TryGetProperty("data", out var data)
                && data.ValueKind == JsonValueKind.Object
                && data.TryGetProperty("state", out var state)
                && state.ValueKind == JsonValueKind.String
                && state.ValueEquals("open");
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>An instance's last state; written and read only under its stripe lock.</summary>
    private sealed class InstanceState
    {
        public GatewayEvent? Connection;
        public GatewayEvent? QrCode;
    }
}

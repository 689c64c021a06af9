using System.Diagnostics;

namespace Evolution.Events.Gateway.Events;

/// <summary>
/// One accepted event, serialized once. <see cref="EnvelopeJson"/> is the UTF-8 JSON envelope
/// <c>{event, instance, data, server_url, date_time, sender}</c>; sinks send these bytes as they are.
/// </summary>
public sealed class GatewayEvent
{
    private IReadOnlyList<ReadOnlyMemory<byte>>? _simple;

    public GatewayEvent(string instance, EventName name, ReadOnlyMemory<byte> envelopeJson)
    {
        Instance = instance;
        Name = name;
        EnvelopeJson = envelopeJson;
    }

    /// <summary>When the event was accepted (<see cref="Stopwatch.GetTimestamp"/>), for the ingest-to-emit latency.</summary>
    public long IngestedTimestamp { get; } = Stopwatch.GetTimestamp();

    /// <summary>The instance the event belongs to.</summary>
    public string Instance { get; }

    /// <summary>The catalog entry.</summary>
    public EventName Name { get; }

    /// <summary>The emitted (dotted) event name, e.g. <c>messages.upsert</c>.</summary>
    public string EventName => Name.Dotted;

    /// <summary>The settings (CONSTANT_CASE) name, e.g. <c>MESSAGES_UPSERT</c>.</summary>
    public string SettingName => Name.Setting;

    /// <summary>
    /// The event's place in the cluster's shared sequence (the Redis event bus: identical on every node), used as the
    /// Socket.IO recovery offset; 0 when it has none (one node, or delivered locally while Redis was unreachable).
    /// </summary>
    public long Offset { get; internal set; }

    /// <summary>The envelope as UTF-8 JSON.</summary>
    public ReadOnlyMemory<byte> EnvelopeJson { get; }

    /// <summary>
    /// The seed-000 (<c>format=simple</c>) frames for this event, computed once on first use;
    /// empty when the event has no simple counterpart.
    /// </summary>
    public IReadOnlyList<ReadOnlyMemory<byte>> SimpleFrames =>
        _simple ?? Interlocked.CompareExchange(ref _simple, SimpleFormat.Map(this), null) ?? _simple!;
}

using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Evolution.Events.Gateway.Instances;

/// <summary>
/// Where the registry keeps instances, tokens and websocket settings: SQLite on a single node
/// (<see cref="SqliteInstanceStore"/>), Redis when nodes share one registry (<see cref="RedisInstanceStore"/>).
/// Every write is atomic and returns the store's <em>revision</em> after it: a number that grows with every
/// write, so that <see cref="InstanceRegistry"/> can order what it reads and never go back to an older state.
/// Only the registry calls a store. A store that cannot be reached throws
/// <see cref="InstanceStoreUnavailableException"/>.
/// </summary>
public interface IInstanceStore
{
    /// <summary>Raised when the registry changed on another node (or a full reload is due: <see cref="InstanceChange.Name"/> null).</summary>
    event Action<InstanceChange>? Changed;

    /// <summary>True when other nodes may change the registry (the registry then follows <see cref="Changed"/>).</summary>
    bool IsShared { get; }

    /// <summary>Opens the store (creates the schema, connects); a store that cannot be opened throws a configuration error.</summary>
    Task InitializeAsync(CancellationToken ct);

    /// <summary>Every instance, read at one revision.</summary>
    Task<RegistryRead> ReadAllAsync(CancellationToken ct);

    /// <summary>One instance (or its absence) and the revision it was read at.</summary>
    Task<InstanceRead> ReadAsync(string name, CancellationToken ct);

    /// <summary>Creates the instance unless its name or token exists; the revision is 0 unless created.</summary>
    Task<(CreateInstanceStatus Status, long Revision)> CreateAsync(InstanceInfo info, InstanceSettings settings, CancellationToken ct);

    /// <summary>Deletes the instance; returns what was deleted (null info when it did not exist).</summary>
    Task<InstanceRead> DeleteAsync(string name, CancellationToken ct);

    /// <summary>Replaces the instance's settings; returns it as written (null info when it does not exist).</summary>
    Task<InstanceRead> UpdateSettingsAsync(string name, InstanceSettings settings, CancellationToken ct);

    /// <summary>
    /// Replaces the instance's token (and its uniqueness index); returns it as written (null info when it does not
    /// exist). Throws <see cref="InvalidOperationException"/> when another instance holds <paramref name="token"/>.
    /// </summary>
    Task<InstanceRead> RotateTokenAsync(string name, string token, CancellationToken ct);

    /// <summary>Readiness of the store.</summary>
    Task<HealthCheckResult> CheckHealthAsync(CancellationToken ct);
}

/// <summary>An instance as read at <paramref name="Revision"/>; <paramref name="Info"/> null means absent.</summary>
public readonly record struct InstanceRead(long Revision, InstanceInfo? Info, InstanceSettings? Settings);

/// <summary>The whole registry as read at <paramref name="Revision"/>.</summary>
public sealed record RegistryRead(long Revision, IReadOnlyList<(InstanceInfo Info, InstanceSettings Settings)> Entries);

/// <summary>A change notification: <paramref name="Name"/> changed at <paramref name="Revision"/>; a null name asks for a full reload.</summary>
public readonly record struct InstanceChange(string? Name, long Revision);

/// <summary>The store cannot be reached; writes answer 503 (the in-memory registry keeps serving reads).</summary>
public sealed class InstanceStoreUnavailableException : Exception
{
    public InstanceStoreUnavailableException(string message, Exception inner) : base(message, inner) { }

    public InstanceStoreUnavailableException(string message) : base(message) { }

    public InstanceStoreUnavailableException() { }
}

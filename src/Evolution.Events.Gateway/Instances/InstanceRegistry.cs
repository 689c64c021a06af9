using System.Collections.Immutable;
using System.Security.Cryptography;
using System.Text;

namespace Evolution.Events.Gateway.Instances;

/// <summary>
/// The instances and their websocket settings: SQLite behind an in-memory snapshot. Reads
/// (<see cref="GetSettings"/>, <see cref="TryGet"/>, <see cref="FindByToken"/>) never touch SQLite and
/// take no lock; writes are serialized, persisted first, then published as a new snapshot.
/// </summary>
public sealed class InstanceRegistry(SqliteInstanceStore store, ILogger<InstanceRegistry> logger)
{
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private volatile Snapshot _snapshot = Snapshot.Empty;

    /// <summary>Raised after an instance was deleted (persisted). Handlers must not block.</summary>
    public event Action<InstanceInfo>? InstanceDeleted;

    /// <summary>Raised after an instance was created or auto-registered. Handlers must not block.</summary>
    public event Action<InstanceInfo>? InstanceCreated;

    /// <summary>Loads every instance from SQLite into memory (called once at start-up).</summary>
    public async Task LoadAsync(CancellationToken ct)
    {
        await store.InitializeAsync(ct);
        var rows = await store.LoadAllAsync(ct);
        var snapshot = Snapshot.Empty;
        foreach (var (info, settings) in rows)
            snapshot = snapshot.With(new Entry(info, settings));
        _snapshot = snapshot;
        logger.LogInformation("Loaded {InstanceCount} instances", rows.Count);
    }

    public bool TryGet(string name, out InstanceInfo info)
    {
        var found = _snapshot.ByName.TryGetValue(name, out var entry);
        info = entry?.Info!;
        return found;
    }

    /// <summary>The settings of an instance, or null when it is unknown. Hot path: lock-free.</summary>
    public InstanceSettings? GetSettings(string name) =>
        _snapshot.ByName.TryGetValue(name, out var entry) ? entry.Settings : null;

    public IReadOnlyList<(InstanceInfo Info, InstanceSettings Settings)> List() =>
        [.. _snapshot.ByName.Values.OrderBy(e => e.Info.CreatedAt).ThenBy(e => e.Info.Name, StringComparer.Ordinal)
            .Select(e => (e.Info, e.Settings))];

    /// <summary>
    /// The instance whose token this is, or null. Looks up by SHA-256 of the token, then compares
    /// the token bytes in constant time.
    /// </summary>
    public string? FindByToken(string token)
    {
        var bytes = Encoding.UTF8.GetBytes(token);
        if (!_snapshot.ByTokenHash.TryGetValue(Convert.ToHexString(SHA256.HashData(bytes)), out var entry))
            return null;
        return CryptographicOperations.FixedTimeEquals(bytes, entry.TokenBytes) ? entry.Info.Name : null;
    }

    public async Task<(CreateInstanceStatus Status, InstanceInfo? Info)> CreateAsync(
        string name, string? token, CancellationToken ct)
    {
        InstanceInfo info;
        await _writeGate.WaitAsync(ct);
        try
        {
            var snapshot = _snapshot;
            if (snapshot.ByName.ContainsKey(name))
                return (CreateInstanceStatus.NameExists, null);
            if (token is not null && FindByToken(token) is not null)
                return (CreateInstanceStatus.TokenTaken, null);
            info = new InstanceInfo(name, token ?? NewToken(), DateTimeOffset.UtcNow);
            await store.InsertAsync(info, InstanceSettings.Default, ct);
            _snapshot = snapshot.With(new Entry(info, InstanceSettings.Default));
        }
        finally
        {
            _writeGate.Release();
        }
        logger.LogInformation("Instance {Instance} created", name);
        Raise(InstanceCreated, info);
        return (CreateInstanceStatus.Created, info);
    }

    /// <summary>Registers an unknown instance with a generated token; no-op when it exists.</summary>
    public async Task EnsureRegisteredAsync(string name, CancellationToken ct)
    {
        if (_snapshot.ByName.ContainsKey(name))
            return;
        var (status, _) = await CreateAsync(name, null, ct);
        if (status == CreateInstanceStatus.Created)
            logger.LogInformation("Instance {Instance} auto-registered by ingestion", name);
    }

    public async Task<InstanceInfo?> DeleteAsync(string name, CancellationToken ct)
    {
        Entry? entry;
        await _writeGate.WaitAsync(ct);
        try
        {
            var snapshot = _snapshot;
            if (!snapshot.ByName.TryGetValue(name, out entry))
                return null;
            await store.DeleteAsync(name, ct);
            _snapshot = snapshot.Without(entry);
        }
        finally
        {
            _writeGate.Release();
        }
        logger.LogInformation("Instance {Instance} deleted", name);
        Raise(InstanceDeleted, entry.Info);
        return entry.Info;
    }

    /// <summary>Stores new settings; returns false when the instance is unknown.</summary>
    public async Task<bool> SetSettingsAsync(string name, InstanceSettings settings, CancellationToken ct)
    {
        await _writeGate.WaitAsync(ct);
        try
        {
            var snapshot = _snapshot;
            if (!snapshot.ByName.TryGetValue(name, out var entry))
                return false;
            await store.UpdateSettingsAsync(name, settings, ct);
            _snapshot = snapshot.With(entry with { Settings = settings });
            return true;
        }
        finally
        {
            _writeGate.Release();
        }
    }

    private void Raise(Action<InstanceInfo>? handlers, InstanceInfo info)
    {
        if (handlers is null)
            return;
        foreach (var handler in handlers.GetInvocationList().Cast<Action<InstanceInfo>>())
        {
            try
            {
                handler(info);
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "Instance event handler failed for {Instance}", info.Name);
            }
        }
    }

    private static string NewToken() => Convert.ToHexString(RandomNumberGenerator.GetBytes(20)).ToLowerInvariant();

    private sealed record Entry(InstanceInfo Info, InstanceSettings Settings)
    {
        public byte[] TokenBytes { get; } = Encoding.UTF8.GetBytes(Info.Token);

        public string TokenHash { get; } = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(Info.Token)));
    }

    private sealed record Snapshot(
        ImmutableDictionary<string, Entry> ByName, ImmutableDictionary<string, Entry> ByTokenHash)
    {
        public static readonly Snapshot Empty = new(
            ImmutableDictionary.Create<string, Entry>(StringComparer.Ordinal),
            ImmutableDictionary.Create<string, Entry>(StringComparer.Ordinal));

        public Snapshot With(Entry entry) =>
            new(ByName.SetItem(entry.Info.Name, entry), ByTokenHash.SetItem(entry.TokenHash, entry));

        public Snapshot Without(Entry entry) =>
            new(ByName.Remove(entry.Info.Name), ByTokenHash.Remove(entry.TokenHash));
    }
}

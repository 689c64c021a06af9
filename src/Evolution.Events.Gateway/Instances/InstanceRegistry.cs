using System.Collections.Immutable;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;

namespace Evolution.Events.Gateway.Instances;

/// <summary>
/// The instances and their websocket settings: an <see cref="IInstanceStore"/> (SQLite, or Redis shared by
/// every node) behind an in-memory snapshot. Reads (<see cref="GetSettings"/>, <see cref="TryGet"/>,
/// <see cref="FindByToken"/>) never touch the store and take no lock; writes go to the store first, then
/// are published as a new snapshot.
/// <para>
/// With a shared store, changes made on other nodes arrive as <see cref="IInstanceStore.Changed"/>
/// notifications (and periodic or reconnect-time full reloads). Each read carries the store's revision; a
/// state is only applied when it is newer than what the snapshot holds for that name, so a late answer
/// never undoes a newer change. <see cref="InstanceCreated"/> and <see cref="InstanceDeleted"/> fire on
/// every node, whichever node made the change.
/// </para>
/// </summary>
public sealed class InstanceRegistry : IAsyncDisposable
{
    private const int ChangeQueueCapacity = 4096;
    private readonly IInstanceStore _store;
    private readonly ILogger<InstanceRegistry> _logger;
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private readonly Lock _applyLock = new();
    private readonly Dictionary<string, long> _seen = new(StringComparer.Ordinal);
    private readonly Channel<InstanceChange> _changes = Channel.CreateBounded<InstanceChange>(
        new BoundedChannelOptions(ChangeQueueCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite });
    private readonly CancellationTokenSource _stopping = new();
    private volatile Snapshot _snapshot = Snapshot.Empty;
    private long _baseRevision;
    private int _reloadPending;
    private int _disposed;
    private Task _follower = Task.CompletedTask;

    /// <summary>Creates the registry over its store.</summary>
    public InstanceRegistry(IInstanceStore store, ILogger<InstanceRegistry> logger)
    {
        _store = store;
        _logger = logger;
    }

    /// <summary>Raised after an instance was deleted (here or on another node). Handlers must not block.</summary>
    public event Action<InstanceInfo>? InstanceDeleted;

    /// <summary>Raised after an instance was created or auto-registered (here or on another node). Handlers must not block.</summary>
    public event Action<InstanceInfo>? InstanceCreated;

    /// <summary>
    /// Raised after an instance's token was replaced (here or on another node), with the instance as it is now.
    /// Sockets that logged in with the old token must be told and disconnected. Handlers must not block.
    /// </summary>
    public event Action<InstanceInfo>? TokenRotated;

    /// <summary>Loads every instance into memory (once, at start-up) and, with a shared store, starts following its changes.</summary>
    public async Task LoadAsync(CancellationToken ct)
    {
        await _store.InitializeAsync(ct);
        var all = await _store.ReadAllAsync(ct);
        ApplyAll(all, force: true, raise: false);
        _logger.LogInformation("Loaded {InstanceCount} instances", all.Entries.Count);
        if (_store.IsShared)
        {
            _store.Changed += OnStoreChanged;
            _follower = Task.Run(() => FollowAsync(_stopping.Token), CancellationToken.None);
        }
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

    /// <summary>
    /// Creates an instance. The store decides atomically (with a shared store, across nodes): of two
    /// creations of one name, exactly one answers <see cref="CreateInstanceStatus.Created"/>.
    /// Throws <see cref="InstanceStoreUnavailableException"/> when the store cannot be reached.
    /// </summary>
    public async Task<(CreateInstanceStatus Status, InstanceInfo? Info)> CreateAsync(
        string name, string? token, CancellationToken ct)
    {
        InstanceInfo info;
        await _writeGate.WaitAsync(ct);
        try
        {
            if (_snapshot.ByName.ContainsKey(name))
                return (CreateInstanceStatus.NameExists, null);
            if (token is not null && FindByToken(token) is not null)
                return (CreateInstanceStatus.TokenTaken, null);
            info = new InstanceInfo(name, token ?? NewToken(), DateTimeOffset.UtcNow);
            var (status, revision) = await _store.CreateAsync(info, InstanceSettings.Default, ct);
            if (status != CreateInstanceStatus.Created)
                return (status, null);
            ApplyOne(name, new InstanceRead(revision, info, InstanceSettings.Default));
        }
        finally
        {
            _writeGate.Release();
        }
        _logger.LogInformation("Instance {Instance} created", name);
        return (CreateInstanceStatus.Created, info);
    }

    /// <summary>Registers an unknown instance with a generated token; no-op when it exists.</summary>
    public async Task EnsureRegisteredAsync(string name, CancellationToken ct)
    {
        if (_snapshot.ByName.ContainsKey(name))
            return;
        var (status, _) = await CreateAsync(name, null, ct);
        if (status == CreateInstanceStatus.Created)
            _logger.LogInformation("Instance {Instance} auto-registered by ingestion", name);
    }

    /// <summary>Deletes an instance; null when it does not exist. Throws <see cref="InstanceStoreUnavailableException"/>.</summary>
    public async Task<InstanceInfo?> DeleteAsync(string name, CancellationToken ct)
    {
        InstanceRead removed;
        await _writeGate.WaitAsync(ct);
        try
        {
            removed = await _store.DeleteAsync(name, ct);
            if (removed.Info is null)
                return null;
            ApplyOne(name, new InstanceRead(removed.Revision, null, null));
        }
        finally
        {
            _writeGate.Release();
        }
        _logger.LogInformation("Instance {Instance} deleted", name);
        return removed.Info;
    }

    /// <summary>
    /// Replaces an instance's token with a new random one; returns the instance as it is now, or null when it
    /// does not exist. The old token stops working at once on this node, and on the others as soon as they apply
    /// the change. Throws <see cref="InstanceStoreUnavailableException"/>.
    /// </summary>
    public async Task<InstanceInfo?> RotateTokenAsync(string name, CancellationToken ct)
    {
        InstanceRead written;
        await _writeGate.WaitAsync(ct);
        try
        {
            written = await _store.RotateTokenAsync(name, NewToken(), ct);
            if (written.Info is null)
                return null;
            ApplyOne(name, written);
        }
        finally
        {
            _writeGate.Release();
        }
        _logger.LogInformation("Instance {Instance} token rotated", name);
        return written.Info;
    }

    /// <summary>Stores new settings; returns false when the instance is unknown. Throws <see cref="InstanceStoreUnavailableException"/>.</summary>
    public async Task<bool> SetSettingsAsync(string name, InstanceSettings settings, CancellationToken ct)
    {
        await _writeGate.WaitAsync(ct);
        try
        {
            var written = await _store.UpdateSettingsAsync(name, settings, ct);
            if (written.Info is null)
                return false;
            ApplyOne(name, written);
            return true;
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <summary>Stops following the shared store.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
            return;
        _store.Changed -= OnStoreChanged;
        await _stopping.CancelAsync();
        _changes.Writer.TryComplete();
        await _follower.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stopping.Dispose();
    }

    private void OnStoreChanged(InstanceChange change)
    {
        // A full queue (a burst of changes) turns into one full reload: nothing is lost.
        if (change.Name is null || !_changes.Writer.TryWrite(change))
        {
            Volatile.Write(ref _reloadPending, 1);
            _changes.Writer.TryWrite(new InstanceChange(null, 0));
        }
    }

    /// <summary>One reader applies the store's changes in turn; a failed read leaves a full reload pending.</summary>
    private async Task FollowAsync(CancellationToken ct)
    {
        var reader = _changes.Reader;
        try
        {
            while (await reader.WaitToReadAsync(ct))
            {
                while (reader.TryRead(out var change))
                {
                    try
                    {
                        if (Interlocked.Exchange(ref _reloadPending, 0) == 1)
                            ApplyAll(await _store.ReadAllAsync(ct), force: false, raise: true);
                        if (change.Name is { } name && !IsKnown(name, change.Revision))
                            ApplyOne(name, await _store.ReadAsync(name, ct));
                    }
                    catch (InstanceStoreUnavailableException ex)
                    {
                        // The store asks for a full reload when it is back (and the periodic one comes anyway).
                        Volatile.Write(ref _reloadPending, 1);
                        _logger.LogDebug(ex, "Registry change not applied yet (store unreachable)");
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException)
                    {
                        // Whatever else went wrong, the follower keeps running and the next reload repairs it.
                        Volatile.Write(ref _reloadPending, 1);
                        _logger.LogWarning(ex, "Registry change not applied; a full reload follows");
                    }
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private bool IsKnown(string name, long revision)
    {
        lock (_applyLock)
            return revision > 0 && (_seen.TryGetValue(name, out var seen) ? seen : _baseRevision) >= revision;
    }

    /// <summary>Applies one instance's state read at its revision, unless the snapshot already holds a newer one.</summary>
    private void ApplyOne(string name, InstanceRead read)
    {
        var raised = new List<(Change Kind, InstanceInfo Info)>();
        lock (_applyLock)
        {
            var known = _seen.TryGetValue(name, out var seen) ? seen : _baseRevision;
            if (read.Revision <= known)
                return;
            _seen[name] = read.Revision;
            var snapshot = _snapshot;
            snapshot.ByName.TryGetValue(name, out var current);
            _snapshot = Transition(snapshot, current, ToEntry(read.Info, read.Settings), raised);
        }
        Raise(raised);
    }

    /// <summary>
    /// Applies a full read: every name takes the read's state unless a newer one was applied since. A read
    /// older than the last full one means the store lost its data (e.g. Redis restarted without persistence):
    /// then the read wins outright.
    /// </summary>
    private void ApplyAll(RegistryRead read, bool force, bool raise)
    {
        var raised = new List<(Change Kind, InstanceInfo Info)>();
        lock (_applyLock)
        {
            force |= read.Revision < _baseRevision;
            var incoming = read.Entries.ToDictionary(e => e.Info.Name, e => new Entry(e.Info, e.Settings), StringComparer.Ordinal);
            var snapshot = _snapshot;
            foreach (var name in snapshot.ByName.Keys.Union(incoming.Keys, StringComparer.Ordinal).ToList())
            {
                if (!force && _seen.TryGetValue(name, out var seen) && seen > read.Revision)
                    continue;
                snapshot.ByName.TryGetValue(name, out var current);
                snapshot = Transition(snapshot, current, incoming.GetValueOrDefault(name), raised);
            }
            _snapshot = snapshot;
            _baseRevision = read.Revision;
            foreach (var name in _seen.Where(s => force || s.Value <= read.Revision).Select(s => s.Key).ToList())
                _seen.Remove(name);
        }
        if (raise)
            Raise(raised);
    }

    private static Snapshot Transition(Snapshot snapshot, Entry? current, Entry? next, List<(Change Kind, InstanceInfo Info)> raised)
    {
        var same = current is not null && next is not null && current.Info == next.Info;
        // Same name and creation, another token: the token was rotated (the instance and its settings stay).
        if (current is not null && next is not null && !same && current.Info.CreatedAt == next.Info.CreatedAt)
        {
            raised.Add((Change.TokenRotated, next.Info));
            return snapshot.Without(current).With(next);
        }
        // A name whose creation changed is another instance: the old one's sockets must go.
        if (current is not null && !same)
        {
            snapshot = snapshot.Without(current);
            raised.Add((Change.Deleted, current.Info));
        }
        if (next is null)
            return snapshot;
        if (!same)
            raised.Add((Change.Created, next.Info));
        return snapshot.With(next, same ? current : null);
    }

    private static Entry? ToEntry(InstanceInfo? info, InstanceSettings? settings) =>
        info is null ? null : new Entry(info, settings ?? InstanceSettings.Default);

    private void Raise(List<(Change Kind, InstanceInfo Info)> raised)
    {
        foreach (var (kind, info) in raised)
        {
            if (kind == Change.Deleted)
                _logger.LogDebug("Instance {Instance} removed from the registry", info.Name);
            Raise(kind switch
            {
                Change.Deleted => InstanceDeleted,
                Change.TokenRotated => TokenRotated,
                _ => InstanceCreated,
            }, info);
        }
    }

    private enum Change
    {
        Created,
        Deleted,
        TokenRotated,
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
                _logger.LogError(ex, "Instance event handler failed for {Instance}", info.Name);
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

        /// <summary>Adds or replaces the entry; <paramref name="replaced"/> is the entry it replaces, if any.</summary>
        public Snapshot With(Entry entry, Entry? replaced = null)
        {
            var byToken = replaced is null ? ByTokenHash : ByTokenHash.Remove(replaced.TokenHash);
            return new(ByName.SetItem(entry.Info.Name, entry), byToken.SetItem(entry.TokenHash, entry));
        }

        public Snapshot Without(Entry entry) =>
            new(ByName.Remove(entry.Info.Name), ByTokenHash.Remove(entry.TokenHash));
    }
}

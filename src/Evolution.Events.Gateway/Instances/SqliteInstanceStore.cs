using System.Globalization;
using System.Text.Json;
using Evolution.Events.Gateway.Options;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Evolution.Events.Gateway.Instances;

/// <summary>
/// SQLite persistence for instances and their websocket settings (the single-node store). WAL journal with
/// <c>synchronous=FULL</c>, so a write that returned survives a crash. Tokens are stored as given (the REST
/// API returns them). Revisions are a per-process counter: nothing else writes this database.
/// </summary>
public sealed class SqliteInstanceStore(GatewayOptions options) : IInstanceStore
{
    private const string Schema = """
        CREATE TABLE IF NOT EXISTS instances (
            name TEXT PRIMARY KEY NOT NULL,
            token TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            ws_enabled INTEGER NOT NULL DEFAULT 1,
            ws_events TEXT NOT NULL DEFAULT '[]'
        );
        """;

    private long _revision;

    /// <inheritdoc />
    public event Action<InstanceChange>? Changed
    {
        add { }
        remove { }
    }

    /// <inheritdoc />
    public bool IsShared => false;

    public async Task InitializeAsync(CancellationToken ct)
    {
        try
        {
            if (options.DatabaseFile is { } file && Path.GetDirectoryName(file) is { Length: > 0 } dir)
                Directory.CreateDirectory(dir);
            await using var connection = await OpenAsync(ct);
            await ExecuteAsync(connection, "PRAGMA journal_mode=WAL;", ct);
            await ExecuteAsync(connection, Schema, ct);
        }
        catch (Exception ex) when (ex is SqliteException or IOException or UnauthorizedAccessException)
        {
            throw new GatewayConfigurationException(
                $"Invalid configuration: DATABASE_PATH cannot be opened ({ex.Message.ReplaceLineEndings(" ")})", ex);
        }
    }

    public async Task<RegistryRead> ReadAllAsync(CancellationToken ct)
    {
        var revision = Interlocked.Read(ref _revision);
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT name, token, created_at, ws_enabled, ws_events FROM instances ORDER BY created_at, name;";
        var result = new List<(InstanceInfo, InstanceSettings)>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            result.Add(ReadRow(reader));
        return new RegistryRead(revision, result);
    }

    public async Task<InstanceRead> ReadAsync(string name, CancellationToken ct)
    {
        var revision = Interlocked.Read(ref _revision);
        await using var connection = await OpenAsync(ct);
        var row = await FindAsync(connection, name, ct);
        return new InstanceRead(revision, row?.Info, row?.Settings);
    }

    public Task<(CreateInstanceStatus Status, long Revision)> CreateAsync(InstanceInfo info, InstanceSettings settings, CancellationToken ct) =>
        Task.Run(() => CreateCoreAsync(info, settings, ct), ct);

    private async Task<(CreateInstanceStatus, long)> CreateCoreAsync(InstanceInfo info, InstanceSettings settings, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(ct);
        await using var check = connection.CreateCommand();
        check.CommandText = "SELECT name = $n FROM instances WHERE name = $n OR token = $t LIMIT 1;";
        check.Parameters.AddWithValue("$n", info.Name);
        check.Parameters.AddWithValue("$t", info.Token);
        var clash = await check.ExecuteScalarAsync(ct);
        if (clash is long nameClash)
            return (nameClash != 0 ? CreateInstanceStatus.NameExists : CreateInstanceStatus.TokenTaken, 0);
        await using var command = connection.CreateCommand();
        command.CommandText = "INSERT INTO instances (name, token, created_at, ws_enabled, ws_events) VALUES ($n, $t, $c, $e, $ev);";
        command.Parameters.AddWithValue("$n", info.Name);
        command.Parameters.AddWithValue("$t", info.Token);
        command.Parameters.AddWithValue("$c", info.CreatedAt.ToString("O", CultureInfo.InvariantCulture));
        command.Parameters.AddWithValue("$e", settings.Enabled ? 1 : 0);
        command.Parameters.AddWithValue("$ev", JsonSerializer.Serialize(settings.Events));
        await command.ExecuteNonQueryAsync(ct);
        await transaction.CommitAsync(ct);
        return (CreateInstanceStatus.Created, Interlocked.Increment(ref _revision));
    }

    public Task<InstanceRead> UpdateSettingsAsync(string name, InstanceSettings settings, CancellationToken ct) =>
        Task.Run(() => UpdateSettingsCoreAsync(name, settings, ct), ct);

    private async Task<InstanceRead> UpdateSettingsCoreAsync(string name, InstanceSettings settings, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = "UPDATE instances SET ws_enabled = $e, ws_events = $ev WHERE name = $n;";
        command.Parameters.AddWithValue("$n", name);
        command.Parameters.AddWithValue("$e", settings.Enabled ? 1 : 0);
        command.Parameters.AddWithValue("$ev", JsonSerializer.Serialize(settings.Events));
        if (await command.ExecuteNonQueryAsync(ct) == 0)
            return default;
        var row = await FindAsync(connection, name, ct);
        return new InstanceRead(Interlocked.Increment(ref _revision), row?.Info, row?.Settings);
    }

    public Task<InstanceRead> RotateTokenAsync(string name, string token, CancellationToken ct) =>
        Task.Run(() => RotateTokenCoreAsync(name, token, ct), ct);

    private async Task<InstanceRead> RotateTokenCoreAsync(string name, string token, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = "UPDATE instances SET token = $t WHERE name = $n;";
        command.Parameters.AddWithValue("$n", name);
        command.Parameters.AddWithValue("$t", token);
        try
        {
            if (await command.ExecuteNonQueryAsync(ct) == 0)
                return default;
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode == 19) // SQLITE_CONSTRAINT: the token is taken
        {
            throw new InvalidOperationException("token already used by another instance", ex);
        }
        var row = await FindAsync(connection, name, ct);
        return new InstanceRead(Interlocked.Increment(ref _revision), row?.Info, row?.Settings);
    }

    public Task<InstanceRead> DeleteAsync(string name, CancellationToken ct) =>
        Task.Run(() => DeleteCoreAsync(name, ct), ct);

    private async Task<InstanceRead> DeleteCoreAsync(string name, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        var row = await FindAsync(connection, name, ct);
        if (row is null)
            return default;
        await using var command = connection.CreateCommand();
        command.CommandText = "DELETE FROM instances WHERE name = $n;";
        command.Parameters.AddWithValue("$n", name);
        await command.ExecuteNonQueryAsync(ct);
        return new InstanceRead(Interlocked.Increment(ref _revision), row.Value.Info, row.Value.Settings);
    }

    /// <summary>Readiness: the SQLite store answers a cheap query on its own table.</summary>
    public async Task<HealthCheckResult> CheckHealthAsync(CancellationToken ct)
    {
        try
        {
            await using var connection = new SqliteConnection(options.DatabaseConnectionString);
            await connection.OpenAsync(ct);
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT 1 FROM instances LIMIT 1;";
            await command.ExecuteScalarAsync(ct);
            return HealthCheckResult.Healthy("SQLite store reachable");
        }
        catch (SqliteException ex)
        {
            return HealthCheckResult.Unhealthy($"SQLite store unreachable: {ex.Message.ReplaceLineEndings(" ")}");
        }
    }

    private static async Task<(InstanceInfo Info, InstanceSettings Settings)?> FindAsync(
        SqliteConnection connection, string name, CancellationToken ct)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT name, token, created_at, ws_enabled, ws_events FROM instances WHERE name = $n;";
        command.Parameters.AddWithValue("$n", name);
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? ReadRow(reader) : null;
    }

    private static (InstanceInfo, InstanceSettings) ReadRow(SqliteDataReader reader)
    {
        var info = new InstanceInfo(reader.GetString(0), reader.GetString(1),
            DateTimeOffset.Parse(reader.GetString(2), CultureInfo.InvariantCulture));
        var events = JsonSerializer.Deserialize<string[]>(reader.GetString(4)) ?? [];
        return (info, new InstanceSettings(reader.GetInt64(3) != 0, events));
    }

    // Microsoft.Data.Sqlite runs its async methods synchronously (file I/O, fsync with synchronous=FULL):
    // the writes above run on the thread pool so that they never hold one of Kestrel's I/O threads.
    private async Task<SqliteConnection> OpenAsync(CancellationToken ct)
    {
        var connection = new SqliteConnection(options.DatabaseConnectionString);
        await connection.OpenAsync(ct);
        await ExecuteAsync(connection, "PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;", ct);
        return connection;
    }

    private static async Task ExecuteAsync(SqliteConnection connection, string sql, CancellationToken ct)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(ct);
    }
}

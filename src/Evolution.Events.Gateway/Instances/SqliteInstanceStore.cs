using System.Globalization;
using System.Text.Json;
using Evolution.Events.Gateway.Options;
using Microsoft.Data.Sqlite;

namespace Evolution.Events.Gateway.Instances;

/// <summary>
/// SQLite persistence for instances and their websocket settings. WAL journal with
/// <c>synchronous=FULL</c>, so a write that returned survives a crash. Only the registry calls it.
/// </summary>
public sealed class SqliteInstanceStore(GatewayOptions options)
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

    public async Task<List<(InstanceInfo Info, InstanceSettings Settings)>> LoadAllAsync(CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT name, token, created_at, ws_enabled, ws_events FROM instances ORDER BY created_at, name;";
        var result = new List<(InstanceInfo, InstanceSettings)>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            var info = new InstanceInfo(reader.GetString(0), reader.GetString(1),
                DateTimeOffset.Parse(reader.GetString(2), CultureInfo.InvariantCulture));
            var events = JsonSerializer.Deserialize<string[]>(reader.GetString(4)) ?? [];
            result.Add((info, new InstanceSettings(reader.GetInt64(3) != 0, events)));
        }
        return result;
    }

    public Task InsertAsync(InstanceInfo info, InstanceSettings settings, CancellationToken ct) =>
        Task.Run(() => InsertCoreAsync(info, settings, ct), ct);

    private async Task InsertCoreAsync(InstanceInfo info, InstanceSettings settings, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = "INSERT INTO instances (name, token, created_at, ws_enabled, ws_events) VALUES ($n, $t, $c, $e, $ev);";
        command.Parameters.AddWithValue("$n", info.Name);
        command.Parameters.AddWithValue("$t", info.Token);
        command.Parameters.AddWithValue("$c", info.CreatedAt.ToString("O", CultureInfo.InvariantCulture));
        command.Parameters.AddWithValue("$e", settings.Enabled ? 1 : 0);
        command.Parameters.AddWithValue("$ev", JsonSerializer.Serialize(settings.Events));
        await command.ExecuteNonQueryAsync(ct);
    }

    public Task UpdateSettingsAsync(string name, InstanceSettings settings, CancellationToken ct) =>
        Task.Run(() => UpdateSettingsCoreAsync(name, settings, ct), ct);

    private async Task UpdateSettingsCoreAsync(string name, InstanceSettings settings, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = "UPDATE instances SET ws_enabled = $e, ws_events = $ev WHERE name = $n;";
        command.Parameters.AddWithValue("$n", name);
        command.Parameters.AddWithValue("$e", settings.Enabled ? 1 : 0);
        command.Parameters.AddWithValue("$ev", JsonSerializer.Serialize(settings.Events));
        await command.ExecuteNonQueryAsync(ct);
    }

    public Task DeleteAsync(string name, CancellationToken ct) =>
        Task.Run(() => DeleteCoreAsync(name, ct), ct);

    private async Task DeleteCoreAsync(string name, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = "DELETE FROM instances WHERE name = $n;";
        command.Parameters.AddWithValue("$n", name);
        await command.ExecuteNonQueryAsync(ct);
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

using Evolution.Events.Gateway.Options;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Evolution.Events.Gateway.Observability;

/// <summary>Readiness: the SQLite store answers a cheap query on its own table.</summary>
public sealed class StoreHealthCheck(GatewayOptions options) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await using var connection = new SqliteConnection(options.DatabaseConnectionString);
            await connection.OpenAsync(cancellationToken);
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT 1 FROM instances LIMIT 1;";
            await command.ExecuteScalarAsync(cancellationToken);
            return HealthCheckResult.Healthy("SQLite store reachable");
        }
        catch (SqliteException ex)
        {
            return HealthCheckResult.Unhealthy($"SQLite store unreachable: {ex.Message.ReplaceLineEndings(" ")}");
        }
    }
}

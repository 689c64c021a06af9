using Evolution.Events.Gateway.Instances;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Evolution.Events.Gateway.Observability;

/// <summary>Readiness: the instance store answers (SQLite: a cheap query on its table; Redis: PING).</summary>
public sealed class StoreHealthCheck(IInstanceStore store) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        store.CheckHealthAsync(cancellationToken);
}

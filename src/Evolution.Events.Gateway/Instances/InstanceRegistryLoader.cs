namespace Evolution.Events.Gateway.Instances;

/// <summary>Loads the registry before the server starts listening.</summary>
public sealed class InstanceRegistryLoader(InstanceRegistry registry) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => registry.LoadAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

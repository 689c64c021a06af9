namespace Evolution.Events.Gateway.Instances;

/// <summary>Loads the registry before the server starts listening; stops following the shared store at shutdown.</summary>
public sealed class InstanceRegistryLoader(InstanceRegistry registry) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => registry.LoadAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => registry.DisposeAsync().AsTask();
}

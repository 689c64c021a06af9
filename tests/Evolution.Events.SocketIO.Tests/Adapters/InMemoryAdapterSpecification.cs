using Evolution.Events.SocketIO.Adapters;

namespace Evolution.Events.SocketIO.Tests.Adapters;

/// <summary>The adapter specification against the single-node <see cref="InMemoryAdapter"/>.</summary>
public sealed class InMemoryAdapterSpecification : AdapterSpecification
{
    protected override IAdapterFactory CreateFactory(AdapterLifecycleLog log) => new Factory(log);

    private sealed class Factory(AdapterLifecycleLog log) : IAdapterFactory
    {
        public IAdapter Create(Namespace nsp) => new RecordingAdapter(nsp, log);
    }

    /// <summary>The in-memory adapter, reporting its lifecycle calls.</summary>
    private sealed class RecordingAdapter(Namespace nsp, AdapterLifecycleLog log) : InMemoryAdapter(nsp)
    {
        public override ValueTask InitAsync()
        {
            log.Add("init", Namespace.Name);
            return base.InitAsync();
        }

        public override ValueTask CloseAsync()
        {
            log.Add("close", Namespace.Name);
            return base.CloseAsync();
        }
    }
}

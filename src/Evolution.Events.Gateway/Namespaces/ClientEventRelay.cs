using System.Text.Json.Nodes;
using Evolution.Events.Gateway.Fanout;
using Evolution.Events.SocketIO;

namespace Evolution.Events.Gateway.Namespaces;

/// <summary>
/// Relays what a client emits in an instance namespace to INBOUND_WEBHOOK_URL and answers its ack
/// with the upstream's JSON (or <c>{ "error": … }</c>). A socket may have a bounded number of relays
/// in flight; past it the ack reports the refusal instead of queuing without bound.
/// </summary>
public sealed class ClientEventRelay(InboundRelay relay, ILogger<ClientEventRelay> logger)
{
    public const int MaxInFlightPerSocket = 32;
    private const string InFlightKey = "gateway.relay.inflight";

    public void Attach(Socket socket)
    {
        var instance = NamespaceAuthorization.InstanceOf(socket.Namespace);
        var inFlight = new StrongBox<int>();
        socket.Data[InFlightKey] = inFlight;
        var stopped = new CancellationTokenSource();
        socket.Disconnected += (_, _) => stopped.Cancel();
        socket.OnAny(e => RelayAsync(e, instance, inFlight, stopped.Token));
    }

    private async ValueTask RelayAsync(SocketEvent e, string instance, StrongBox<int> inFlight, CancellationToken ct)
    {
        if (Interlocked.Increment(ref inFlight.Value) > MaxInFlightPerSocket)
        {
            Interlocked.Decrement(ref inFlight.Value);
            logger.LogWarning("Relay of {Event} from socket {SocketId} refused: {Max} relays already in flight",
                e.Name, e.Socket.Id, MaxInFlightPerSocket);
            e.Ack(new JsonObject { ["error"] = $"too many relays in flight (max {MaxInFlightPerSocket})" });
            return;
        }

        try
        {
            var answer = await relay.RelayAsync(instance, e.Name, DataOf(e.Args), e.Socket.Id, ct);
            e.Ack(answer);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // the socket left; nobody is waiting for the ack
        }
        finally
        {
            Interlocked.Decrement(ref inFlight.Value);
        }
    }

    /// <summary>No argument: null; one: that argument; several: all of them as an array.</summary>
    private static JsonNode? DataOf(IReadOnlyList<JsonNode?> args) => args.Count switch
    {
        0 => null,
        1 => args[0],
        _ => new JsonArray([.. args.Select(a => a?.DeepClone())]),
    };

    private sealed class StrongBox<T>
    {
        public T Value = default!;
    }
}

using System.Text.Json.Nodes;
using Evolution.Events.Gateway.Fanout;
using Evolution.Events.Gateway.Relay;
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

    /// <summary>The relay state of each socket that emitted (weak: it goes with its socket).</summary>
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<Socket, RelayState> _states = new();

    /// <summary>
    /// Relays the events of every socket of the instance namespaces: one namespace-wide listener, and a socket's
    /// relay state (in-flight count, cancellation) made at its first event, so an idle socket holds nothing here.
    /// </summary>
    public void Attach(ParentNamespace instances) => instances.OnAny(RelayAsync);

    private RelayState StateOf(Socket socket)
    {
        if (_states.TryGetValue(socket, out var state))
            return state;
        var created = new RelayState(NamespaceAuthorization.InstanceOf(socket.Namespace));
        state = _states.GetValue(socket, _ => created);
        if (ReferenceEquals(state, created))
        {
            socket.Disconnected += (_, _) => created.Stop();
            if (!socket.Connected)
                created.Stop(); // it left before the handler was there
        }
        return state;
    }

    private async ValueTask RelayAsync(SocketEvent e)
    {
        var state = StateOf(e.Socket);
        if (Interlocked.Increment(ref state.InFlight) > MaxInFlightPerSocket)
        {
            Interlocked.Decrement(ref state.InFlight);
            logger.LogWarning("Relay of {Event} from socket {SocketId} refused: {Max} relays already in flight",
                e.Name, e.Socket.Id, MaxInFlightPerSocket);
            e.Ack(new JsonObject { ["error"] = $"too many relays in flight (max {MaxInFlightPerSocket})" });
            return;
        }

        var ct = state.Token;
        try
        {
            var answer = await relay.RelayAsync(state.Instance, e.Name, DataOf(e.Args), e.Socket.Id, ct);
            e.Ack(answer);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // the socket left; nobody is waiting for the ack
        }
        finally
        {
            Interlocked.Decrement(ref state.InFlight);
        }
    }

    /// <summary>No argument: null; one: that argument; several: all of them as an array.</summary>
    private static JsonNode? DataOf(IReadOnlyList<JsonNode?> args) => args.Count switch
    {
        0 => null,
        1 => args[0],
        _ => new JsonArray([.. args.Select(a => a?.DeepClone())]),
    };

    /// <summary>One socket's relays: how many are in flight, and a cancellation made only once one starts.</summary>
    private sealed class RelayState(string instance)
    {
        public int InFlight;
        private CancellationTokenSource? _stopped;
        private bool _stopRequested;

        public string Instance { get; } = instance;

        public CancellationToken Token
        {
            get
            {
                lock (this)
                {
                    _stopped ??= new CancellationTokenSource();
                    if (_stopRequested)
                        _stopped.Cancel();
                    return _stopped.Token;
                }
            }
        }

        public void Stop()
        {
            lock (this)
            {
                _stopRequested = true;
                _stopped?.Cancel();
            }
        }
    }
}

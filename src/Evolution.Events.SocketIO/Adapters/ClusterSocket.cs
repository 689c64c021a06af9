using System.Collections.Immutable;
using System.Text.Json.Nodes;

namespace Evolution.Events.SocketIO.Adapters;

/// <summary>
/// A socket found by <see cref="IAdapter.FetchSocketsAsync"/>, wherever it is connected: this node's sockets are
/// the real <see cref="Socket"/>s; another node's are <see cref="RemoteSocket"/>s (socket.io's <c>RemoteSocket</c>),
/// whose actions go back through the adapter to the node that holds them.
/// </summary>
public interface IClusterSocket
{
    /// <summary>The socket id (its own room).</summary>
    string Id { get; }

    /// <summary>The handshake of its connection.</summary>
    Handshake Handshake { get; }

    /// <summary>The rooms it is in (its own room included), when it was fetched.</summary>
    IReadOnlyCollection<string> Rooms { get; }

    /// <summary>The application's data of the socket (a snapshot for a remote socket).</summary>
    IReadOnlyDictionary<string, object?> Data { get; }

    /// <summary>Emits an event to this socket.</summary>
    void Emit(string eventName, params object?[] args);

    /// <summary>Adds the socket to a room.</summary>
    void Join(string room);

    /// <summary>Removes the socket from a room.</summary>
    void Leave(string room);

    /// <summary>Disconnects the socket from its namespace; with <paramref name="close"/>, closes its whole connection.</summary>
    void Disconnect(bool close = false);
}

/// <summary>
/// A socket of another node, as a cluster adapter describes it in its answer to <see cref="IAdapter.FetchSocketsAsync"/>.
/// Its actions are adapter operations aimed at its id (the node that holds it carries them out).
/// </summary>
public sealed class RemoteSocket : IClusterSocket
{
    private readonly Namespace _nsp;

    /// <summary>Describes a socket of another node of <paramref name="nsp"/>'s cluster.</summary>
    public RemoteSocket(Namespace nsp, string id, Handshake handshake, IReadOnlyCollection<string> rooms, IReadOnlyDictionary<string, object?> data)
    {
        _nsp = nsp;
        Id = id;
        Handshake = handshake;
        Rooms = rooms;
        Data = data;
    }

    /// <inheritdoc />
    public string Id { get; }

    /// <inheritdoc />
    public Handshake Handshake { get; }

    /// <inheritdoc />
    public IReadOnlyCollection<string> Rooms { get; }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, object?> Data { get; }

    /// <inheritdoc />
    public void Emit(string eventName, params object?[] args) => new BroadcastOperator(_nsp).To(Id).Emit(eventName, args);

    /// <inheritdoc />
    public void Join(string room) => _nsp.Adapter.AddSockets(Only, [room]);

    /// <inheritdoc />
    public void Leave(string room) => _nsp.Adapter.DelSockets(Only, [room]);

    /// <inheritdoc />
    public void Disconnect(bool close = false) => _nsp.Adapter.DisconnectSockets(Only, close);

    private BroadcastOptions Only => new(ImmutableHashSet.Create(StringComparer.Ordinal, Id), ImmutableHashSet<string>.Empty);
}

/// <summary>
/// A server-side event from another node of the cluster (<see cref="Namespace.ServerSideEmit"/> there), for the
/// handlers added with <see cref="Namespace.OnServerSideEmit"/>. <paramref name="ack"/> is set when the emitter
/// waits for an answer: call it once with the answer's arguments.
/// </summary>
public delegate void ServerSideEventHandler(IReadOnlyList<JsonNode?> args, Action<object?[]>? ack);

/// <summary>
/// A broadcast with acknowledgements timed out: <see cref="Responses"/> holds the answers received before it did
/// (socket.io's <c>operation has timed out</c> error with the partial responses).
/// </summary>
public sealed class BroadcastAckTimeoutException : TimeoutException
{
    /// <summary>The error, with the answers that arrived in time.</summary>
    public BroadcastAckTimeoutException(IReadOnlyList<JsonNode?[]> responses)
        : base("operation has timed out")
    {
        Responses = responses;
    }

    /// <summary>The answers received before the timeout (each one the arguments of one client's ack).</summary>
    public IReadOnlyList<JsonNode?[]> Responses { get; }
}

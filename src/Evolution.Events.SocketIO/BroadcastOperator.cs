using System.Collections.Immutable;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using Evolution.Events.SocketIO.Adapters;
using Evolution.Events.SocketIO.Protocol;

namespace Evolution.Events.SocketIO;

/// <summary>
/// Selects sockets of a namespace (rooms, exceptions, flags) and acts on them, on every node of the cluster:
/// every action is an <see cref="IAdapter"/> operation. Immutable: each call returns a new operator. An emit
/// encodes its packet once for all the selected sockets.
/// </summary>
public readonly struct BroadcastOperator
{
    private readonly Namespace _nsp;
    private readonly ImmutableHashSet<string> _rooms;
    private readonly ImmutableHashSet<string> _except;
    private readonly BroadcastFlags _flags;
    private readonly TimeSpan? _timeout;

    /// <summary>A broadcast to every socket of <paramref name="nsp"/>, to narrow with <see cref="To(string)"/> and <see cref="Except(string)"/>.</summary>
    public BroadcastOperator(Namespace nsp)
        : this(nsp, ImmutableHashSet.Create<string>(StringComparer.Ordinal), ImmutableHashSet.Create<string>(StringComparer.Ordinal), BroadcastFlags.None, null)
    {
    }

    private BroadcastOperator(Namespace nsp, ImmutableHashSet<string> rooms, ImmutableHashSet<string> except, BroadcastFlags flags, TimeSpan? timeout)
    {
        _nsp = nsp;
        _rooms = rooms;
        _except = except;
        _flags = flags;
        _timeout = timeout;
    }

    /// <summary>Also targets the sockets in <paramref name="room"/> (rooms add up: a socket in any of them receives the packet once).</summary>
    public BroadcastOperator To(string room) => new(_nsp, _rooms.Add(room), _except, _flags, _timeout);

    /// <summary>Also targets the sockets in any of <paramref name="rooms"/>.</summary>
    public BroadcastOperator To(IEnumerable<string> rooms) => new(_nsp, _rooms.Union(rooms), _except, _flags, _timeout);

    /// <summary>The same as <see cref="To(string)"/> (socket.io's alias).</summary>
    public BroadcastOperator In(string room) => To(room);

    /// <summary>Leaves out the sockets in <paramref name="room"/> (a socket id excludes that socket).</summary>
    public BroadcastOperator Except(string room) => new(_nsp, _rooms, _except.Add(room), _flags, _timeout);

    /// <summary>Leaves out the sockets in any of <paramref name="rooms"/>.</summary>
    public BroadcastOperator Except(IEnumerable<string> rooms) => new(_nsp, _rooms, _except.Union(rooms), _flags, _timeout);

    /// <summary>The packet may be dropped for a socket that is not ready (its queue is not empty).</summary>
    public BroadcastOperator Volatile => new(_nsp, _rooms, _except, _flags | BroadcastFlags.Volatile, _timeout);

    /// <summary>Only this node's sockets.</summary>
    public BroadcastOperator Local => new(_nsp, _rooms, _except, _flags | BroadcastFlags.Local, _timeout);

    /// <summary>How long <see cref="EmitWithAckAsync"/> waits for every selected socket's ack.</summary>
    public BroadcastOperator Timeout(TimeSpan timeout)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);
        return new(_nsp, _rooms, _except, _flags, timeout);
    }

    /// <summary>Emits the event to every selected socket, on every node: encoded once, only enqueued (never waits for a client).</summary>
    public void Emit(string eventName, params object?[] args) =>
        _nsp.Adapter.Broadcast(SocketPacketEncoder.Event(_nsp.Name, eventName, args), Options);

    /// <summary>
    /// Emits an event with one argument of type <typeparamref name="T"/>, serialized once into the packet with
    /// <paramref name="typeInfo"/> (System.Text.Json source generation: no reflection, no boxing). A <c>byte[]</c>
    /// inside <typeparamref name="T"/> is not a binary attachment (see <see cref="Socket.Emit{T}(string, T, JsonTypeInfo{T})"/>).
    /// </summary>
    public void Emit<T>(string eventName, T arg, JsonTypeInfo<T> typeInfo)
    {
        ArgumentNullException.ThrowIfNull(typeInfo);
        _nsp.Adapter.Broadcast(TypedEvent.Encode(_nsp.Name, eventName, arg, typeInfo), Options);
    }

    /// <summary>Writes a packet encoded beforehand for this namespace (the namespace is part of the encoded packet).</summary>
    public void Emit(EncodedPacket packet) => _nsp.Adapter.Broadcast(packet, Options);

    /// <summary>
    /// Emits to every selected socket (on every node) asking each for an ack, and returns their answers (each the
    /// arguments of one client's ack) once all came. Needs <see cref="Timeout"/>: past it, throws
    /// <see cref="BroadcastAckTimeoutException"/> carrying the answers received (socket.io's <c>timeout().emitWithAck()</c>).
    /// </summary>
    public Task<IReadOnlyList<JsonNode?[]>> EmitWithAckAsync(string eventName, params object?[] args)
    {
        if (_timeout is not { } timeout)
        {
            throw new InvalidOperationException("a broadcast with acks needs a timeout: Timeout(…).EmitWithAckAsync(…)");
        }

        var id = _nsp.NextAckId();
        var packet = SocketPacketEncoder.Event(_nsp.Name, eventName, args, id);
        var collector = new AckCollector(timeout);
        _nsp.Adapter.BroadcastWithAck(packet, id, Options, timeout, collector.AddClients, collector.AddResponse);
        collector.Watch(_nsp.Adapter.ServerCountAsync());
        return collector.Task;
    }

    /// <summary>The selected sockets of every node (this node's as <see cref="Socket"/>s, others' as <see cref="RemoteSocket"/>s).</summary>
    public ValueTask<IReadOnlyList<IClusterSocket>> FetchSocketsAsync() => _nsp.Adapter.FetchSocketsAsync(Options);

    /// <summary>The selected sockets of this node only.</summary>
    public IReadOnlyList<Socket> FetchSockets()
    {
        var task = _nsp.Adapter.FetchSocketsAsync(Options with { Flags = _flags | BroadcastFlags.Local });
        var all = task.IsCompletedSuccessfully ? task.Result : task.AsTask().GetAwaiter().GetResult();
        return [.. all.OfType<Socket>()];
    }

    /// <summary>Makes the selected sockets, on every node, join the room.</summary>
    public void SocketsJoin(string room) => _nsp.Adapter.AddSockets(Options, [room]);

    /// <summary>Makes the selected sockets, on every node, join the rooms.</summary>
    public void SocketsJoin(IReadOnlyCollection<string> rooms) => _nsp.Adapter.AddSockets(Options, rooms);

    /// <summary>Makes the selected sockets, on every node, leave the room.</summary>
    public void SocketsLeave(string room) => _nsp.Adapter.DelSockets(Options, [room]);

    /// <summary>Makes the selected sockets, on every node, leave the rooms.</summary>
    public void SocketsLeave(IReadOnlyCollection<string> rooms) => _nsp.Adapter.DelSockets(Options, rooms);

    /// <summary>Disconnects the selected sockets, on every node (with <paramref name="close"/>, their connections).</summary>
    public void DisconnectSockets(bool close = false) => _nsp.Adapter.DisconnectSockets(Options, close);

    private BroadcastOptions Options => new(_rooms, _except, _flags);

    /// <summary>
    /// Gathers a broadcast's acks (socket.io's broadcast-operator logic): complete when every node reported its
    /// client count (expected: the server count) and as many answers came; else the timeout fails it with the answers so far.
    /// </summary>
    private sealed class AckCollector
    {
        private readonly TaskCompletionSource<IReadOnlyList<JsonNode?[]>> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly List<JsonNode?[]> _responses = [];
        private readonly Timer? _timer;
        private int _expectedServers = -1;
        private int _servers;
        private int _expectedClients;

        public AckCollector(TimeSpan timeout) =>
            _timer = new Timer(static s => ((AckCollector)s!).OnTimeout(), this, timeout, System.Threading.Timeout.InfiniteTimeSpan);

        public Task<IReadOnlyList<JsonNode?[]>> Task => _done.Task;

        public void AddClients(int count)
        {
            lock (_responses)
            {
                _expectedClients += count;
                _servers++;
                Check();
            }
        }

        public void AddResponse(JsonNode?[] response)
        {
            lock (_responses)
            {
                if (!_done.Task.IsCompleted)
                {
                    _responses.Add(response);
                    Check();
                }
            }
        }

        public void Watch(ValueTask<int> serverCount)
        {
            if (serverCount.IsCompletedSuccessfully)
            {
                SetServers(serverCount.Result);
                return;
            }

            _ = WatchAsync(serverCount);
        }

        private async Task WatchAsync(ValueTask<int> serverCount)
        {
            try
            {
                SetServers(await serverCount.ConfigureAwait(false));
            }
            catch (Exception ex)
            {
                lock (_responses)
                {
                    _timer?.Dispose();
                    _done.TrySetException(ex);
                }
            }
        }

        private void SetServers(int count)
        {
            lock (_responses)
            {
                _expectedServers = count;
                Check();
            }
        }

        private void Check()
        {
            if (_expectedServers == _servers && _responses.Count == _expectedClients && _done.TrySetResult([.. _responses]))
            {
                _timer?.Dispose();
            }
        }

        private void OnTimeout()
        {
            lock (_responses)
            {
                _done.TrySetException(new BroadcastAckTimeoutException([.. _responses]));
                _timer?.Dispose();
            }
        }
    }
}

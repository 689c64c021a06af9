using Evolution.Events.EngineIO.Protocol;
using Evolution.Events.EngineIO.Transports;

namespace Evolution.Events.EngineIO;

/// <summary>The life of an Engine.IO session, as engine.io's <c>readyState</c>: open, closing, then closed.</summary>
public enum EngineReadyState
{
    /// <summary>Packets flow both ways.</summary>
    Open,

    /// <summary>The close has started: no new packet is accepted; queued ones may still be flushed.</summary>
    Closing,

    /// <summary>The session is gone from the server.</summary>
    Closed,
}

/// <summary>
/// One Engine.IO session: its bounded outbound queue, its heartbeat due time (swept by the server's
/// <see cref="HeartbeatSweep"/>: no timer per session) and its current transport
/// (HTTP long-polling or WebSocket, switched once by an upgrade). Every packet leaves through the
/// queue, so an upgrade never loses or duplicates one; producers only enqueue and never wait.
/// </summary>
public sealed partial class EngineSocket
{
    private readonly EngineIOServer _server;
    private readonly EngineIOOptions _options;
    private readonly OutboundQueue _queue;
    private readonly object _sync = new();
    private CancellationTokenSource? _aborted;
    private int _abortRequested;
    private object? _webSocketAbort;
    private int _webSocketAbortThread;
    private long _timerDue = NotArmed;
    private long _dropped;
    private volatile EngineReadyState _state;
    private HeartbeatPhase _phase;
    private bool _isWebSocket;
    private bool _upgrading;
    private bool _discarded;
    private bool _closedByClient;
    private long _pingDue;
    private long _pingSentAt;
    private long _pingDeliveredAt;
    private long _clientPingDeadline;
    private IEngineSocketListener? _listener;

    /// <summary>The polling transport of a session that began on polling; null for one that began on WebSocket.</summary>
    private readonly PollingTransport? _polling;
    private WebSocketFrameWriter? _activeWriter;

    /// <summary>How long a discarded session's transport may take to send its close frame before its connection is aborted.</summary>
    internal const int CloseGraceMs = 2000;

    /// <summary><see cref="_webSocketAbort"/> while an abort runs it.</summary>
    private static readonly object s_abortRunning = new();

    /// <summary><see cref="_timerDue"/> when nothing is due.</summary>
    private const long NotArmed = long.MaxValue;

    // jsonpIndex: the JSONP callback index of a polling handshake that named one (j), else null
    internal EngineSocket(EngineIOServer server, string id, EngineRequest request, bool isWebSocket, EngineProtocol? protocol = null,
        string? jsonpIndex = null)
    {
        Protocol = protocol ?? EngineProtocol.V4;
        _server = server;
        _options = server.Options;
        Id = id;
        Request = request;
        _isWebSocket = isWebSocket;
        _polling = isWebSocket ? null : new PollingTransport(this, jsonpIndex);
        _queue = new OutboundQueue(_options.MaxQueuedPackets, _options.MaxQueuedBytes);
        _pingDue = EngineClock.Milliseconds + _options.PingInterval;
    }

    private enum HeartbeatPhase
    {
        WaitingToPing,
        AwaitingPong,

        /// <summary>Revision 3: the client pings; the session closes when none came for pingInterval + pingTimeout.</summary>
        AwaitingClientPing,
        Closing,
    }

    /// <summary>The session id (<c>sid</c>), random and unique on this server.</summary>
    public string Id { get; }

    /// <summary>The handshake request that opened the session (copied; a later request naming the sid is <see cref="CurrentRequest"/>).</summary>
    public EngineRequest Request { get; }

    /// <summary>The Engine.IO protocol revision the client speaks: 4, or 3 (<see cref="EngineIOOptions.AllowEIO3"/>), as engine.io's <c>socket.protocol</c>.</summary>
    public int ProtocolVersion => Protocol.Revision;

    /// <summary>The revision's encodings (the session's polling transport's, from its handshake).</summary>
    internal EngineProtocol Protocol { get; }

    /// <summary><c>polling</c> or <c>websocket</c>: the transport packets leave by now.</summary>
    public string Transport => Volatile.Read(ref _isWebSocket) ? "websocket" : "polling";

    /// <summary>Where the session is in its life.</summary>
    public EngineReadyState ReadyState => _state;

    /// <summary>Packets now waiting in the outbound queue.</summary>
    public int QueuedPackets => _queue.Count;

    /// <summary>Packets dropped under <see cref="OverflowPolicy.DropNewest"/> or as volatile.</summary>
    public long DroppedPackets => Interlocked.Read(ref _dropped);

    internal bool IsWebSocket => Volatile.Read(ref _isWebSocket);

    /// <summary>The polling transport (null when the session began on WebSocket).</summary>
    internal PollingTransport? Polling => _polling;

    /// <summary>Whether a poll request is being served now (for tests).</summary>
    internal bool IsPollWaiting => _polling?.IsPollWaiting == true;

    internal EngineIOServer Server => _server;

    internal EngineIOOptions Options => _options;

    internal OutboundQueue Queue => _queue;

    /// <summary>Cancelled by <see cref="AbortTransports"/>; its source is created on first use (most sessions never ask).</summary>
    internal CancellationToken Aborted
    {
        get
        {
            var cts = Volatile.Read(ref _aborted);
            if (cts is null)
            {
                var created = new CancellationTokenSource();
                cts = Interlocked.CompareExchange(ref _aborted, created, null) ?? created;
            }

            // an abort that came before the source existed cancels it now (the flag is set before the abort reads the field)
            if (Volatile.Read(ref _abortRequested) != 0)
            {
                CancelAborted(cts);
            }

            return cts.Token;
        }
    }

    internal bool Discarded => Volatile.Read(ref _discarded);

    /// <summary>What a waiting poll gets once the session is gone: a noop if the client closed it, else a close packet.</summary>
    internal OutboundPacket FinalPollPacket => Volatile.Read(ref _closedByClient) ? OutboundPacket.Noop : OutboundPacket.Close;

    internal void SetListener(IEngineSocketListener listener) => _listener = listener;

    /// <summary>
    /// Queues a packet. Never waits: returns false when the session is not open, or when the bounded
    /// queue is full (then the overflow policy has been applied).
    /// </summary>
    public bool Send(in OutboundPacket packet)
    {
        if (_state != EngineReadyState.Open)
        {
            return false;
        }

        if (_queue.TryEnqueue(packet))
        {
            return true;
        }

        if (!_queue.IsCompleted)
        {
            var (packets, bytes) = _queue.Queued;
            OnOverflow(packets + 1, bytes + packet.Bytes.Length);
        }

        return false;
    }

    /// <summary>
    /// Queues a packet only if nothing is waiting to be written and it fits the queue's limits (a volatile emit);
    /// else drops it. Never applies the overflow policy: a volatile packet never closes the session.
    /// </summary>
    public bool SendVolatile(in OutboundPacket packet)
    {
        if (_state != EngineReadyState.Open)
        {
            return false;
        }

        if (_queue.TryEnqueueVolatile(packet))
        {
            return true;
        }

        Interlocked.Increment(ref _dropped);
        return false;
    }

    /// <summary>Closes the session from the server side: what is queued is still written, then the transport closes.</summary>
    public void Close() => Close(EngineCloseReason.ForcedClose, null, discard: false);

    /// <summary>Closes the session at once, dropping what is queued (bad input, policy violations).</summary>
    public void Abort(EngineCloseReason reason, string? description)
    {
        Close(reason, description, discard: true);
    }

    internal void Start()
    {
        lock (_sync)
        {
            if (!Protocol.ServerPings)
            {
                // as engine.io for revision 3: the client pings first, within pingInterval + pingTimeout
                _phase = HeartbeatPhase.AwaitingClientPing;
                _clientPingDeadline = EngineClock.Milliseconds + ClientPingWindow;
                ArmTimer(ClientPingWindow);
                return;
            }

            _phase = HeartbeatPhase.WaitingToPing;
            _pingDue = EngineClock.Milliseconds + _options.PingInterval;
            ArmTimer(_options.PingInterval);
        }
    }

    /// <summary>Queues a control packet past the bounds (close, noop): it must not be refused.</summary>
    internal void EnqueueControl(in OutboundPacket packet) => _queue.EnqueueUnbounded(packet);

    /// <summary>
    /// The request that carried the packet the listener is handling now: the polling POST, or the WebSocket's
    /// request (its upgrade, or the handshake of a session that began on WebSocket). Set only during
    /// <see cref="IEngineSocketListener.OnMessage"/> and <see cref="IEngineSocketListener.OnBinary"/>, on the
    /// thread of that call; null anywhere else. Unlike <see cref="Request"/> (the handshake, shared by every
    /// later request that names the session id), it shows what the sender of this very packet presented: a
    /// session id is no secret (it is in every polling URL), so authorise with this. Copied out of the
    /// request on first use.
    /// </summary>
    public EngineRequest? CurrentRequest =>
        ReferenceEquals(t_deliveringSession, this) ? t_deliveringOrigin?.Request : null;

    [ThreadStatic]
    private static EngineSocket? t_deliveringSession;

    [ThreadStatic]
    private static IPacketOrigin? t_deliveringOrigin;

    /// <summary>Handles one packet from the client, whichever transport (<paramref name="origin"/>) it came by.</summary>
    internal void OnPacket(in InboundPacket packet, IPacketOrigin origin)
    {
        if (_state != EngineReadyState.Open)
        {
            return;
        }

        var (previousSession, previousOrigin) = (t_deliveringSession, t_deliveringOrigin);
        (t_deliveringSession, t_deliveringOrigin) = (this, origin);
        try
        {
            Dispatch(packet);
        }
        finally
        {
            (t_deliveringSession, t_deliveringOrigin) = (previousSession, previousOrigin);
        }
    }

    private void Dispatch(in InboundPacket packet)
    {
        switch (packet.Type)
        {
            case EnginePacketType.Message:
                Deliver(packet);
                break;
            case EnginePacketType.Pong when Protocol.ServerPings:
                OnPong();
                break;
            case EnginePacketType.Ping when !Protocol.ServerPings:
                OnClientPing();
                break;
            case EnginePacketType.Close:
                Close(EngineCloseReason.TransportClose, "client sent a close packet", discard: true, fromClient: true);
                break;
            case EnginePacketType.Noop:
                break;
            case EnginePacketType.Ping or EnginePacketType.Pong:
                Close(EngineCloseReason.ParseError, "invalid heartbeat direction", discard: true);
                break;
            default:
                Close(EngineCloseReason.ParseError, $"unexpected packet type {packet.Type}", discard: true);
                break;
        }
    }

    /// <summary>
    /// Hands a message to the listener. A listener that throws is a bug, not the client's doing: it is
    /// logged once and the session closed, and the request that carried the packet still ends cleanly.
    /// </summary>
    private void Deliver(in InboundPacket packet)
    {
        try
        {
            if (packet.Binary is { } binary)
            {
                _listener?.OnBinary(this, binary);
            }
            else
            {
                _listener?.OnMessage(this, packet.Text ?? string.Empty);
            }
        }
        catch (Exception ex)
        {
            _server.LogListenerFailure(ex, Id);
            Close(EngineCloseReason.TransportError, "server error", discard: true);
        }
    }

    internal void Close(EngineCloseReason reason, string? description, bool discard, bool fromClient = false)
    {
        if (BeginClose(discard, fromClient))
        {
            EndClose(reason, description, discard, fromClient);
        }
    }

    /// <summary>Closing from now on (no packet is queued any more); false when the session was already closing or closed.</summary>
    private bool BeginClose(bool discard, bool fromClient)
    {
        lock (_sync)
        {
            if (_state == EngineReadyState.Closed)
            {
                return false;
            }

            if (_state == EngineReadyState.Closing)
            {
                if (discard)
                {
                    Discard(fromClient);
                }

                return false;
            }

            _state = EngineReadyState.Closing;
            _phase = HeartbeatPhase.Closing;
            return true;
        }
    }

    /// <summary>The close cascade (listener, hence the application's disconnect handlers), then the end of the queue.</summary>
    private void EndClose(EngineCloseReason reason, string? description, bool discard, bool fromClient)
    {
        try
        {
            _server.OnSessionClosing(this, reason, description);
            NotifyListener(reason, description);
            _server.OnSessionClosed(this, reason);
        }
        finally
        {
            // whatever the notifications did, the session ends: a failed close must not leave it registered
            if (discard)
            {
                Discard(fromClient);
            }
            else
            {
                // What is queued is still written; the close packet ends the queue.
                EnqueueControl(OutboundPacket.Close);
                _queue.Complete();
                lock (_sync)
                {
                    if (_state != EngineReadyState.Closed)
                    {
                        ArmTimer(_options.CloseTimeout);
                    }
                }
            }
        }
    }

    /// <summary>Ends the session for good: the registry forgets it and every transport stops.</summary>
    internal void Finish()
    {
        lock (_sync)
        {
            if (_state == EngineReadyState.Closed)
            {
                return;
            }

            _state = EngineReadyState.Closed;
        }

        Volatile.Write(ref _timerDue, NotArmed);
        _queue.Complete();
        _server.Forget(this);
    }

    internal void AbortTransports()
    {
        Interlocked.Exchange(ref _abortRequested, 1); // a full fence: a source or a WebSocket attached from now on sees the flag
        if (Volatile.Read(ref _aborted) is { } cts)
        {
            CancelAborted(cts);
        }

        RunWebSocketAbort();
    }

    /// <summary>
    /// The WebSocket serving the session: <see cref="AbortTransports"/> ends its connection through
    /// <paramref name="abort"/> (a field, not a registration on <see cref="Aborted"/>: no token source per session).
    /// </summary>
    internal void AttachWebSocketAbort(Action abort)
    {
        Interlocked.Exchange(ref _webSocketAbort, abort); // a full fence: an abort requested before is seen below
        if (Volatile.Read(ref _abortRequested) != 0)
        {
            RunWebSocketAbort();
        }
    }

    /// <summary>
    /// The WebSocket is done: an abort from now on no longer touches its connection; one running now on another
    /// thread ends first (as a token registration's disposal waits for its running callback).
    /// </summary>
    internal void DetachWebSocketAbort(Action abort)
    {
        Interlocked.CompareExchange(ref _webSocketAbort, null, abort);
        var spin = default(SpinWait);
        while (ReferenceEquals(Volatile.Read(ref _webSocketAbort), s_abortRunning)
            && Volatile.Read(ref _webSocketAbortThread) != Environment.CurrentManagedThreadId)
        {
            spin.SpinOnce();
        }
    }

    private void RunWebSocketAbort()
    {
        if (Volatile.Read(ref _webSocketAbort) is Action abort
            && ReferenceEquals(Interlocked.CompareExchange(ref _webSocketAbort, s_abortRunning, abort), abort))
        {
            Volatile.Write(ref _webSocketAbortThread, Environment.CurrentManagedThreadId);
            try
            {
                abort();
            }
            finally
            {
                Volatile.Write(ref _webSocketAbortThread, 0);
                Volatile.Write(ref _webSocketAbort, null);
            }
        }
    }

    private static void CancelAborted(CancellationTokenSource cts)
    {
        try
        {
            cts.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private void Discard(bool fromClient)
    {
        if (fromClient && !Volatile.Read(ref _isWebSocket))
        {
            // a close packet over polling: a poll sent with it but served after it still gets its
            // noop. Remembered before the discard is published, so the poll that answers (a waiting
            // one sees the discard) always finds the entry to take.
            _server.RememberClosedPoll(Id);
        }

        // who closed is published before the discard, so a poll that sees the discard sees its answer
        Volatile.Write(ref _closedByClient, fromClient);
        Volatile.Write(ref _discarded, true);
        Finish();
        if (Volatile.Read(ref _activeWriter) is not null || IsUpgradingOrUpgraded)
        {
            // the transport gets a short grace to send its close frame, then its connection is aborted:
            // a discarded session never leaves a connection behind (e.g. one stuck in a write)
            _ = AbortTransportsAfterAsync(CloseGraceMs);
        }
    }

    private async Task AbortTransportsAfterAsync(int delayMs)
    {
        await Task.Delay(delayMs).ConfigureAwait(false);
        AbortTransports();
    }

    /// <summary>The WebSocket writer now serving the session (null while polling): its pending write has a deadline.</summary>
    internal void AttachWriter(WebSocketFrameWriter writer) => Volatile.Write(ref _activeWriter, writer);

    /// <summary>
    /// True (and the session closed, its connection aborted) when a WebSocket write has waited longer
    /// than the ping timeout: a client that stops reading can hold no connection open with a pending write.
    /// </summary>
    private bool AbortIfWriteOverdue()
    {
        if (!IsWriteOverdue())
        {
            return false;
        }

        Close(EngineCloseReason.TransportError, "write timed out", discard: true);
        AbortTransports();
        return true;
    }

    private bool IsWriteOverdue()
    {
        var since = Volatile.Read(ref _activeWriter)?.WritingSince ?? 0;
        return since != 0 && EngineClock.Milliseconds - since > _options.PingTimeout;
    }

    private void NotifyListener(EngineCloseReason reason, string? description)
    {
        var listener = Interlocked.Exchange(ref _listener, null);
        try
        {
            listener?.OnClose(this, reason, description);
        }
        catch (Exception ex)
        {
            _server.LogListenerFailure(ex, Id);
        }
    }

    private void OnOverflow(int count, long bytes)
    {
        Interlocked.Increment(ref _dropped);
        if (_options.OverflowPolicy == OverflowPolicy.DropNewest)
        {
            return;
        }

        _server.LogSlowConsumer(Id, count - 1, bytes);

        // The session stops taking packets now, on the sender's thread; the close cascade (the listener, hence the
        // application's disconnect handlers, which may broadcast or block) runs on the thread pool: the sender may
        // be a broadcast's fan-out loop, which must neither run nor wait for user code (as SignalR and centrifuge do)
        if (BeginClose(discard: true, fromClient: false))
        {
            var description = $"outbound queue full ({count - 1} packets, {bytes} bytes)";
            ThreadPool.UnsafeQueueUserWorkItem(
                static state =>
                {
                    state.Session.EndClose(EngineCloseReason.SlowConsumer, state.Description, discard: true, fromClient: false);
                    state.Session.AbortTransports();
                },
                (Session: this, Description: description),
                preferLocal: false);
        }
    }

    private void OnPong()
    {
        lock (_sync)
        {
            if (_phase != HeartbeatPhase.AwaitingPong)
            {
                return;
            }

            // pings keep their own rhythm, pingInterval apart from when each was due: neither the
            // pong's round trip nor a late timer pushes the next one back (never before the pong)
            var now = EngineClock.Milliseconds;
            _phase = HeartbeatPhase.WaitingToPing;
            _pingDue = Math.Max(now, _pingDue + _options.PingInterval);
            ArmTimer(_pingDue - now);
        }
    }

    /// <summary>Revision 3: how long the session waits for the client's next ping.</summary>
    private long ClientPingWindow => (long)_options.PingInterval + _options.PingTimeout;

    /// <summary>Revision 3: the client pinged; it has another pingInterval + pingTimeout for the next ping, and gets its pong.</summary>
    private void OnClientPing()
    {
        lock (_sync)
        {
            if (_phase != HeartbeatPhase.AwaitingClientPing)
            {
                return;
            }

            _clientPingDeadline = EngineClock.Milliseconds + ClientPingWindow;
            ArmTimer(ClientPingWindow);
        }

        Send(OutboundPacket.Pong);
    }

    /// <summary>A poll response carried the ping: the client's time to answer counts from now.</summary>
    internal void OnPingDelivered()
    {
        lock (_sync)
        {
            if (_phase == HeartbeatPhase.AwaitingPong && _pingDeliveredAt == 0)
            {
                _pingDeliveredAt = EngineClock.Milliseconds;
            }
        }
    }

    /// <summary>
    /// When the pong is due (under the lock, awaiting it). On WebSocket, <c>pingTimeout</c> after the
    /// ping was sent. On polling the ping only reaches the client with a poll response, so the time
    /// counts from that response; a ping no poll has carried yet counts from when it was due, so a
    /// client that stopped polling times out on schedule even if the ping timer ran late.
    /// </summary>
    private long PongDeadline()
    {
        var from = _isWebSocket ? _pingSentAt : _pingDeliveredAt != 0 ? _pingDeliveredAt : _pingDue;
        return from + _options.PingTimeout;
    }

    /// <summary>
    /// Closes the session if its pong is overdue, even when the timer has not fired yet (a timer
    /// may run late under load; a request must never find a session past its deadline alive).
    /// A polling session whose ping timer is late by more than <c>pingTimeout</c> is overdue too:
    /// on time, its ping would have gone out and timed out, as no poll came to carry it.
    /// </summary>
    internal bool ExpireIfPongOverdue()
    {
        bool overdue;
        lock (_sync)
        {
            var now = EngineClock.Milliseconds;
            overdue = _phase switch
            {
                HeartbeatPhase.AwaitingPong => now >= PongDeadline(),
                HeartbeatPhase.WaitingToPing => !_isWebSocket && now >= _pingDue + _options.PingTimeout,
                HeartbeatPhase.AwaitingClientPing => now >= _clientPingDeadline,
                _ => false,
            };
        }

        if (overdue)
        {
            Close(EngineCloseReason.PingTimeout, null, discard: true);
        }

        return overdue;
    }

    /// <summary>Arms the heartbeat (under the lock): the server's sweep fires it once <paramref name="delayMs"/> have passed.</summary>
    private void ArmTimer(long delayMs) => Volatile.Write(ref _timerDue, EngineClock.Milliseconds + delayMs);

    /// <summary>
    /// The server's <see cref="HeartbeatSweep"/>, every tick: fires the heartbeat once if it is due. A ping is
    /// queued on the sweep's thread; anything that closes (whose cascade runs user code) runs on the thread pool.
    /// </summary>
    internal void OnHeartbeatTick(long now)
    {
        var due = Volatile.Read(ref _timerDue);
        if (now < due || Interlocked.CompareExchange(ref _timerDue, NotArmed, due) != due)
        {
            return;
        }

        if (_state == EngineReadyState.Open && IsWriteOverdue())
        {
            RunTimerOnPool();
            return;
        }

        bool ping;
        lock (_sync)
        {
            ping = _state == EngineReadyState.Open && _phase == HeartbeatPhase.WaitingToPing;
        }

        if (ping)
        {
            OnTimer();
        }
        else
        {
            RunTimerOnPool();
        }
    }

    private void RunTimerOnPool() =>
        ThreadPool.UnsafeQueueUserWorkItem(static session => session.OnTimer(), this, preferLocal: false);

    private void OnTimer()
    {
        if (_state == EngineReadyState.Open && AbortIfWriteOverdue())
        {
            return;
        }

        HeartbeatPhase phase;
        lock (_sync)
        {
            if (_state == EngineReadyState.Closed || Volatile.Read(ref _timerDue) != NotArmed)
            {
                // ended, or re-armed since this tick took its due time (a pong, a close): the new due time counts
                return;
            }

            phase = _phase;
            var now = EngineClock.Milliseconds;
            if (phase == HeartbeatPhase.WaitingToPing)
            {
                _phase = HeartbeatPhase.AwaitingPong;
                _pingSentAt = now;
                _pingDeliveredAt = 0;
                ArmTimer(_options.PingTimeout);
            }
            else if (phase == HeartbeatPhase.AwaitingClientPing && _clientPingDeadline - now is var remaining and > 0)
            {
                ArmTimer(remaining);
                return;
            }
            else if (phase == HeartbeatPhase.AwaitingPong && PongDeadline() - now is var left and > 0)
            {
                // the ping reached a polling client after it was sent: it has the rest of its time
                ArmTimer(left);
                return;
            }
        }

        switch (phase)
        {
            case HeartbeatPhase.WaitingToPing:
                Send(OutboundPacket.Ping);
                break;
            case HeartbeatPhase.AwaitingPong or HeartbeatPhase.AwaitingClientPing:
                Close(EngineCloseReason.PingTimeout, null, discard: true);
                break;
            default:
                // a server close whose last poll never came, or whose flush to a WebSocket never ended:
                // the session ends, and its connection with it
                Finish();
                AbortTransports();
                break;
        }
    }
}

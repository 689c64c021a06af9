using System.Net.WebSockets;
using Evolution.Events.EngineIO.Protocol;

namespace Evolution.Events.EngineIO.Transports;

/// <summary>
/// The WebSocket transport of one session over our own RFC 6455 framing: a read loop that hands
/// packets to the session, and a write loop that drains the session's queue, gathering every
/// queued frame (up to <see cref="WebSocketFrameWriter.BatchBytes"/>) into one write. A probe
/// (an upgrade from polling) reads only until the upgrade packet, then takes the queue over.
/// </summary>
internal sealed class WebSocketTransport : IPacketOrigin
{
    private static readonly byte[] ProbeReply = "3probe"u8.ToArray();
    private const int CloseGraceMs = EngineSocket.CloseGraceMs;

    /// <summary>Packets taken from the queue per lock; a batch takes as many chunks as fit its budget.</summary>
    private const int DrainChunk = 64;

    private readonly EngineSocket _session;
    private readonly WebSocketFrameWriter _writer;
    private readonly WebSocketFrameReader _reader;
    private readonly Action _abortConnection;
    private readonly Microsoft.AspNetCore.Http.HttpContext? _context;
    private readonly EngineProtocol _protocol;
    private EngineRequest? _request;
    private int _closeSent;
    private bool _readDone;

    /// <param name="session">The session this WebSocket serves.</param>
    /// <param name="stream">The upgraded connection.</param>
    /// <param name="maxPayload">Largest message the client may send.</param>
    /// <param name="context">The WebSocket's request (alive as long as the connection); aborting it ends the connection at once.</param>
    /// <param name="request">The copy of that request when one exists already (the handshake of a session that began here).</param>
    /// <param name="protocol">The revision's encodings for this WebSocket (its own request's <c>b64</c>); the session's by default.</param>
    /// <param name="deflate"><c>permessage-deflate</c> when the handshake negotiated it.</param>
    public WebSocketTransport(EngineSocket session, Stream stream, int maxPayload, Microsoft.AspNetCore.Http.HttpContext context,
        EngineRequest? request = null, EngineProtocol? protocol = null, WebSocketDeflate? deflate = null)
    {
        _protocol = protocol ?? session.Protocol;
        _session = session;
        _context = context;
        _abortConnection = context.Abort;
        _request = request;
        _writer = new WebSocketFrameWriter(stream);
        _reader = new WebSocketFrameReader(stream, _writer, maxPayload, deflate);
    }

    /// <summary>A WebSocket whose request is gone already (detached from it, see <c>IConnectionDetachFeature</c>).</summary>
    /// <param name="session">The session this WebSocket serves.</param>
    /// <param name="stream">The upgraded connection.</param>
    /// <param name="maxPayload">Largest message the client may send.</param>
    /// <param name="abortConnection">Ends the connection at once.</param>
    /// <param name="request">The copy of the WebSocket's request.</param>
    /// <param name="protocol">The revision's encodings for this WebSocket (its own request's <c>b64</c>); the session's by default.</param>
    /// <param name="deflate"><c>permessage-deflate</c> when the handshake negotiated it.</param>
    public WebSocketTransport(EngineSocket session, Stream stream, int maxPayload, Action abortConnection, EngineRequest request,
        EngineProtocol? protocol = null, WebSocketDeflate? deflate = null)
    {
        _protocol = protocol ?? session.Protocol;
        _session = session;
        _abortConnection = abortConnection;
        _request = request;
        _writer = new WebSocketFrameWriter(stream);
        _reader = new WebSocketFrameReader(stream, _writer, maxPayload, deflate);
    }

    /// <summary>The WebSocket's request, copied on first use (only its read loop asks).</summary>
    public EngineRequest Request => _request ??= EngineRequest.From(_context!);

    /// <summary>Serves a session that started on this WebSocket: the handshake is already queued.</summary>
    public Task RunAsync() => ServeAsync();

    /// <summary>Serves an upgrade: answers the probe, waits for the upgrade packet, then serves the session.</summary>
    public async Task RunProbeAsync(int upgradeTimeoutMs)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_session.Aborted);
        timeout.CancelAfter(upgradeTimeoutMs);
        var upgraded = false;
        try
        {
            upgraded = await ProbeAsync(timeout.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or InvalidOperationException)
        {
        }

        if (!upgraded)
        {
            _session.AbandonUpgrade();
            await CloseAsync(WebSocketCloseStatus.PolicyViolation);
            _reader.Complete();
            return;
        }

        await ServeAsync();
    }

    /// <summary>Accepts then closes at once (a second WebSocket for an upgraded session).</summary>
    public async Task RefuseAsync()
    {
        await CloseAsync(WebSocketCloseStatus.PolicyViolation);
        _reader.Complete();
    }

    /// <summary>
    /// Runs the write loop as its own task and the read loop here, in this method's own state (an idle
    /// connection keeps one state machine less and no task combinator). Whichever ends first, the other gets
    /// <see cref="CloseGraceMs"/> to end too, then the connection is aborted.
    /// </summary>
    private async Task ServeAsync()
    {
        // for the connection's life, an abort of the session ends this connection; reads and waits take no token of their own
        _session.AttachWebSocketAbort(_abortConnection);
        try
        {
            _session.AttachWriter(_writer);
            var writer = WriteLoopAsync();
            try
            {
                while (_session.ReadyState != EngineReadyState.Closed)
                {
                    if (_reader.IsIdle)
                    {
                        // idle: the wait is this method's own (see WebSocketFrameReader.IsIdle)
                        if (_reader.PipeInput is { } input)
                        {
                            WebSocketFrameReader.Waited(input, await input.ReadAsync());
                        }
                        else
                        {
                            await _reader.WaitOnStreamAsync();
                        }
                    }

                    var message = await _reader.ReadAsync();
                    if (!Dispatch(message))
                    {
                        break;
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
            catch (Exception ex) when (ex is IOException or InvalidOperationException or ObjectDisposedException)
            {
                // the connection failed (reset by the peer, mostly): no close frame can reach anyone, and writing one
                // would only throw again (three exceptions per dropped client, measured); claimed before the write
                // loop, woken by the close below, gets to it
                Interlocked.Exchange(ref _closeSent, 1);
                _session.Close(EngineCloseReason.TransportClose, ex.Message, discard: true);
            }

            Volatile.Write(ref _readDone, true);
            if (!writer.IsCompleted && _session.ReadyState == EngineReadyState.Open)
            {
                _session.Close(EngineCloseReason.TransportClose, "WebSocket ended", discard: true);
            }

            // the session is closing: the writer flushes and sends the close frame
            if (!writer.IsCompleted && await Task.WhenAny(writer, Task.Delay(CloseGraceMs)) != writer)
            {
                _session.AbortTransports(); // through the abort attached above: aborts the connection
            }

            await writer;
        }
        finally
        {
            _session.DetachWebSocketAbort(_abortConnection);
        }

        _reader.Complete();
    }

    /// <summary>The write loop ended first (the session closed): the client has the grace to answer the close frame, then the connection is aborted.</summary>
    private async Task AbortUnlessReadEndsAsync()
    {
        await Task.Delay(CloseGraceMs).ConfigureAwait(false);
        if (!Volatile.Read(ref _readDone))
        {
            _session.AbortTransports();
        }
    }

    private async Task<bool> ProbeAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var message = await _reader.ReadAsync(cancellationToken);
            if (message.Kind != WebSocketFrameReader.Kind.Text)
            {
                return false;
            }

            switch (message.Text)
            {
                case "2probe":
                    if (!_session.BeginUpgrade())
                    {
                        return false;
                    }

                    await _writer.WriteFrameAsync(WebSocketFrameWriter.Opcode.Text, ProbeReply, cancellationToken);
                    break;
                case "5":
                    return _session.CompleteUpgrade();
                default:
                    return false;
            }
        }
    }

    /// <summary>Hands one message to the session; false when the connection must end.</summary>
    private bool Dispatch(in WebSocketFrameReader.Message message)
    {
        switch (message.Kind)
        {
            case WebSocketFrameReader.Kind.Text:
                if (!_protocol.TryParseText(message.Text!, out var packet, out var error))
                {
                    _session.Close(EngineCloseReason.ParseError, error, discard: true);
                    return false;
                }

                _session.OnPacket(packet, this);
                return true;
            case WebSocketFrameReader.Kind.Binary:
                if (!_protocol.TryParseBinary(message.Binary!, out var binary, out var binaryError))
                {
                    _session.Close(EngineCloseReason.ParseError, binaryError, discard: true);
                    return false;
                }

                _session.OnPacket(binary, this);
                return true;
            case WebSocketFrameReader.Kind.Close:
                _session.Close(EngineCloseReason.TransportClose, "client closed the WebSocket", discard: true, fromClient: true);
                return false;
            default:
                // the close frame's code is claimed first (synchronously, in CloseAsync), so the write loop, woken by
                // the session's close, cannot send its NormalClosure before this one (1009, 1007, 1002)
                var closing = CloseAsync(WebSocketCloseCodes.For(message.Kind));
                _session.Close(EngineCloseReason.TransportError, $"WebSocket {message.Kind}", discard: true);
                _ = closing;
                return false;
        }
    }

    private async Task WriteLoopAsync()
    {
        var queue = _session.Queue;
        try
        {
            while (await queue.WaitToReadAsync(inlineAfterCork: true) && !_session.Discarded)
            {
                if (await WriteBatchAsync())
                {
                    _session.Finish();
                    break; // the close frame is sent (CloseAsync below does nothing more)
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or ObjectDisposedException)
        {
            _session.Close(EngineCloseReason.TransportError, ex.Message, discard: true);
        }

        await CloseAsync(WebSocketCloseStatus.NormalClosure);
        if (!Volatile.Read(ref _readDone))
        {
            _ = AbortUnlessReadEndsAsync();
        }
    }

    /// <summary>Writes what is queued in as few writes as possible; true once the close packet was reached.</summary>
    private async ValueTask<bool> WriteBatchAsync()
    {
        var queue = _session.Queue;
        var deflate = _reader.Deflate;
        var taken = System.Buffers.ArrayPool<OutboundPacket>.Shared.Rent(DrainChunk);
        using var batch = PooledBufferWriter.Rent(WebSocketFrameWriter.BatchBufferSize(queue));
        try
        {
            while (batch.WrittenCount < WebSocketFrameWriter.BatchBytes && !_session.Discarded
                && queue.TryDrain(taken.AsSpan(0, DrainChunk), WebSocketFrameWriter.BatchBytes - batch.WrittenCount) is var n and > 0)
            {
                for (var i = 0; i < n; i++)
                {
                    var packet = taken[i];
                    taken[i] = default;
                    switch (packet.Type)
                    {
                        case EnginePacketType.Noop:
                            continue; // noops only end waiting polls
                        case EnginePacketType.Close:
                            await FlushAsync(batch);
                            await CloseAsync(WebSocketCloseStatus.NormalClosure);
                            return true;
                    }

                    var (opcode, bytes) = (WebSocketFrameWriter.Opcode.Text, packet.Bytes);
                    if (packet.IsBinary)
                    {
                        var (asText, framed) = _protocol.WebSocketBinary(packet);
                        (opcode, bytes) = (asText ? WebSocketFrameWriter.Opcode.Text : WebSocketFrameWriter.Opcode.Binary, framed);
                    }

                    var compressed = false;
                    if (deflate is not null)
                    {
                        // compressed once per message, whichever socket asks first; the others share the bytes
                        (bytes, compressed) = deflate.Prepare(bytes);
                    }

                    if (WebSocketFrameWriter.FrameSize(bytes.Length) > WebSocketFrameWriter.BatchBytes)
                    {
                        await FlushAsync(batch);
                        await _writer.WriteFrameAsync(opcode, bytes, CancellationToken.None, compressed);
                        continue;
                    }

                    WebSocketFrameWriter.Append(batch, opcode, bytes.Span, compressed);
                }
            }

            await FlushAsync(batch);
            return false;
        }
        finally
        {
            taken.AsSpan(0, DrainChunk).Clear();
            System.Buffers.ArrayPool<OutboundPacket>.Shared.Return(taken);
        }
    }

    private async ValueTask FlushAsync(PooledBufferWriter batch)
    {
        if (batch.WrittenCount > 0)
        {
            await _writer.WriteAsync(batch.WrittenMemory, CancellationToken.None);
            batch.Reset();
        }
    }

    private async Task CloseAsync(WebSocketCloseStatus status)
    {
        if (Interlocked.Exchange(ref _closeSent, 1) == 1)
        {
            return;
        }

        try
        {
            using var cts = new CancellationTokenSource(1000);
            await _writer.WriteCloseAsync(status, cts.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or InvalidOperationException or ObjectDisposedException)
        {
        }
    }
}

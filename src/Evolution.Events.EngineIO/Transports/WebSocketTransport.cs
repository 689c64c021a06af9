using System.Buffers;
using System.Net.WebSockets;
using System.Text;
using Evolution.Events.EngineIO.Protocol;

namespace Evolution.Events.EngineIO.Transports;

/// <summary>
/// The WebSocket transport of one session: a read loop that hands packets to the session and a
/// write loop that drains the session's queue. A probe (an upgrade from polling) reads only until
/// the upgrade packet, then takes the queue over.
/// </summary>
internal sealed class WebSocketTransport
{
    private static readonly byte[] ProbeReply = "3probe"u8.ToArray();
    private const int ReceiveChunk = 4096;
    private const int CloseGraceMs = 2000;

    private readonly EngineSocket _session;
    private readonly WebSocket _socket;
    private readonly int _maxPayload;

    public WebSocketTransport(EngineSocket session, WebSocket socket, int maxPayload)
    {
        _session = session;
        _socket = socket;
        _maxPayload = maxPayload;
    }

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
        catch (Exception ex) when (ex is OperationCanceledException or WebSocketException or IOException)
        {
        }

        if (!upgraded)
        {
            _session.AbandonUpgrade();
            await CloseQuietlyAsync(WebSocketCloseStatus.PolicyViolation);
            return;
        }

        await ServeAsync();
    }

    private async Task ServeAsync()
    {
        var writer = WriteLoopAsync();
        var reader = ReadLoopAsync();
        if (await Task.WhenAny(reader, writer) == reader && _session.ReadyState == EngineReadyState.Open)
        {
            _session.Close(EngineCloseReason.TransportClose, "WebSocket ended", discard: true);
        }

        // the session is closing: the writer flushes and sends the close frame, the reader sees the reply
        var both = Task.WhenAll(reader, writer);
        if (await Task.WhenAny(both, Task.Delay(CloseGraceMs)) != both)
        {
            _session.AbortTransports();
            _socket.Abort();
            await both;
        }
    }

    private async Task<bool> ProbeAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var message = await ReceiveAsync(cancellationToken);
            if (message.Kind != MessageKind.Text)
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

                    await _socket.SendAsync(ProbeReply, WebSocketMessageType.Text, true, cancellationToken);
                    break;
                case "5":
                    return _session.CompleteUpgrade();
                default:
                    return false;
            }
        }
    }

    private async Task ReadLoopAsync()
    {
        try
        {
            while (_session.ReadyState != EngineReadyState.Closed)
            {
                var message = await ReceiveAsync(_session.Aborted);
                switch (message.Kind)
                {
                    case MessageKind.Close:
                        _session.Close(EngineCloseReason.TransportClose, "client closed the WebSocket", discard: true, fromClient: true);
                        return;
                    case MessageKind.TooLarge:
                        _session.Close(EngineCloseReason.TransportError, "message larger than maxPayload", discard: true);
                        await CloseQuietlyAsync(WebSocketCloseStatus.MessageTooBig);
                        return;
                    case MessageKind.Binary:
                        _session.OnPacket(new InboundPacket(EnginePacketType.Message, null, message.Binary));
                        break;
                    default:
                        if (!EnginePacketParser.TryParseText(message.Text!, out var packet, out var error))
                        {
                            _session.Close(EngineCloseReason.ParseError, error, discard: true);
                            return;
                        }

                        _session.OnPacket(packet);
                        break;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (WebSocketException ex) when (ex.WebSocketErrorCode == WebSocketError.ConnectionClosedPrematurely)
        {
            _session.Close(EngineCloseReason.TransportClose, "connection closed without a close frame", discard: true);
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or InvalidOperationException)
        {
            _session.Close(EngineCloseReason.TransportError, ex.Message, discard: true);
        }
    }

    private async Task WriteLoopAsync()
    {
        var queue = _session.Queue;
        try
        {
            while (await queue.WaitToReadAsync(_session.Aborted))
            {
                while (!_session.Discarded && queue.TryRead(out var packet))
                {
                    _session.OnDequeued(packet);
                    if (packet.Type == EnginePacketType.Close)
                    {
                        await CloseQuietlyAsync(WebSocketCloseStatus.NormalClosure);
                        _session.Finish();
                        return;
                    }

                    if (packet.Type == EnginePacketType.Noop)
                    {
                        continue; // noops only end waiting polls
                    }

                    var type = packet.IsBinary ? WebSocketMessageType.Binary : WebSocketMessageType.Text;
                    await _socket.SendAsync(packet.Bytes, type, endOfMessage: true, _session.Aborted);
                }

                if (_session.Discarded)
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or InvalidOperationException)
        {
            _session.Close(EngineCloseReason.TransportError, ex.Message, discard: true);
        }

        await CloseQuietlyAsync(WebSocketCloseStatus.NormalClosure);
    }

    private async Task CloseQuietlyAsync(WebSocketCloseStatus status)
    {
        if (_socket.State is not (WebSocketState.Open or WebSocketState.CloseReceived))
        {
            return;
        }

        try
        {
            using var cts = new CancellationTokenSource(1000);
            await _socket.CloseOutputAsync(status, null, cts.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or WebSocketException or IOException or InvalidOperationException)
        {
            _socket.Abort();
        }
    }

    private enum MessageKind
    {
        Text,
        Binary,
        Close,
        TooLarge,
    }

    private readonly record struct Message(MessageKind Kind, string? Text = null, byte[]? Binary = null);

    private async Task<Message> ReceiveAsync(CancellationToken cancellationToken)
    {
        // wait for data with a zero-byte read: an idle connection holds no receive buffer
        var ready = await _socket.ReceiveAsync(Memory<byte>.Empty, cancellationToken);
        if (ready.MessageType == WebSocketMessageType.Close)
        {
            return new Message(MessageKind.Close);
        }

        var buffer = ArrayPool<byte>.Shared.Rent(ReceiveChunk);
        ArrayBufferWriter<byte>? large = null;
        try
        {
            while (true)
            {
                var result = await _socket.ReceiveAsync(buffer.AsMemory(), cancellationToken);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return new Message(MessageKind.Close);
                }

                if (result.EndOfMessage && large is null)
                {
                    return Decode(result.MessageType, buffer.AsSpan(0, result.Count));
                }

                large ??= new ArrayBufferWriter<byte>(ReceiveChunk * 2);
                large.Write(buffer.AsSpan(0, result.Count));
                if (large.WrittenCount > _maxPayload)
                {
                    return new Message(MessageKind.TooLarge);
                }

                if (result.EndOfMessage)
                {
                    return Decode(result.MessageType, large.WrittenSpan);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private Message Decode(WebSocketMessageType type, ReadOnlySpan<byte> data)
    {
        if (data.Length > _maxPayload)
        {
            return new Message(MessageKind.TooLarge);
        }

        return type == WebSocketMessageType.Binary
            ? new Message(MessageKind.Binary, Binary: data.ToArray())
            : new Message(MessageKind.Text, Text: Encoding.UTF8.GetString(data));
    }
}

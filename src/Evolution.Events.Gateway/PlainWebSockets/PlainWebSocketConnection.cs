using System.Net.WebSockets;
using Evolution.Events.EngineIO;
using Evolution.Events.EngineIO.Protocol;

namespace Evolution.Events.Gateway.PlainWebSockets;

/// <summary>
/// One accepted plain-WebSocket client: a bounded outbound queue (WEBSOCKET_SEND_QUEUE messages and
/// WEBSOCKET_SEND_QUEUE_BYTES bytes) drained by its own writer loop, every queued message up to a batch in one
/// write, and a reader loop that discards client text (bounded by WEBSOCKET_MAX_PAYLOAD). Enqueueing never
/// blocks; when the queue is full the hub aborts the connection. A ping every 25 s keeps it alive.
/// </summary>
public sealed class PlainWebSocketConnection
{
    private static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(2);

    /// <summary>How often an idle connection is pinged (proxies close silent connections).</summary>
    internal static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(25);

    private QueuedWebSocket? _socket;
    private readonly OutboundQueue _queue;
    private readonly CancellationTokenSource _cts = new();
    private readonly int _maxPayload;
    private readonly Lock _reasonLock = new();
    private volatile bool _stopWriting;
    private volatile bool _connectionLost; // a read or write failed: no close frame is sent
    private string? _reason;
    private WebSocketCloseStatus _closeStatus = WebSocketCloseStatus.NormalClosure;

    public PlainWebSocketConnection(long id, PlainSubscription subscription,
        string remoteAddress, int queueLimit, int maxPayload, long queueBytes = 8L * 1024 * 1024)
    {
        Id = id;
        Subscription = subscription;
        RemoteAddress = remoteAddress;
        QueueLimit = queueLimit;
        QueueBytes = queueBytes;
        _maxPayload = maxPayload;
        _queue = new OutboundQueue(queueLimit, queueBytes);
    }

    public long Id { get; }

    public PlainSubscription Subscription { get; }

    public string RemoteAddress { get; }

    /// <summary>Most messages queued (WEBSOCKET_SEND_QUEUE).</summary>
    public int QueueLimit { get; }

    /// <summary>Most bytes queued (WEBSOCKET_SEND_QUEUE_BYTES).</summary>
    public long QueueBytes { get; }

    /// <summary>The outbound queue (for tests).</summary>
    internal OutboundQueue Queue => _queue;

    /// <summary>Queues a frame; false when the queue is full or the connection is closing.</summary>
    public bool TryEnqueue(ReadOnlyMemory<byte> frame) => _queue.TryEnqueue(OutboundPacket.PlainText(frame));

    /// <summary>Graceful close: flush what is queued, then send a close frame with this reason.</summary>
    public void Close(WebSocketCloseStatus status, string reason)
    {
        SetReason(status, reason);
        _queue.Complete();
    }

    /// <summary>Immediate close for a client that cannot keep up.</summary>
    public void Abort(string reason)
    {
        SetReason(WebSocketCloseStatus.PolicyViolation, reason);
        _stopWriting = true;
        _queue.Complete();
        _cts.Cancel();
        _socket?.Abort();
    }

    /// <summary>
    /// Serves the accepted socket until the connection ends; returns the reason it ended. Frames queued
    /// between registration and the upgrade are sent first.
    /// </summary>
    internal async Task<string> RunAsync(QueuedWebSocket socket, CancellationToken requestAborted)
    {
        _socket = socket;
        if (_cts.IsCancellationRequested)
        {
            socket.Abort();
            return _reason ?? "closed";
        }
        await using var registration = requestAborted.Register(() => Abort("connection aborted"));
        var writer = WriteLoopAsync();
        var reader = ReadLoopAsync();
        var keepAlive = KeepAliveLoopAsync();
        await Task.WhenAny(writer, reader);
        _stopWriting = true;
        _queue.Complete();
        await WaitOrAbortAsync(writer);
        await SendCloseAsync();
        await WaitOrAbortAsync(reader);
        await _cts.CancelAsync();
        await keepAlive;
        socket.Complete();
        return _reason ?? "closed";
    }

    private async Task WriteLoopAsync()
    {
        try
        {
            await _socket!.SendQueueAsync(_queue, () => _stopWriting);
        }
        catch (Exception ex) when (IsConnectionError(ex))
        {
            _connectionLost = true;
            SetReason(WebSocketCloseStatus.EndpointUnavailable, $"send failed: {ex.Message}");
        }
    }

    private async Task ReadLoopAsync()
    {
        try
        {
            while (true)
            {
                switch (await _socket!.ReceiveAsync())
                {
                    case WebSocketReceiveKind.Message:
                        continue; // client messages are not part of the contract: read and dropped
                    case WebSocketReceiveKind.Close:
                        SetReason(WebSocketCloseStatus.NormalClosure, "client closed the connection");
                        return;
                    case WebSocketReceiveKind.TooLarge:
                        SetReason(WebSocketCloseStatus.MessageTooBig,
                            $"client message larger than WEBSOCKET_MAX_PAYLOAD ({_maxPayload} bytes)");
                        return;
                    case WebSocketReceiveKind.InvalidUtf8:
                        SetReason(WebSocketCloseStatus.InvalidPayloadData, "client text message is not valid UTF-8");
                        return;
                    default:
                        SetReason(WebSocketCloseStatus.ProtocolError, "WebSocket protocol error");
                        return;
                }
            }
        }
        catch (Exception ex) when (IsConnectionError(ex))
        {
            _connectionLost = true;
            SetReason(WebSocketCloseStatus.EndpointUnavailable, $"connection lost: {ex.Message}");
        }
    }

    private async Task KeepAliveLoopAsync()
    {
        using var timer = new PeriodicTimer(KeepAlive);
        try
        {
            while (await timer.WaitForNextTickAsync(_cts.Token))
                await _socket!.PingAsync(_cts.Token);
        }
        catch (Exception ex) when (IsConnectionError(ex))
        {
            // the connection ends; its loops report why
        }
    }

    private async Task SendCloseAsync()
    {
        if (_cts.IsCancellationRequested || _connectionLost)
            return; // aborted, or the connection failed (reset by the peer, mostly): a close frame would only throw
        using var timeout = new CancellationTokenSource(CloseTimeout);
        try
        {
            var description = _reason is { Length: > 120 } r ? r[..120] : _reason;
            await _socket!.CloseAsync(_closeStatus, description, timeout.Token);
        }
        catch (Exception ex) when (IsConnectionError(ex))
        {
            _socket!.Abort();
        }
    }

    private async Task WaitOrAbortAsync(Task loop)
    {
        if (await Task.WhenAny(loop, Task.Delay(CloseTimeout)) != loop)
        {
            await _cts.CancelAsync();
            _socket!.Abort();
            await loop;
        }
    }

    private static bool IsConnectionError(Exception ex) =>
        ex is IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException;

    private void SetReason(WebSocketCloseStatus status, string reason)
    {
        lock (_reasonLock)
        {
            if (_reason is not null)
                return;
            _reason = reason;
            _closeStatus = status;
        }
    }
}

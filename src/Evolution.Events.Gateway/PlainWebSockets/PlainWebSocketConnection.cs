using System.Buffers;
using System.Net.WebSockets;
using System.Threading.Channels;

namespace Evolution.Events.Gateway.PlainWebSockets;

/// <summary>
/// One accepted plain-WebSocket client: a bounded outbound queue drained by its own writer loop, and a
/// reader loop that discards client text (bounded by WEBSOCKET_MAX_PAYLOAD). Enqueueing never blocks;
/// when the queue is full the hub aborts the connection.
/// </summary>
public sealed class PlainWebSocketConnection
{
    private static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(2);
    private WebSocket? _socket;
    private readonly Channel<ReadOnlyMemory<byte>> _queue;
    private readonly CancellationTokenSource _cts = new();
    private readonly int _maxPayload;
    private readonly Lock _reasonLock = new();
    private volatile bool _stopWriting;
    private string? _reason;
    private WebSocketCloseStatus _closeStatus = WebSocketCloseStatus.NormalClosure;

    public PlainWebSocketConnection(long id, PlainSubscription subscription,
        string remoteAddress, int queueLimit, int maxPayload)
    {
        Id = id;
        Subscription = subscription;
        RemoteAddress = remoteAddress;
        QueueLimit = queueLimit;
        _maxPayload = maxPayload;
        _queue = Channel.CreateBounded<ReadOnlyMemory<byte>>(new BoundedChannelOptions(queueLimit)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    public long Id { get; }

    public PlainSubscription Subscription { get; }

    public string RemoteAddress { get; }

    public int QueueLimit { get; }

    /// <summary>Queues a frame; false when the queue is full or the connection is closing.</summary>
    public bool TryEnqueue(ReadOnlyMemory<byte> frame) => _queue.Writer.TryWrite(frame);

    /// <summary>Graceful close: flush what is queued, then send a close frame with this reason.</summary>
    public void Close(WebSocketCloseStatus status, string reason)
    {
        SetReason(status, reason);
        _queue.Writer.TryComplete();
    }

    /// <summary>Immediate close for a client that cannot keep up.</summary>
    public void Abort(string reason)
    {
        SetReason(WebSocketCloseStatus.PolicyViolation, reason);
        _stopWriting = true;
        _queue.Writer.TryComplete();
        _cts.Cancel();
        _socket?.Abort();
    }

    /// <summary>
    /// Serves the accepted socket until the connection ends; returns the reason it ended. Frames queued
    /// between registration and the upgrade are sent first.
    /// </summary>
    public async Task<string> RunAsync(WebSocket socket, CancellationToken requestAborted)
    {
        _socket = socket;
        if (_cts.IsCancellationRequested)
            return _reason ?? "closed";
        await using var registration = requestAborted.Register(() => Abort("connection aborted"));
        var writer = WriteLoopAsync();
        var reader = ReadLoopAsync();
        await Task.WhenAny(writer, reader);
        _stopWriting = true;
        _queue.Writer.TryComplete();
        await WaitOrAbortAsync(writer);
        await SendCloseAsync();
        await WaitOrAbortAsync(reader);
        return _reason ?? "closed";
    }

    private async Task WriteLoopAsync()
    {
        try
        {
            await foreach (var frame in _queue.Reader.ReadAllAsync(_cts.Token))
            {
                if (_stopWriting)
                    return;
                await _socket!.SendAsync(frame, WebSocketMessageType.Text, true, _cts.Token);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
        {
            SetReason(WebSocketCloseStatus.EndpointUnavailable, $"send failed: {ex.Message}");
        }
    }

    private async Task ReadLoopAsync()
    {
        var buffer = ArrayPool<byte>.Shared.Rent(4096);
        try
        {
            long messageLength = 0;
            while (true)
            {
                var result = await _socket!.ReceiveAsync(buffer.AsMemory(), _cts.Token);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    SetReason(WebSocketCloseStatus.NormalClosure, "client closed the connection");
                    return;
                }
                messageLength += result.Count;
                if (messageLength > _maxPayload)
                {
                    SetReason(WebSocketCloseStatus.MessageTooBig,
                        $"client message larger than WEBSOCKET_MAX_PAYLOAD ({_maxPayload} bytes)");
                    return;
                }
                if (result.EndOfMessage)
                    messageLength = 0;
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
        {
            SetReason(WebSocketCloseStatus.EndpointUnavailable, $"connection lost: {ex.Message}");
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task SendCloseAsync()
    {
        if (_socket!.State is not (WebSocketState.Open or WebSocketState.CloseReceived))
            return;
        using var timeout = new CancellationTokenSource(CloseTimeout);
        try
        {
            var description = _reason is { Length: > 120 } r ? r[..120] : _reason;
            await _socket.CloseOutputAsync(_closeStatus, description, timeout.Token);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
        {
            _socket.Abort();
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

using System.Buffers;
using System.Net.WebSockets;
using Evolution.Events.EngineIO.Protocol;
using Evolution.Events.EngineIO.Transports;
using Microsoft.AspNetCore.Http;

namespace Evolution.Events.EngineIO;

/// <summary>What <see cref="QueuedWebSocket.ReceiveAsync"/> got from the client.</summary>
internal enum WebSocketReceiveKind
{
    /// <summary>A whole text or binary message.</summary>
    Message,

    /// <summary>The client's close frame, or the end of the connection.</summary>
    Close,

    /// <summary>A message larger than the maximum payload: close with 1009.</summary>
    TooLarge,

    /// <summary>A framing error: close with 1002.</summary>
    ProtocolError,

    /// <summary>A text message that is not UTF-8, or a compressed message that does not inflate: close with 1007.</summary>
    InvalidUtf8,
}

/// <summary>
/// A plain WebSocket (no Engine.IO protocol on top) over the engine's RFC 6455 framing, for a server that
/// pushes messages from an <see cref="OutboundQueue"/>: every queued message up to a 64 KiB batch leaves in one
/// write, an idle connection holds no buffer, client pings are answered. The Engine.IO WebSocket transport
/// is built on the same framing.
/// </summary>
internal sealed class QueuedWebSocket
{
    private const int DrainChunk = 64;
    private readonly Action _abort;
    private readonly WebSocketFrameWriter _writer;
    private readonly WebSocketFrameReader _reader;
    private int _closeSent;

    private QueuedWebSocket(Action abort, Stream stream, int maxPayload, WebSocketDeflate? deflate)
    {
        _abort = abort;
        _writer = new WebSocketFrameWriter(stream);
        _reader = new WebSocketFrameReader(stream, _writer, maxPayload, deflate);
    }

    /// <summary>Whether the handshake negotiated <c>permessage-deflate</c>.</summary>
    public bool IsCompressed => _reader.Deflate is not null;

    /// <summary>
    /// <see cref="EngineClock.Milliseconds"/> when the write now under way started (0: none): a client that stops
    /// reading shows here.
    /// </summary>
    public long WritingSince => _writer.WritingSince;

    /// <summary>
    /// Completes the opening handshake (HTTP/1.1 upgrade or HTTP/2 extended CONNECT). Returns null after
    /// answering 400 to a malformed one (check the request first with ASP.NET Core's <c>IsWebSocketRequest</c>).
    /// </summary>
    /// <param name="context">The upgrade request; aborting it ends the connection at once.</param>
    /// <param name="maxPayload">Largest message the client may send (bytes, decompressed); a larger one reads as <see cref="WebSocketReceiveKind.TooLarge"/>.</param>
    /// <param name="perMessageDeflate">When set, a client's <c>permessage-deflate</c> offer is accepted (null: never).</param>
    public static async Task<QueuedWebSocket?> AcceptAsync(HttpContext context, int maxPayload, PerMessageDeflateOptions? perMessageDeflate = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxPayload);
        perMessageDeflate?.Validate();
        if (await WebSocketHandshake.AcceptAsync(context, perMessageDeflate).ConfigureAwait(false) is not { } accepted)
        {
            return null;
        }

        // on the raw path (the request detached from its connection) hold the connection, never the request
        var abort = context.Features.Get<Hosting.IConnectionDetachFeature>()?.AbortConnection ?? context.Abort;
        return new QueuedWebSocket(abort, accepted.Stream, maxPayload, accepted.Deflate);
    }

    /// <summary>
    /// The write loop: sends what <paramref name="queue"/> holds, as text frames (binary for
    /// <see cref="OutboundPacket.IsBinary"/> packets), batched, until the queue is completed and drained or
    /// <paramref name="stop"/> returns true. Throws what the connection throws (IOException when it is lost).
    /// </summary>
    public async Task SendQueueAsync(OutboundQueue queue, Func<bool>? stop = null)
    {
        ArgumentNullException.ThrowIfNull(queue);
        while (await queue.WaitToReadAsync(inlineAfterCork: true).ConfigureAwait(false))
        {
            if (stop?.Invoke() == true)
            {
                return;
            }

            await SendBatchAsync(queue).ConfigureAwait(false);
        }
    }

    /// <summary>Reads the next message (its text or bytes are not kept: this socket only pushes), or why the reading ended.</summary>
    public async ValueTask<WebSocketReceiveKind> ReceiveAsync()
    {
        var message = await _reader.ReadAsync().ConfigureAwait(false);
        return message.Kind switch
        {
            WebSocketFrameReader.Kind.Text or WebSocketFrameReader.Kind.Binary => WebSocketReceiveKind.Message,
            WebSocketFrameReader.Kind.Close => WebSocketReceiveKind.Close,
            WebSocketFrameReader.Kind.TooLarge => WebSocketReceiveKind.TooLarge,
            WebSocketFrameReader.Kind.InvalidUtf8 or WebSocketFrameReader.Kind.InvalidCompressed => WebSocketReceiveKind.InvalidUtf8,
            _ => WebSocketReceiveKind.ProtocolError,
        };
    }

    /// <summary>Sends a ping (a keep-alive: the client answers it with a pong, which is ignored).</summary>
    public ValueTask PingAsync(CancellationToken cancellationToken) =>
        _writer.WriteFrameAsync(WebSocketFrameWriter.Opcode.Ping, ReadOnlyMemory<byte>.Empty, cancellationToken);

    /// <summary>Sends the close frame (once: later calls do nothing); the reason is cut to fit a control frame.</summary>
    public async ValueTask CloseAsync(WebSocketCloseStatus status, string? reason, CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _closeSent, 1) == 1)
        {
            return;
        }

        await _writer.WriteCloseAsync(status, reason, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Ends the connection at once (pending reads and writes fail).</summary>
    public void Abort() => _abort();

    /// <summary>Returns the receive buffer, if one is held; call once the reading has ended.</summary>
    public void Complete() => _reader.Complete();

    private async ValueTask SendBatchAsync(OutboundQueue queue)
    {
        var deflate = _reader.Deflate;
        var taken = ArrayPool<OutboundPacket>.Shared.Rent(DrainChunk);
        var batch = PooledBufferWriter.Rent(WebSocketFrameWriter.BatchBufferSize(queue));
        try
        {
            while (batch.WrittenCount < WebSocketFrameWriter.BatchBytes
                && queue.TryDrain(taken.AsSpan(0, DrainChunk), WebSocketFrameWriter.BatchBytes - batch.WrittenCount) is var n and > 0)
            {
                for (var i = 0; i < n; i++)
                {
                    var packet = taken[i];
                    taken[i] = default;
                    var opcode = packet.IsBinary ? WebSocketFrameWriter.Opcode.Binary : WebSocketFrameWriter.Opcode.Text;
                    var (bytes, compressed) = deflate is null ? (packet.Bytes, false) : deflate.Prepare(packet.Bytes);
                    if (WebSocketFrameWriter.FrameSize(bytes.Length) > WebSocketFrameWriter.BatchBytes)
                    {
                        await FlushAsync(batch).ConfigureAwait(false);
                        await _writer.WriteFrameAsync(opcode, bytes, CancellationToken.None, compressed).ConfigureAwait(false);
                        continue;
                    }

                    WebSocketFrameWriter.Append(batch, opcode, bytes.Span, compressed);
                }
            }

            await FlushAsync(batch).ConfigureAwait(false);
        }
        finally
        {
            taken.AsSpan(0, DrainChunk).Clear();
            ArrayPool<OutboundPacket>.Shared.Return(taken);
            batch.Dispose();
        }
    }

    private async ValueTask FlushAsync(PooledBufferWriter batch)
    {
        if (batch.WrittenCount > 0)
        {
            await _writer.WriteAsync(batch.WrittenMemory, CancellationToken.None).ConfigureAwait(false);
            batch.Reset();
        }
    }
}

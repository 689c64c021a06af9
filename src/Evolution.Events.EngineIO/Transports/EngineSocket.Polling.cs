using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Evolution.Events.EngineIO.Protocol;
using Microsoft.AspNetCore.Http;

namespace Evolution.Events.EngineIO;

/// <summary>HTTP long-polling: a GET takes what is queued (or waits for it), a POST brings packets in.</summary>
public sealed partial class EngineSocket
{
    /// <summary>Bytes one poll response carries at most; the rest waits for the next poll.</summary>
    private const int MaxPollResponseBytes = 1 << 20;

    /// <summary>How long a poll that arrives mid-upgrade waits for the upgrade packet before its noop.</summary>
    private const int UpgradeRaceMs = 100;

    /// <summary>How long a poll that overlaps another waits to see whether its client has already given it up.</summary>
    private const int OverlapAbortWaitMs = 200;

    /// <summary>Set when a cancelled poll ended the session: the poll that was waiting then gets 400.</summary>
    private bool _refuseFinalPoll;

    /// <summary>Whether a poll request is being served now (for tests).</summary>
    internal bool IsPollWaiting => Volatile.Read(ref _pollActive) == 1;

    internal async Task HandlePollAsync(HttpContext context)
    {
        if (Interlocked.Exchange(ref _pollActive, 1) == 1)
        {
            if (await IsGivenUpAsync(context.RequestAborted))
            {
                // a poll its client cancelled, served only after the poll the client sent next: served
                // in order, it would have ended the session before that one came, which would then
                // have found no session. Same outcome here: the session ends, the waiting poll gets 400.
                Volatile.Write(ref _refuseFinalPoll, true);
                Close(EngineCloseReason.TransportClose, "poll request closed prematurely", discard: true);
                return;
            }

            await EngineHttp.WriteErrorAsync(context, EngineErrorCode.BadRequest);
            Close(EngineCloseReason.TransportError, "overlapping poll requests", discard: true);
            return;
        }

        // The request stops counting as active just before its response is written: a client may
        // send its next poll the moment the response is complete, which can be before this method
        // resumes after the write.
        var active = true;
        void Release()
        {
            active = false;
            Volatile.Write(ref _pollActive, 0);
        }

        try
        {
            if (PendingUpgrade is { } upgrade)
            {
                // a client pauses polling once it has probed: a poll now gets a noop, or a 400 if the
                // upgrade packet, already on its way, lands first
                try
                {
                    await upgrade.WaitAsync(TimeSpan.FromMilliseconds(UpgradeRaceMs), context.RequestAborted);
                }
                catch (TimeoutException)
                {
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                Release();
                if (IsWebSocket)
                {
                    await EngineHttp.WriteErrorAsync(context, EngineErrorCode.BadRequest);
                }
                else
                {
                    ForgetClosedPollIfDiscarded();
                    await EngineHttp.WritePayloadAsync(context, Protocol.ControlPayload(OutboundPacket.Noop));
                }

                return;
            }

            while (true)
            {
                bool hasData;
                try
                {
                    hasData = await _queue.WaitToReadAsync(context.RequestAborted);
                }
                catch (OperationCanceledException)
                {
                    Close(EngineCloseReason.TransportClose, "poll request closed prematurely", discard: true);
                    return;
                }

                if (Discarded || !hasData)
                {
                    ForgetClosedPollIfDiscarded();
                    Release();
                    if (Volatile.Read(ref _refuseFinalPoll))
                    {
                        await EngineHttp.WriteErrorAsync(context, EngineErrorCode.UnknownSid);
                        return;
                    }

                    await EngineHttp.WritePayloadAsync(context, Protocol.ControlPayload(FinalPollPacket));
                    return;
                }

                if (IsWebSocket)
                {
                    // upgraded while this poll waited: end it cleanly, the queue now belongs to the WebSocket
                    Release();
                    await EngineHttp.WritePayloadAsync(context, Protocol.ControlPayload(OutboundPacket.Noop));
                    return;
                }

                if (await WritePollPayloadAsync(context, Release))
                {
                    return;
                }

                // woken, but another reader had taken the packets: wait again
            }
        }
        finally
        {
            if (active)
            {
                Volatile.Write(ref _pollActive, 0);
            }
        }
    }

    /// <summary>Whether the client has closed this request, or does within a short wait.</summary>
    private static async Task<bool> IsGivenUpAsync(CancellationToken requestAborted)
    {
        try
        {
            await Task.Delay(OverlapAbortWaitMs, requestAborted);
            return false;
        }
        catch (OperationCanceledException)
        {
            return true;
        }
    }

    /// <summary>
    /// This poll, waiting when the session was discarded, is its final one: a poll that comes after
    /// it must get 400, not the noop kept for a poll that crossed a client's close packet.
    /// </summary>
    private void ForgetClosedPollIfDiscarded()
    {
        if (Discarded)
        {
            _server.ForgetClosedPoll(Id);
        }
    }

    internal async Task HandlePostAsync(HttpContext context)
    {
        if (Interlocked.Exchange(ref _postActive, 1) == 1)
        {
            await EngineHttp.WriteErrorAsync(context, EngineErrorCode.BadRequest);
            Close(EngineCloseReason.TransportError, "overlapping POST requests", discard: true);
            return;
        }

        var active = true;
        try
        {
            var body = await EngineHttp.ReadBodyAsync(context, _options.MaxPayload, Protocol.IsBinaryBody(context.Request.ContentType));
            if (body.Status != EngineHttp.BodyStatus.Ok)
            {
                var tooLarge = body.Status == EngineHttp.BodyStatus.TooLarge;
                await EngineHttp.WriteStatusAsync(context, tooLarge ? StatusCodes.Status413PayloadTooLarge : StatusCodes.Status400BadRequest);
                Close(tooLarge ? EngineCloseReason.TransportError : EngineCloseReason.TransportClose,
                    tooLarge ? "payload too large" : "POST request closed prematurely", discard: true);
                return;
            }

            var packets = new List<InboundPacket>();
            if (!Protocol.TryDecodePayload(body.Text, body.Bytes, packets, out var error))
            {
                await EngineHttp.WriteStatusAsync(context, StatusCodes.Status400BadRequest);
                Close(EngineCloseReason.ParseError, error, discard: true);
                return;
            }

            var origin = new HttpPacketOrigin(context);
            foreach (var packet in packets)
            {
                OnPacket(packet, origin);
            }

            // no longer active before the "ok" is written: the client may POST again as soon as it has it
            active = false;
            Volatile.Write(ref _postActive, 0);
            await EngineHttp.WriteOkAsync(context);
        }
        finally
        {
            if (active)
            {
                Volatile.Write(ref _postActive, 0);
            }
        }
    }

    /// <summary>Answers the poll with what is queued (up to <see cref="MaxPollResponseBytes"/>); false if nothing was.</summary>
    private async Task<bool> WritePollPayloadAsync(HttpContext context, Action release)
    {
        var packets = new List<OutboundPacket>();
        var size = 0L;
        var sawClose = false;
        var sawPing = false;
        var taken = System.Buffers.ArrayPool<OutboundPacket>.Shared.Rent(64);
        try
        {
            while (!sawClose && size < MaxPollResponseBytes
                && _queue.TryDrain(taken, (int)(MaxPollResponseBytes - size)) is var n and > 0)
            {
                for (var i = 0; i < n; i++)
                {
                    var packet = taken[i];
                    sawPing |= packet.Type == EnginePacketType.Ping;
                    packets.Add(packet);
                    size += packet.Bytes.Length + 1;
                    sawClose |= packet.Type == EnginePacketType.Close; // the last packet a queue ever holds
                }
            }
        }
        finally
        {
            taken.AsSpan().Clear();
            System.Buffers.ArrayPool<OutboundPacket>.Shared.Return(taken);
        }

        if (packets.Count == 0)
        {
            return false;
        }

        if (sawPing)
        {
            OnPingDelivered();
        }

        if (sawClose)
        {
            // finished before the answer is written: a request the client sends once it has the
            // close packet must find the session gone (400), not closing
            Finish();
        }

        // the session's protocol revision encodes the payload (revision 4: \x1e-joined, binary as b+base64;
        // revision 3: length-prefixed, or a binary payload for an XHR2 client)
        var writer = new ArrayBufferWriter<byte>((int)Math.Min(size + 16, MaxPollResponseBytes * 2L));
        var binary = Protocol.EncodePayload(packets, writer);
        release();
        await EngineHttp.WritePayloadAsync(context, writer.WrittenMemory, binary);
        return true;
    }
}

/// <summary>A polling POST as the origin of its packets: its request is copied only if a listener asks.</summary>
internal sealed class HttpPacketOrigin(HttpContext context) : IPacketOrigin
{
    private EngineRequest? _request;

    public EngineRequest Request => _request ??= EngineRequest.From(context);
}

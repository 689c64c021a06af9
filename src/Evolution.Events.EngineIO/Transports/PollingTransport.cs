using System.Buffers;
using System.Text.RegularExpressions;
using Evolution.Events.EngineIO.Protocol;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;

namespace Evolution.Events.EngineIO.Transports;

/// <summary>
/// The HTTP long-polling transport of one session (engine.io's <c>transports/polling.ts</c>, and
/// <c>polling-jsonp.ts</c> when the handshake named a JSONP callback): a GET takes what is queued (or
/// waits for it), a POST brings packets in. It owns the poll state (the active poll and POST, the
/// overlap and pending-upgrade races, the final poll of a discarded session) and the response writing
/// (payload encoding, JSONP wrapping, HTTP compression); the session keeps the queue, the heartbeat and
/// the close. Created only for a session that begins on polling: one that begins on WebSocket never has one.
/// </summary>
internal sealed partial class PollingTransport
{
    /// <summary>Bytes one poll response carries at most; the rest waits for the next poll.</summary>
    private const int MaxPollResponseBytes = 1 << 20;

    /// <summary>How long a poll that arrives mid-upgrade waits for the upgrade packet before its noop.</summary>
    private const int UpgradeRaceMs = 100;

    /// <summary>How long a poll that overlaps another waits to see whether its client has already given it up.</summary>
    private const int OverlapAbortWaitMs = 200;

    /// <summary>Most digits of a JSONP callback index (<c>j</c>).</summary>
    private const int MaxJsonpIndexDigits = 10;

    private readonly EngineSocket _session;

    /// <summary>JSONP (revision 3 only): <c>___eio[&lt;j&gt;](</c>, the head of every poll response; null for XHR polling.</summary>
    private readonly byte[]? _jsonpHead;

    private int _pollActive;
    private int _postActive;

    /// <summary>Set when a cancelled poll ended the session: the poll that was waiting then gets 400.</summary>
    private bool _refuseFinalPoll;

    public PollingTransport(EngineSocket session, string? jsonpIndex)
    {
        _session = session;
        _jsonpHead = jsonpIndex is null ? null : Jsonp.Head(jsonpIndex);
    }

    /// <summary>Whether a poll request is being served now (for tests).</summary>
    public bool IsPollWaiting => Volatile.Read(ref _pollActive) == 1;

    /// <summary>Whether this is JSONP polling (the handshake named a callback index <c>j</c>).</summary>
    public bool IsJsonp => _jsonpHead is not null;

    /// <summary>
    /// The JSONP callback index a polling handshake names, if any: null without <c>j</c>. A <c>j</c> is refused
    /// (<paramref name="valid"/> false) unless it is 1 to 10 digits and the revision is 3 (JSONP is an
    /// Engine.IO 3 transport; engine.io strips anything but digits, which leaves a callback the client lacks).
    /// </summary>
    public static string? JsonpIndex(HttpRequest request, EngineProtocol protocol, out bool valid)
    {
        valid = true;
        if (!request.Query.TryGetValue("j", out var values))
        {
            return null;
        }

        var j = values.ToString();
        valid = protocol.Revision == 3 && values.Count == 1 && j.Length is > 0 and <= MaxJsonpIndexDigits && j.All(char.IsAsciiDigit);
        return valid ? j : null;
    }

    /// <summary>
    /// The noop for a poll that crossed the close packet of a session that is gone (see <see cref="ClosedPollTombstones"/>):
    /// JSONP-wrapped when the request names a valid callback.
    /// </summary>
    public static Task WriteDetachedNoopAsync(HttpContext context, EngineProtocol protocol, EngineIOOptions options)
    {
        var payload = protocol.ControlPayload(OutboundPacket.Noop);
        var head = JsonpIndex(context.Request, protocol, out _) is { } j ? Jsonp.Head(j) : null;
        return WriteResponseAsync(context, payload, binary: false, head, options.HttpCompression);
    }

    /// <summary>engine.io's <c>onRequest</c>: a GET polls, a POST brings data, anything else is a bad request.</summary>
    public Task HandleRequestAsync(HttpContext context)
    {
        if (HttpMethods.IsGet(context.Request.Method))
        {
            return HandlePollAsync(context);
        }

        if (HttpMethods.IsPost(context.Request.Method))
        {
            return HandlePostAsync(context);
        }

        return EngineHttp.WriteErrorAsync(context, EngineErrorCode.BadRequest);
    }

    public async Task HandlePollAsync(HttpContext context)
    {
        var session = _session;
        if (Interlocked.Exchange(ref _pollActive, 1) == 1)
        {
            if (await IsGivenUpAsync(context.RequestAborted))
            {
                // a poll its client cancelled, served only after the poll the client sent next: served
                // in order, it would have ended the session before that one came, which would then
                // have found no session. Same outcome here: the session ends, the waiting poll gets 400.
                Volatile.Write(ref _refuseFinalPoll, true);
                session.Close(EngineCloseReason.TransportClose, "poll request closed prematurely", discard: true);
                return;
            }

            await EngineHttp.WriteErrorAsync(context, EngineErrorCode.BadRequest);
            session.Close(EngineCloseReason.TransportError, "overlapping poll requests", discard: true);
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
            if (session.PendingUpgrade is { } upgrade)
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
                if (session.IsWebSocket)
                {
                    await EngineHttp.WriteErrorAsync(context, EngineErrorCode.BadRequest);
                }
                else
                {
                    ForgetClosedPollIfDiscarded();
                    await WriteControlAsync(context, OutboundPacket.Noop);
                }

                return;
            }

            while (true)
            {
                bool hasData;
                try
                {
                    hasData = await session.Queue.WaitToReadAsync(context.RequestAborted);
                }
                catch (OperationCanceledException)
                {
                    session.Close(EngineCloseReason.TransportClose, "poll request closed prematurely", discard: true);
                    return;
                }

                if (session.Discarded || !hasData)
                {
                    ForgetClosedPollIfDiscarded();
                    Release();
                    if (Volatile.Read(ref _refuseFinalPoll))
                    {
                        await EngineHttp.WriteErrorAsync(context, EngineErrorCode.UnknownSid);
                        return;
                    }

                    await WriteControlAsync(context, session.FinalPollPacket);
                    return;
                }

                if (session.IsWebSocket)
                {
                    // upgraded while this poll waited: end it cleanly, the queue now belongs to the WebSocket
                    Release();
                    await WriteControlAsync(context, OutboundPacket.Noop);
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
        if (_session.Discarded)
        {
            _session.Server.ForgetClosedPoll(_session.Id);
        }
    }

    public async Task HandlePostAsync(HttpContext context)
    {
        var session = _session;
        if (Interlocked.Exchange(ref _postActive, 1) == 1)
        {
            await EngineHttp.WriteErrorAsync(context, EngineErrorCode.BadRequest);
            session.Close(EngineCloseReason.TransportError, "overlapping POST requests", discard: true);
            return;
        }

        var active = true;
        try
        {
            var protocol = session.Protocol;
            var binaryBody = !IsJsonp && protocol.IsBinaryBody(context.Request.ContentType);
            var body = await EngineHttp.ReadBodyAsync(context, session.Options.MaxPayload, binaryBody);
            if (body.Status != EngineHttp.BodyStatus.Ok)
            {
                var tooLarge = body.Status == EngineHttp.BodyStatus.TooLarge;
                await EngineHttp.WriteStatusAsync(context, tooLarge ? StatusCodes.Status413PayloadTooLarge : StatusCodes.Status400BadRequest);
                session.Close(tooLarge ? EngineCloseReason.TransportError : EngineCloseReason.TransportClose,
                    tooLarge ? "payload too large" : "POST request closed prematurely", discard: true);
                return;
            }

            var text = body.Text;
            if (IsJsonp && !Jsonp.TryReadForm(text, out text))
            {
                await EngineHttp.WriteStatusAsync(context, StatusCodes.Status400BadRequest);
                session.Close(EngineCloseReason.ParseError, "JSONP POST without a single d field", discard: true);
                return;
            }

            var packets = new List<InboundPacket>();
            if (!protocol.TryDecodePayload(text, body.Bytes, packets, out var error))
            {
                await EngineHttp.WriteStatusAsync(context, StatusCodes.Status400BadRequest);
                session.Close(EngineCloseReason.ParseError, error, discard: true);
                return;
            }

            var origin = new HttpPacketOrigin(context);
            foreach (var packet in packets)
            {
                session.OnPacket(packet, origin);
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
        var session = _session;
        var packets = new List<OutboundPacket>();
        var size = 0L;
        var sawClose = false;
        var sawPing = false;
        var taken = ArrayPool<OutboundPacket>.Shared.Rent(64);
        try
        {
            while (!sawClose && size < MaxPollResponseBytes
                && session.Queue.TryDrain(taken, (int)(MaxPollResponseBytes - size)) is var n and > 0)
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
            ArrayPool<OutboundPacket>.Shared.Return(taken);
        }

        if (packets.Count == 0)
        {
            return false;
        }

        if (sawPing)
        {
            session.OnPingDelivered();
        }

        if (sawClose)
        {
            // finished before the answer is written: a request the client sends once it has the
            // close packet must find the session gone (400), not closing
            session.Finish();
        }

        // the session's protocol revision encodes the payload (revision 4: \x1e-joined, binary as b+base64;
        // revision 3: length-prefixed, or a binary payload for an XHR2 client)
        var writer = new ArrayBufferWriter<byte>((int)Math.Min(size + 16, MaxPollResponseBytes * 2L));
        var binary = session.Protocol.EncodePayload(packets, writer);
        release();
        await WriteResponseAsync(context, writer.WrittenMemory, binary, _jsonpHead, session.Options.HttpCompression);
        return true;
    }

    private Task WriteControlAsync(HttpContext context, in OutboundPacket packet) =>
        WriteResponseAsync(context, _session.Protocol.ControlPayload(packet), binary: false, _jsonpHead, _session.Options.HttpCompression);

    /// <summary>
    /// engine.io's <c>doWrite</c>: the poll response, JSONP-wrapped when <paramref name="jsonpHead"/> is set, compressed
    /// when <paramref name="compression"/> allows (the body is at least its threshold and the client accepts gzip or deflate).
    /// </summary>
    private static async Task WriteResponseAsync(HttpContext context, ReadOnlyMemory<byte> payload, bool binary, byte[]? jsonpHead,
        HttpCompressionOptions? compression)
    {
        PooledBufferWriter? wrapped = null;
        try
        {
            string? contentType = null;
            if (jsonpHead is not null)
            {
                wrapped = new PooledBufferWriter(jsonpHead.Length + payload.Length + 16);
                Jsonp.Wrap(jsonpHead, payload.Span, wrapped);
                payload = wrapped.WrittenMemory;
                contentType = Jsonp.ContentType;
            }

            var encoding = compression is not null && payload.Length >= compression.Threshold
                ? HttpCompression.Negotiate(context.Request.Headers.AcceptEncoding.ToString())
                : HttpCompression.Encoding.None;
            if (encoding == HttpCompression.Encoding.None)
            {
                await EngineHttp.WritePayloadAsync(context, payload, binary, contentType);
            }
            else
            {
                await HttpCompression.WritePayloadAsync(context, payload, binary, contentType, encoding);
            }
        }
        finally
        {
            wrapped?.Dispose();
        }
    }

    /// <summary>JSONP polling (engine.io's <c>polling-jsonp.ts</c>), for Engine.IO 3 clients with <c>forceJSONP</c>.</summary>
    private static partial class Jsonp
    {
        public const string ContentType = "text/javascript; charset=UTF-8";

        private static readonly byte[] Foot = ");"u8.ToArray();

        public static byte[] Head(string index) => System.Text.Encoding.ASCII.GetBytes("___eio[" + index + "](");

        /// <summary>
        /// <c>head + JSON.stringify(payload) + ");"</c>, with U+2028 and U+2029 escaped too (valid JavaScript, not only
        /// valid JSON). The payload is UTF-8 text: only quotes, backslashes, control characters and those two are escaped.
        /// </summary>
        public static void Wrap(byte[] head, ReadOnlySpan<byte> payload, IBufferWriter<byte> writer)
        {
            writer.Write(head);
            writer.Write("\""u8);
            var start = 0;
            for (var i = 0; i < payload.Length; i++)
            {
                var b = payload[i];
                ReadOnlySpan<byte> escape;
                var skip = 1;
                if (b == (byte)'"')
                {
                    escape = "\\\""u8;
                }
                else if (b == (byte)'\\')
                {
                    escape = "\\\\"u8;
                }
                else if (b < 0x20)
                {
                    escape = b switch
                    {
                        (byte)'\n' => "\\n"u8,
                        (byte)'\r' => "\\r"u8,
                        (byte)'\t' => "\\t"u8,
                        (byte)'\b' => "\\b"u8,
                        (byte)'\f' => "\\f"u8,
                        _ => default,
                    };
                    if (escape.IsEmpty)
                    {
                        Flush(payload, start, i, writer);
                        WriteUnicodeEscape(b, writer);
                        start = i + 1;
                        continue;
                    }
                }
                else if (b == 0xE2 && i + 2 < payload.Length && payload[i + 1] == 0x80 && payload[i + 2] is 0xA8 or 0xA9)
                {
                    escape = payload[i + 2] == 0xA8 ? "\\u2028"u8 : "\\u2029"u8;
                    skip = 3;
                }
                else
                {
                    continue;
                }

                Flush(payload, start, i, writer);
                writer.Write(escape);
                i += skip - 1;
                start = i + 1;
            }

            Flush(payload, start, payload.Length, writer);
            writer.Write("\""u8);
            writer.Write(Foot);
        }

        private static void Flush(ReadOnlySpan<byte> payload, int start, int end, IBufferWriter<byte> writer)
        {
            if (end > start)
            {
                writer.Write(payload[start..end]);
            }
        }

        private static void WriteUnicodeEscape(byte b, IBufferWriter<byte> writer)
        {
            const string hex = "0123456789abcdef";
            writer.Write([(byte)'\\', (byte)'u', (byte)'0', (byte)'0', (byte)hex[b >> 4], (byte)hex[b & 0xF]]);
        }

        /// <summary>
        /// The payload of a JSONP POST: the form field <c>d</c> (exactly one), with the client's newline escaping undone
        /// as engine.io does: <c>\n</c> becomes a newline, <c>\\n</c> stays, then <c>\\\\n</c> becomes <c>\\n</c>.
        /// </summary>
        public static bool TryReadForm(string? body, out string? payload)
        {
            payload = null;
            var form = QueryHelpers.ParseNullableQuery(body ?? string.Empty);
            if (form is null || !form.TryGetValue("d", out var d) || d.Count != 1)
            {
                return false;
            }

            var data = SlashNewline().Replace(d.ToString(), static m => m.Groups[1].Success ? m.Value : "\n");
            payload = DoubleSlashNewline().Replace(data, "\\n");
            return true;
        }

        [GeneratedRegex(@"(\\)?\\n")]
        private static partial Regex SlashNewline();

        [GeneratedRegex(@"\\\\n")]
        private static partial Regex DoubleSlashNewline();
    }
}

/// <summary>A polling POST as the origin of its packets: its request is copied only if a listener asks.</summary>
internal sealed class HttpPacketOrigin(HttpContext context) : IPacketOrigin
{
    private EngineRequest? _request;

    public EngineRequest Request => _request ??= EngineRequest.From(context);
}

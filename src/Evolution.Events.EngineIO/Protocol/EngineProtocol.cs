using System.Buffers;
using System.Buffers.Text;
using System.Text;
using System.Text.Json;

namespace Evolution.Events.EngineIO.Protocol;

/// <summary>
/// What differs between Engine.IO protocol revisions, for one session (or one of its transports): the
/// handshake's shape, who pings, the polling payload encoding, and how a binary message is framed on a
/// WebSocket. Packets are queued and written the same way whatever the revision; only their encoding
/// at the edge differs. <see cref="V4"/> is the default; revision 3 (Socket.IO 2.x clients) exists only
/// with <see cref="EngineIOOptions.AllowEIO3"/>.
/// </summary>
internal abstract class EngineProtocol
{
    public static EngineProtocol V4 { get; } = new EngineProtocol4();

    /// <summary>Revision 3 for a client that takes binary (XHR2 polling payloads, binary WebSocket frames).</summary>
    public static EngineProtocol V3 { get; } = new EngineProtocol3(supportsBinary: true);

    /// <summary>Revision 3 for a client that asked for base64 (<c>b64=1</c>): binary messages as <c>b4…</c> text.</summary>
    public static EngineProtocol V3Base64 { get; } = new EngineProtocol3(supportsBinary: false);

    /// <summary>3 or 4, as in engine.io's <c>socket.protocol</c>.</summary>
    public abstract int Revision { get; }

    /// <summary>Whether the server pings (revision 4) or the client does and the server answers (revision 3).</summary>
    public abstract bool ServerPings { get; }

    /// <summary>
    /// The revision an <c>EIO</c> query value asks for: exactly <c>4</c>, or exactly <c>3</c> when allowed. Anything
    /// else (missing, <c>abc</c>, <c>3</c> not allowed) is null: unlike engine.io, which takes any value but 4 as 3, a
    /// bad value is refused even with revision 3 allowed, so the v4 suite's "invalid EIO" test still passes.
    /// </summary>
    public static EngineProtocol? For(string eio, bool allowEIO3, bool base64) => eio switch
    {
        "4" => V4,
        "3" when allowEIO3 => base64 ? V3Base64 : V3,
        _ => null,
    };

    /// <summary>engine.io's <c>supportsBinary = !req._query.b64</c>: any non-empty <c>b64</c> asks for base64.</summary>
    public static bool AsksBase64(Microsoft.AspNetCore.Http.HttpRequest request) =>
        !string.IsNullOrEmpty(request.Query["b64"].ToString());

    /// <summary>This revision for a transport whose request asked (or not) for base64.</summary>
    public abstract EngineProtocol WithBase64(bool base64);

    /// <summary>The JSON of the open packet.</summary>
    public abstract string HandshakeJson(string sid, bool offerWebSocket, EngineIOOptions options);

    /// <summary>
    /// Encodes a poll response carrying <paramref name="packets"/>; returns whether the body is binary
    /// (<c>application/octet-stream</c>) rather than text.
    /// </summary>
    public abstract bool EncodePayload(IReadOnlyList<OutboundPacket> packets, ArrayBufferWriter<byte> writer);

    /// <summary>A poll response made of one control packet (a noop, a close), cached.</summary>
    public abstract ReadOnlyMemory<byte> ControlPayload(in OutboundPacket packet);

    /// <summary>Whether a POST body of this content type is read as bytes (revision 3's binary payloads).</summary>
    public abstract bool IsBinaryBody(string? contentType);

    /// <summary>Decodes a polling POST body (text, or bytes when <see cref="IsBinaryBody"/>). Stops at the first bad packet.</summary>
    public abstract bool TryDecodePayload(string? text, byte[]? bytes, List<InboundPacket> packets, out string? error);

    /// <summary>Decodes a WebSocket text message.</summary>
    public abstract bool TryParseText(string text, out InboundPacket packet, out string? error);

    /// <summary>Decodes a WebSocket binary message.</summary>
    public abstract bool TryParseBinary(byte[] data, out InboundPacket packet, out string? error);

    /// <summary>
    /// The WebSocket message for a queued binary packet: whether it goes as a text frame, and its bytes (the
    /// queued bytes themselves in revision 4, never copied).
    /// </summary>
    public abstract (bool Text, ReadOnlyMemory<byte> Bytes) WebSocketBinary(in OutboundPacket packet);

    private protected static bool Fail(string message, out InboundPacket packet, out string? error)
    {
        packet = default;
        error = message;
        return false;
    }

    private protected static string Truncate(string s) => s.Length <= 16 ? s : s[..16] + "…";
}

/// <summary>Engine.IO 4: packets joined by <c>\x1e</c>, binary as <c>b</c> + base64 in polling, raw binary frames, server pings.</summary>
internal sealed class EngineProtocol4 : EngineProtocol
{
    public override int Revision => 4;

    public override bool ServerPings => true;

    public override EngineProtocol WithBase64(bool base64) => this;

    public override string HandshakeJson(string sid, bool offerWebSocket, EngineIOOptions o) =>
        $"{{\"sid\":{JsonSerializer.Serialize(sid)},\"upgrades\":{(offerWebSocket ? "[\"websocket\"]" : "[]")},\"pingInterval\":{o.PingInterval},\"pingTimeout\":{o.PingTimeout},\"maxPayload\":{o.MaxPayload}}}";

    public override bool EncodePayload(IReadOnlyList<OutboundPacket> packets, ArrayBufferWriter<byte> writer)
    {
        for (var i = 0; i < packets.Count; i++)
        {
            if (i > 0)
            {
                writer.Write([(byte)EnginePacketParser.RecordSeparator]);
            }

            var packet = packets[i];
            if (!packet.IsBinary)
            {
                writer.Write(packet.Bytes.Span);
                continue;
            }

            var span = writer.GetSpan(1 + ((packet.Bytes.Length + 2) / 3 * 4));
            span[0] = (byte)'b';
            Base64.EncodeToUtf8(packet.Bytes.Span, span[1..], out _, out var written);
            writer.Advance(1 + written);
        }

        return false;
    }

    public override ReadOnlyMemory<byte> ControlPayload(in OutboundPacket packet) => packet.Bytes;

    // engine.io 6 refuses an application/octet-stream POST in revision 4; a client of this revision never sends one,
    // and the body is read as text whatever its declared type (a bad packet then closes the session)
    public override bool IsBinaryBody(string? contentType) => false;

    public override bool TryDecodePayload(string? text, byte[]? bytes, List<InboundPacket> packets, out string? error) =>
        EnginePacketParser.TryParsePayload(text ?? string.Empty, packets, out error);

    public override bool TryParseText(string text, out InboundPacket packet, out string? error) =>
        EnginePacketParser.TryParseText(text, out packet, out error);

    public override bool TryParseBinary(byte[] data, out InboundPacket packet, out string? error)
    {
        error = null;
        packet = new InboundPacket(EnginePacketType.Message, null, data);
        return true;
    }

    public override (bool Text, ReadOnlyMemory<byte> Bytes) WebSocketBinary(in OutboundPacket packet) => (false, packet.Bytes);
}

/// <summary>
/// Engine.IO 3 (engine.io-parser 2.x, as engine.io 6 bundles it in <c>parser-v3</c>): string payloads
/// <c>&lt;length&gt;:&lt;packet&gt;</c> (length in UTF-16 code units, as a JavaScript string's), binary payloads
/// for XHR2 clients (<c>0|1</c>, length digits as bytes, <c>255</c>, packet), binary messages prefixed by their type
/// byte (<c>4</c>) or, for a <c>b64=1</c> client, sent as <c>b4</c> + base64; the client pings.
/// </summary>
internal sealed class EngineProtocol3(bool supportsBinary) : EngineProtocol
{
    /// <summary>Most length digits before the separator of a binary payload part (engine.io-parser: 310).</summary>
    private const int MaxLengthDigits = 10;

    private static readonly byte[] NoopPayload = "1:6"u8.ToArray();
    private static readonly byte[] ClosePayload = "1:1"u8.ToArray();

    public override int Revision => 3;

    public override bool ServerPings => false;

    public bool SupportsBinary => supportsBinary;

    public override EngineProtocol WithBase64(bool base64) => base64 ? V3Base64 : V3;

    public override string HandshakeJson(string sid, bool offerWebSocket, EngineIOOptions o) =>
        $"{{\"sid\":{JsonSerializer.Serialize(sid)},\"upgrades\":{(offerWebSocket ? "[\"websocket\"]" : "[]")},\"pingInterval\":{o.PingInterval},\"pingTimeout\":{o.PingTimeout}}}";

    public override bool EncodePayload(IReadOnlyList<OutboundPacket> packets, ArrayBufferWriter<byte> writer)
    {
        var hasBinary = false;
        foreach (var packet in packets)
        {
            hasBinary |= packet.IsBinary;
        }

        if (supportsBinary && hasBinary)
        {
            foreach (var packet in packets)
            {
                // a text packet: 0, the digits of its UTF-8 length, 255, its UTF-8 bytes; a binary one: 1, the digits
                // of its length with the type byte, 255, the type byte 4, its bytes
                var length = packet.Bytes.Length + (packet.IsBinary ? 1 : 0);
                writer.Write([packet.IsBinary ? (byte)1 : (byte)0]);
                WriteDigits(writer, length, asBytes: true);
                writer.Write([(byte)255]);
                if (packet.IsBinary)
                {
                    writer.Write([(byte)EnginePacketType.Message]);
                }

                writer.Write(packet.Bytes.Span);
            }

            return true;
        }

        if (packets.Count == 0)
        {
            writer.Write("0:"u8);
            return false;
        }

        foreach (var packet in packets)
        {
            if (packet.IsBinary)
            {
                var base64Length = (packet.Bytes.Length + 2) / 3 * 4;
                WriteDigits(writer, 2 + base64Length, asBytes: false);
                writer.Write(":b4"u8);
                var span = writer.GetSpan(base64Length);
                Base64.EncodeToUtf8(packet.Bytes.Span, span, out _, out var written);
                writer.Advance(written);
                continue;
            }

            WriteDigits(writer, Utf16Length(packet.Bytes.Span), asBytes: false);
            writer.Write(":"u8);
            writer.Write(packet.Bytes.Span);
        }

        return false;
    }

    public override ReadOnlyMemory<byte> ControlPayload(in OutboundPacket packet) => packet.Type switch
    {
        EnginePacketType.Noop => NoopPayload,
        EnginePacketType.Close => ClosePayload,
        _ => Encode(packet),
    };

    private ReadOnlyMemory<byte> Encode(in OutboundPacket packet)
    {
        var writer = new ArrayBufferWriter<byte>(16);
        EncodePayload([packet], writer);
        return writer.WrittenMemory;
    }

    public override bool IsBinaryBody(string? contentType) =>
        contentType is not null && contentType.StartsWith("application/octet-stream", StringComparison.OrdinalIgnoreCase);

    public override bool TryDecodePayload(string? text, byte[]? bytes, List<InboundPacket> packets, out string? error) =>
        bytes is not null ? TryDecodeBinaryPayload(bytes, packets, out error) : TryDecodeStringPayload(text ?? string.Empty, packets, out error);

    /// <summary>engine.io-parser 2's <c>decodePayload</c>: <c>&lt;length&gt;:&lt;packet&gt;</c> repeated, empty packets skipped.</summary>
    internal static bool TryDecodeStringPayload(string payload, List<InboundPacket> packets, out string? error)
    {
        if (payload.Length == 0)
        {
            error = "empty payload";
            return false;
        }

        var i = 0;
        while (i < payload.Length)
        {
            var colon = payload.IndexOf(':', i);
            if (colon < 0 || colon == i || colon - i > MaxLengthDigits
                || !int.TryParse(payload.AsSpan(i, colon - i), System.Globalization.NumberStyles.None, null, out var length)
                || length > payload.Length - colon - 1)
            {
                error = "invalid payload length";
                return false;
            }

            if (length > 0)
            {
                if (!TryParseTextPacket(payload.Substring(colon + 1, length), out var packet, out error))
                {
                    return false;
                }

                packets.Add(packet);
            }

            i = colon + 1 + length;
        }

        error = null;
        return true;
    }

    /// <summary>engine.io-parser 2's <c>decodePayloadAsBinary</c>, with bounds checked (the reference reads past a short buffer).</summary>
    internal static bool TryDecodeBinaryPayload(byte[] payload, List<InboundPacket> packets, out string? error)
    {
        var i = 0;
        while (i < payload.Length)
        {
            var kind = payload[i++];
            if (kind > 1)
            {
                error = "invalid binary payload";
                return false;
            }

            long length = 0;
            var digits = 0;
            while (i < payload.Length && payload[i] != 255)
            {
                if (payload[i] > 9 || ++digits > MaxLengthDigits)
                {
                    error = "invalid binary payload length";
                    return false;
                }

                length = length * 10 + payload[i++];
            }

            if (i >= payload.Length || digits == 0 || length > payload.Length - i - 1)
            {
                error = "invalid binary payload length";
                return false;
            }

            var part = payload.AsSpan(i + 1, (int)length);
            i += 1 + (int)length;
            InboundPacket packet;
            if (kind == 0)
            {
                if (!TryDecodeUtf8(part, out var text) || !TryParseTextPacket(text, out packet, out error))
                {
                    error = "invalid text packet in a binary payload";
                    return false;
                }
            }
            else if (!TryParseBinaryPacket(part, out packet, out error))
            {
                return false;
            }

            packets.Add(packet);
        }

        error = null;
        return true;
    }

    public override bool TryParseText(string text, out InboundPacket packet, out string? error) =>
        TryParseTextPacket(text, out packet, out error);

    public override bool TryParseBinary(byte[] data, out InboundPacket packet, out string? error) =>
        TryParseBinaryPacket(data, out packet, out error);

    public override (bool Text, ReadOnlyMemory<byte> Bytes) WebSocketBinary(in OutboundPacket packet)
    {
        var data = packet.Bytes.Span;
        if (supportsBinary)
        {
            var framed = new byte[data.Length + 1];
            framed[0] = (byte)EnginePacketType.Message;
            data.CopyTo(framed.AsSpan(1));
            return (false, framed);
        }

        var base64 = new byte[2 + ((data.Length + 2) / 3 * 4)];
        base64[0] = (byte)'b';
        base64[1] = (byte)'4';
        Base64.EncodeToUtf8(data, base64.AsSpan(2), out _, out _);
        return (true, base64);
    }

    /// <summary>A text packet; <c>b&lt;type&gt;&lt;base64&gt;</c> is a binary one sent by a client that cannot send binary.</summary>
    private static bool TryParseTextPacket(string text, out InboundPacket packet, out string? error)
    {
        if (text.Length > 0 && text[0] == 'b')
        {
            if (text.Length < 2 || text[1] - '0' is < 0 or > (int)EnginePacketType.Noop)
            {
                return Fail($"unknown packet type '{Truncate(text)}'", out packet, out error);
            }

            var bytes = new byte[(text.Length - 2) * 3 / 4 + 3];
            if (!Convert.TryFromBase64Chars(text.AsSpan(2), bytes, out var written))
            {
                return Fail("invalid base64 in a binary packet", out packet, out error);
            }

            error = null;
            packet = new InboundPacket((EnginePacketType)(text[1] - '0'), null, bytes.AsSpan(0, written).ToArray());
            return true;
        }

        return EnginePacketParser.TryParseText(text, out packet, out error);
    }

    private static bool TryParseBinaryPacket(ReadOnlySpan<byte> data, out InboundPacket packet, out string? error)
    {
        if (data.Length == 0 || data[0] > (byte)EnginePacketType.Noop)
        {
            return Fail("invalid binary packet type", out packet, out error);
        }

        error = null;
        packet = new InboundPacket((EnginePacketType)data[0], null, data[1..].ToArray());
        return true;
    }

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    private static bool TryDecodeUtf8(ReadOnlySpan<byte> bytes, out string text)
    {
        try
        {
            text = StrictUtf8.GetString(bytes);
            return true;
        }
        catch (DecoderFallbackException)
        {
            text = string.Empty;
            return false;
        }
    }

    /// <summary>The length of UTF-8 text as a JavaScript string's: one unit per code point, two for one past U+FFFF.</summary>
    internal static int Utf16Length(ReadOnlySpan<byte> utf8)
    {
        var length = 0;
        foreach (var b in utf8)
        {
            if ((b & 0xC0) != 0x80)
            {
                length += b >= 0xF0 ? 2 : 1;
            }
        }

        return length;
    }

    private static void WriteDigits(ArrayBufferWriter<byte> writer, int value, bool asBytes)
    {
        Span<byte> digits = stackalloc byte[11];
        value.TryFormat(digits, out var count, provider: System.Globalization.CultureInfo.InvariantCulture);
        if (asBytes)
        {
            for (var i = 0; i < count; i++)
            {
                digits[i] -= (byte)'0';
            }
        }

        writer.Write(digits[..count]);
    }
}

using System.Buffers;
using System.IO.Compression;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Primitives;

namespace Evolution.Events.EngineIO.Transports;

/// <summary>
/// <c>permessage-deflate</c> as negotiated for a socket (immutable, shared by every socket with the same
/// parameters): the offer parsing of the handshake, the compression of outgoing messages (once per message
/// whoever sends it) and the bounded decompression of incoming ones.
/// </summary>
internal sealed class WebSocketDeflate
{
    public const string ExtensionName = "permessage-deflate";

    /// <summary>The tail of a sync flush, which RFC 7692 takes off the end of a compressed message.</summary>
    private static ReadOnlySpan<byte> Tail => [0x00, 0x00, 0xFF, 0xFF];

    private static readonly ConditionalWeakTable<object, Compressed> Shared = new();
    private static long s_compressions;
    private readonly ZLibCompressionOptions _zlib;

    public WebSocketDeflate(int threshold, int level, int serverMaxWindowBits)
    {
        Threshold = threshold;
        _zlib = new ZLibCompressionOptions { CompressionLevel = level };
        ServerMaxWindowBits = serverMaxWindowBits;

        // compressing a message on its own, a back-reference never reaches further than the message's length: a
        // message no longer than the client's window decodes with it (System.IO.Compression has no window setting)
        MaxCompressedLength = serverMaxWindowBits >= 15 ? int.MaxValue : 1 << serverMaxWindowBits;
    }

    public int Threshold { get; }

    public int CompressionLevel => _zlib.CompressionLevel;

    public int ServerMaxWindowBits { get; }

    public int MaxCompressedLength { get; }

    /// <summary>How many messages were compressed in this process (for tests: a shared message counts once).</summary>
    internal static long Compressions => Interlocked.Read(ref s_compressions);

    /// <summary>
    /// The <c>Sec-WebSocket-Extensions</c> answer to a client's offers, or null to decline (no acceptable
    /// offer: the connection goes on uncompressed). The first acceptable <c>permessage-deflate</c> offer wins.
    /// </summary>
    public static WebSocketDeflate? Negotiate(StringValues offers, PerMessageDeflateOptions options, out string? response)
    {
        response = null;
        foreach (var header in offers)
        {
            foreach (var offer in (header ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                if (TryAccept(offer, out var windowBits))
                {
                    response = windowBits < 15
                        ? $"{ExtensionName}; server_no_context_takeover; client_no_context_takeover; server_max_window_bits={windowBits}"
                        : $"{ExtensionName}; server_no_context_takeover; client_no_context_takeover";
                    return options.For(windowBits);
                }
            }
        }

        return null;
    }

    /// <summary>
    /// Whether one offer can be accepted (RFC 7692 section 7.1): known parameters, each once, with valid values.
    /// <c>client_max_window_bits</c> needs no answer (the server inflates with the largest window);
    /// <c>server_max_window_bits=N</c> is honoured (see <see cref="MaxCompressedLength"/>).
    /// </summary>
    private static bool TryAccept(string offer, out int serverMaxWindowBits)
    {
        serverMaxWindowBits = 15;
        var parts = offer.Split(';', StringSplitOptions.TrimEntries);
        if (!parts[0].Equals(ExtensionName, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 1; i < parts.Length; i++)
        {
            var eq = parts[i].IndexOf('=', StringComparison.Ordinal);
            var name = (eq < 0 ? parts[i] : parts[i][..eq]).Trim();
            var value = eq < 0 ? null : parts[i][(eq + 1)..].Trim().Trim('"');
            if (name.Length == 0 || !seen.Add(name))
            {
                return false;
            }

            switch (name.ToLowerInvariant())
            {
                case "server_no_context_takeover" or "client_no_context_takeover" when value is null:
                    break;
                case "client_max_window_bits" when value is null || IsWindowBits(value, out _):
                    break;
                case "server_max_window_bits" when value is not null && IsWindowBits(value, out var bits):
                    serverMaxWindowBits = bits;
                    break;
                default:
                    return false;
            }
        }

        return true;
    }

    private static bool IsWindowBits(string value, out int bits) =>
        int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out bits)
        && bits is >= 8 and <= 15 && value.Length <= 2;

    /// <summary>
    /// What goes on the wire for an outgoing message: its compressed form (true) when it is at least the threshold,
    /// fits the client's window and shrinks; otherwise the message itself (false). The compressed form of bytes held
    /// by an array is made once and shared by every socket that sends them (a broadcast).
    /// </summary>
    public (ReadOnlyMemory<byte> Payload, bool Compressed) Prepare(ReadOnlyMemory<byte> message)
    {
        if (message.Length < Threshold || message.Length > MaxCompressedLength || message.Length == 0)
        {
            return (message, false);
        }

        byte[]? compressed;
        if (MemoryMarshal.TryGetArray(message, out var segment) && segment.Array is { } array)
        {
            // outbound bytes never change once queued (OutboundPacket): the array identifies the message
            compressed = Shared.GetValue(array, static _ => new Compressed()).Get(this, segment.Offset, segment.Count, message.Span);
        }
        else
        {
            compressed = CompressOrNull(message.Span);
        }

        return compressed is null ? (message, false) : (compressed, true);
    }

    /// <summary>Compresses one message on its own (no context taken over); null when that does not make it smaller.</summary>
    public byte[]? CompressOrNull(ReadOnlySpan<byte> message)
    {
        Interlocked.Increment(ref s_compressions);
        using var output = new MemoryStream(Math.Min(message.Length, 64 * 1024));
        using (var deflate = new DeflateStream(output, _zlib, leaveOpen: true))
        {
            deflate.Write(message);
            deflate.Flush(); // a sync flush: the data ends with an empty stored block, 00 00 FF FF
            var length = (int)output.Length - Tail.Length;
            if (length >= message.Length || !output.GetBuffer().AsSpan(length, Tail.Length).SequenceEqual(Tail))
            {
                return null;
            }

            return output.GetBuffer().AsSpan(0, length).ToArray();
        }
    }

    /// <summary>
    /// Decompresses one message (its frames' payloads joined), never past <paramref name="maxPayload"/> bytes: a
    /// message that inflates beyond is refused as it grows (a small bomb costs what the limit allows, no more).
    /// </summary>
    public static InflateResult Inflate(ReadOnlySpan<byte> compressed, int maxPayload, out byte[]? message)
    {
        message = null;
        var input = ArrayPool<byte>.Shared.Rent(compressed.Length + Tail.Length);
        compressed.CopyTo(input);
        Tail.CopyTo(input.AsSpan(compressed.Length));
        var output = new ArrayBufferWriter<byte>(Math.Min(maxPayload + 1, Math.Max(256, compressed.Length * 4)));
        try
        {
            using var source = new MemoryStream(input, 0, compressed.Length + Tail.Length, writable: false);
            using var inflate = new DeflateStream(source, CompressionMode.Decompress);
            while (true)
            {
                // at most one byte past the limit is ever asked for
                var room = maxPayload + 1 - output.WrittenCount;
                var span = output.GetSpan(Math.Min(room, 16 * 1024));
                var n = inflate.Read(span[..Math.Min(span.Length, room)]);
                if (n == 0)
                {
                    break;
                }

                output.Advance(n);
                if (output.WrittenCount > maxPayload)
                {
                    return InflateResult.TooLarge;
                }
            }
        }
        catch (InvalidDataException)
        {
            return InflateResult.Invalid;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(input);
        }

        message = output.WrittenSpan.ToArray();
        return InflateResult.Ok;
    }

    public enum InflateResult
    {
        Ok,
        TooLarge,
        Invalid,
    }

    /// <summary>The compressed form of one array's message, made once (per slice: the first slice asked for is cached).</summary>
    private sealed class Compressed
    {
        private readonly Lock _lock = new();
        private bool _done;
        private int _offset;
        private int _count;
        private int _level;
        private byte[]? _bytes;

        public byte[]? Get(WebSocketDeflate deflate, int offset, int count, ReadOnlySpan<byte> message)
        {
            var level = deflate._zlib.CompressionLevel;
            lock (_lock)
            {
                if (_done)
                {
                    return _offset == offset && _count == count && _level == level ? _bytes : deflate.CompressOrNull(message);
                }

                // the first socket compresses, the others wait for its result (compressing is shorter than a write)
                (_offset, _count, _level) = (offset, count, level);
                _bytes = deflate.CompressOrNull(message);
                _done = true;
                return _bytes;
            }
        }
    }
}

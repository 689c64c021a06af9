using System.Buffers;
using Microsoft.AspNetCore.Http;

namespace Evolution.Events.EngineIO.Hosting;

/// <summary>
/// The head of a connection's first request, parsed only as far as needed to tell whether the raw path takes it:
/// a well-formed HTTP/1.1 <c>GET</c> WebSocket upgrade, without body, for a served path. Anything else, or anything
/// doubtful (percent-encoded path, non-ASCII or control bytes, folded headers, oversized head), is left to Kestrel,
/// which answers it exactly as it always does.
/// </summary>
internal sealed class RequestHead
{
    public enum Verdict
    {
        NeedMore,
        NotOurs,
        Ours,
    }

    private RequestHead(string target, string path, string query, HeaderDictionary headers)
    {
        RawTarget = target;
        Path = path;
        QueryString = query;
        Headers = headers;
    }

    public string RawTarget { get; }

    public string Path { get; }

    public string QueryString { get; }

    public HeaderDictionary Headers { get; }

    /// <summary>Parses what has arrived; <paramref name="headEnd"/> is the first byte after the blank line when Ours.</summary>
    public static Verdict TryParse(in ReadOnlySequence<byte> buffer, int maxLine, int maxHeaders, Func<string, bool> served,
        out RequestHead? head, out SequencePosition headEnd)
    {
        head = null;
        headEnd = buffer.Start;
        var reader = new SequenceReader<byte>(buffer);
        if (!StartsWithGet(buffer, out var complete))
        {
            return Verdict.NotOurs;
        }

        if (!complete)
        {
            return Verdict.NeedMore;
        }

        if (!reader.TryReadTo(out ReadOnlySequence<byte> lineBytes, "\r\n"u8))
        {
            return buffer.Length > maxLine ? Verdict.NotOurs : Verdict.NeedMore;
        }

        if (lineBytes.Length > maxLine || !TryParseRequestLine(lineBytes, served, out var target, out var path, out var query))
        {
            return Verdict.NotOurs;
        }

        var headerStart = reader.Consumed;
        var headers = new HeaderDictionary(CountLines(reader)); // sized once: no growth while it fills
        while (true)
        {
            if (!reader.TryReadTo(out ReadOnlySequence<byte> headerBytes, "\r\n"u8))
            {
                return buffer.Length - headerStart > maxHeaders ? Verdict.NotOurs : Verdict.NeedMore;
            }

            if (reader.Consumed - headerStart > maxHeaders)
            {
                return Verdict.NotOurs;
            }

            if (headerBytes.IsEmpty)
            {
                break;
            }

            if (!TryAddHeader(headers, headerBytes))
            {
                return Verdict.NotOurs;
            }
        }

        if (!IsBodilessUpgrade(headers))
        {
            return Verdict.NotOurs;
        }

        head = new RequestHead(target!, path!, query!, headers);
        headEnd = reader.Position;
        return Verdict.Ours;
    }

    private static bool StartsWithGet(in ReadOnlySequence<byte> buffer, out bool complete)
    {
        ReadOnlySpan<byte> get = "GET "u8;
        Span<byte> first = stackalloc byte[4];
        var n = (int)Math.Min(4, buffer.Length);
        buffer.Slice(0, n).CopyTo(first);
        complete = n == 4;
        return first[..n].SequenceEqual(get[..n]);
    }

    /// <summary>The header lines before the blank line (as many as have arrived): the dictionary's size.</summary>
    private static int CountLines(SequenceReader<byte> reader)
    {
        var count = 0;
        while (reader.TryReadTo(out ReadOnlySequence<byte> line, "\r\n"u8) && !line.IsEmpty)
        {
            count++;
        }

        return count;
    }

    /// <summary>
    /// Runs <paramref name="parse"/> on the line as characters when every byte is visible ASCII or a tab, else false.
    /// The characters live on the stack (or in a pooled array for a long line): only the strings the parse keeps are
    /// allocated, and those a handshake repeats come from <see cref="SharedStrings"/>.
    /// </summary>
    private static bool WithAscii<TState>(in ReadOnlySequence<byte> bytes, ref TState state, LineParser<TState> parse)
    {
        var length = (int)bytes.Length;
        char[]? rented = null;
        var chars = length <= 512 ? stackalloc char[512] : (rented = ArrayPool<char>.Shared.Rent(length));
        try
        {
            var i = 0;
            foreach (var segment in bytes)
            {
                foreach (var b in segment.Span)
                {
                    if (b > 0x7E || (b < 0x20 && b != (byte)'\t'))
                    {
                        return false;
                    }

                    chars[i++] = (char)b;
                }
            }

            return parse(chars[..length], ref state);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<char>.Shared.Return(rented);
            }
        }
    }

    private delegate bool LineParser<TState>(scoped ReadOnlySpan<char> line, ref TState state);

    private static bool TryParseRequestLine(in ReadOnlySequence<byte> bytes, Func<string, bool> served, out string? target, out string? path, out string? query)
    {
        var parsed = new RequestLine { Served = served };
        var ok = WithAscii(bytes, ref parsed, static (scoped ReadOnlySpan<char> line, ref RequestLine state) =>
        {
            if (!line.StartsWith("GET /", StringComparison.Ordinal) || !line.EndsWith(" HTTP/1.1", StringComparison.Ordinal))
            {
                return false;
            }

            var raw = line[4..^9];
            if (raw.Length == 0 || raw.Contains(' ') || raw.Contains('#'))
            {
                return false;
            }

            var q = raw.IndexOf('?');
            var rawPath = q < 0 ? raw : raw[..q];
            // Kestrel decodes and normalizes paths: those are its to parse
            if (rawPath.Contains('%') || rawPath.Contains("/.", StringComparison.Ordinal) || rawPath.Contains("//", StringComparison.Ordinal))
            {
                return false;
            }

            state.Target = SharedStrings.Share(raw);
            state.Path = q < 0 ? state.Target : SharedStrings.Share(rawPath);
            state.Query = q < 0 ? "" : SharedStrings.Share(raw[q..]);
            return state.Served(state.Path);
        });
        (target, path, query) = ok ? (parsed.Target, parsed.Path, parsed.Query) : (null, null, null);
        return ok;
    }

    private struct RequestLine
    {
        public Func<string, bool> Served;
        public string? Target;
        public string? Path;
        public string? Query;
    }

    private static bool TryAddHeader(HeaderDictionary headers, in ReadOnlySequence<byte> bytes) =>
        WithAscii(bytes, ref headers, static (scoped ReadOnlySpan<char> line, ref HeaderDictionary headers) =>
        {
            var colon = line.IndexOf(':');
            if (colon <= 0)
            {
                return false;
            }

            var rawName = line[..colon];
            foreach (var c in rawName)
            {
                if (!IsTokenChar(c))
                {
                    return false;
                }
            }

            var name = SharedStrings.Share(rawName);
            var rawValue = line[(colon + 1)..].Trim(" \t");
            // a value unique to the handshake (its key) would only evict the shared ones
            var value = SharedStrings.IsUnique(name) ? new string(rawValue) : SharedStrings.Share(rawValue);
            headers.Append(name, value);
            return true;
        });

    private static bool IsTokenChar(char c) =>
        char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c, StringComparison.Ordinal);

    private static bool IsBodilessUpgrade(HeaderDictionary headers) =>
        headers.ContainsKey("Host")
        && HasToken(headers["Upgrade"], "websocket")
        && HasToken(headers["Connection"], "upgrade")
        && !headers.ContainsKey("Transfer-Encoding")
        && (!headers.ContainsKey("Content-Length") || headers.ContentLength == 0);

    private static bool HasToken(Microsoft.Extensions.Primitives.StringValues values, string token)
    {
        foreach (var value in values)
        {
            var text = (value ?? "").AsSpan();
            foreach (var part in text.Split(','))
            {
                if (text[part].Trim(" \t").Equals(token, StringComparison.OrdinalIgnoreCase))
                {
                    return true;
                }
            }
        }

        return false;
    }
}

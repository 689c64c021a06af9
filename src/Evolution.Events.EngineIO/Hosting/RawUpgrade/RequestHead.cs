using System.Buffers;
using System.Text;
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

        if (lineBytes.Length > maxLine || !TryParseRequestLine(ToAscii(lineBytes), served, out var target, out var path, out var query))
        {
            return Verdict.NotOurs;
        }

        var headers = new HeaderDictionary();
        var headerStart = reader.Consumed;
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

            if (ToAscii(headerBytes) is not { } line || !TryAddHeader(headers, line))
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

    private static string? ToAscii(in ReadOnlySequence<byte> bytes)
    {
        foreach (var segment in bytes)
        {
            foreach (var b in segment.Span)
            {
                if (b > 0x7E || (b < 0x20 && b != (byte)'\t'))
                {
                    return null;
                }
            }
        }

        return Encoding.ASCII.GetString(bytes);
    }

    private static bool TryParseRequestLine(string? line, Func<string, bool> served, out string? target, out string? path, out string? query)
    {
        target = path = query = null;
        if (line is null || !line.StartsWith("GET /", StringComparison.Ordinal) || !line.EndsWith(" HTTP/1.1", StringComparison.Ordinal))
        {
            return false;
        }

        target = line[4..^9];
        if (target.Length == 0 || target.Contains(' ', StringComparison.Ordinal) || target.Contains('#', StringComparison.Ordinal))
        {
            return false;
        }

        var q = target.IndexOf('?', StringComparison.Ordinal);
        path = q < 0 ? target : target[..q];
        query = q < 0 ? "" : target[q..];
        // Kestrel decodes and normalizes paths: those are its to parse
        return !path.Contains('%', StringComparison.Ordinal) && !path.Contains("/.", StringComparison.Ordinal)
            && !path.Contains("//", StringComparison.Ordinal) && served(path);
    }

    private static bool TryAddHeader(HeaderDictionary headers, string line)
    {
        var colon = line.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0)
        {
            return false;
        }

        var name = line[..colon];
        foreach (var c in name)
        {
            if (c is ' ' or '\t' || !IsTokenChar(c))
            {
                return false;
            }
        }

        var value = line[(colon + 1)..].Trim(' ', '\t');
        headers.Append(name, value);
        return true;
    }

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
            foreach (var part in (value ?? "").Split(',', StringSplitOptions.TrimEntries))
            {
                if (string.Equals(part, token, StringComparison.OrdinalIgnoreCase))
                {
                    return true;
                }
            }
        }

        return false;
    }
}

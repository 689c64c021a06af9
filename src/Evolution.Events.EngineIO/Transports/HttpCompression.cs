using System.IO.Compression;
using Microsoft.AspNetCore.Http;

namespace Evolution.Events.EngineIO.Transports;

/// <summary>
/// HTTP compression of polling responses, as engine.io's <c>httpCompression</c>: a poll response of at least
/// <see cref="HttpCompressionOptions.Threshold"/> bytes goes gzip- or deflate-encoded when the request's
/// <c>Accept-Encoding</c> takes one of them (chosen as engine.io's <c>accepts(req).encodings(["gzip", "deflate"])</c>).
/// </summary>
internal static class HttpCompression
{
    internal enum Encoding
    {
        None,
        Gzip,
        Deflate,
    }

    /// <summary>
    /// negotiator's choice between gzip and deflate: each takes its best entry (exact name before <c>*</c>, then the higher
    /// q, then the earlier one); a q of 0 refuses it; the higher q wins, then the exact name, then the earlier entry, then gzip.
    /// </summary>
    public static Encoding Negotiate(string acceptEncoding)
    {
        if (string.IsNullOrWhiteSpace(acceptEncoding))
        {
            return Encoding.None;
        }

        var gzip = Best("gzip", acceptEncoding);
        var deflate = Best("deflate", acceptEncoding);
        var gzipOk = gzip.Q > 0;
        var deflateOk = deflate.Q > 0;
        if (!gzipOk && !deflateOk)
        {
            return Encoding.None;
        }

        if (!deflateOk)
        {
            return Encoding.Gzip;
        }

        if (!gzipOk)
        {
            return Encoding.Deflate;
        }

        var order = deflate.Q.CompareTo(gzip.Q) is var byQ and not 0 ? byQ
            : gzip.Exact != deflate.Exact ? (deflate.Exact ? 1 : -1)
            : gzip.Index.CompareTo(deflate.Index) is var byIndex and not 0 ? byIndex : 0;
        return order > 0 ? Encoding.Deflate : Encoding.Gzip;
    }

    private readonly record struct Spec(double Q, bool Exact, int Index);

    private static Spec Best(string name, string header)
    {
        var best = new Spec(0, false, -1);
        var found = false;
        var index = 0;
        foreach (var range in header.AsSpan().Split(','))
        {
            var entry = header.AsSpan()[range].Trim();
            if (entry.IsEmpty)
            {
                continue;
            }

            var semicolon = entry.IndexOf(';');
            var token = (semicolon < 0 ? entry : entry[..semicolon]).Trim();
            var exact = token.Equals(name, StringComparison.OrdinalIgnoreCase);
            if (exact || token is "*")
            {
                var spec = new Spec(Quality(semicolon < 0 ? default : entry[(semicolon + 1)..]), exact, index);
                if (!found || (spec.Exact && !best.Exact) || (spec.Exact == best.Exact && spec.Q >= best.Q))
                {
                    best = spec;
                    found = true;
                }
            }

            index++;
        }

        return best;
    }

    private static double Quality(ReadOnlySpan<char> parameters)
    {
        foreach (var range in parameters.Split(';'))
        {
            var parameter = parameters[range].Trim();
            if (parameter.StartsWith("q=", StringComparison.OrdinalIgnoreCase))
            {
                return double.TryParse(parameter[2..], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var q)
                    ? q
                    : 0;
            }
        }

        return 1;
    }

    /// <summary>
    /// Writes a poll response compressed straight into the response body (chunked, no Content-Length, as engine.io):
    /// the compressor's own buffers are the only extra memory, for the length of the write.
    /// </summary>
    public static async Task WritePayloadAsync(HttpContext context, ReadOnlyMemory<byte> payload, bool binary, string? contentType, Encoding encoding)
    {
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = contentType ?? (binary ? "application/octet-stream" : "text/plain; charset=UTF-8");
        response.Headers.CacheControl = "no-store";
        response.Headers.ContentEncoding = encoding == Encoding.Gzip ? "gzip" : "deflate";
        response.Headers.Append("Vary", "Accept-Encoding");
        try
        {
            // zlib's default level (6), as node's createGzip/createDeflate; "deflate" is the zlib format (RFC 1950), as
            // createDeflate writes it
            Stream compressor = encoding == Encoding.Gzip
                ? new GZipStream(response.Body, CompressionLevel.Optimal, leaveOpen: true)
                : new ZLibStream(response.Body, CompressionLevel.Optimal, leaveOpen: true);
            await using (compressor.ConfigureAwait(false))
            {
                await compressor.WriteAsync(payload, context.RequestAborted).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException)
        {
            // the client went away; the session notices at its next poll or by the heartbeat
        }
    }
}

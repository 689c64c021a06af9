using System.Net;
using Microsoft.AspNetCore.Http;

namespace Evolution.Events.EngineIO;

/// <summary>
/// What the handshake request said, copied out of the <see cref="HttpContext"/> (which is recycled
/// once the request ends): query, headers, remote address, URL.
/// </summary>
public sealed class EngineRequest
{
    private EngineRequest(
        IReadOnlyDictionary<string, string> query,
        IReadOnlyDictionary<string, string> headers,
        IPAddress? remoteAddress,
        string url,
        bool secure,
        DateTimeOffset? time = null)
    {
        Query = query;
        Headers = headers;
        RemoteAddress = remoteAddress;
        Url = url;
        Secure = secure;
        Time = time ?? DateTimeOffset.UtcNow;
    }

    /// <summary>The query string parameters (<c>EIO</c>, <c>transport</c> and the client's own); a repeated one's values joined by a comma.</summary>
    public IReadOnlyDictionary<string, string> Query { get; }

    /// <summary>Request headers, names compared case-insensitively; repeated ones joined by a comma.</summary>
    public IReadOnlyDictionary<string, string> Headers { get; }

    /// <summary>The client's IP address as ASP.NET Core reports it (<c>HttpContext.Connection.RemoteIpAddress</c>), when known.</summary>
    public IPAddress? RemoteAddress { get; }

    /// <summary>The request's path base, path and query string, as engine.io's <c>req.url</c>.</summary>
    public string Url { get; }

    /// <summary>Whether the request came over TLS (https/wss).</summary>
    public bool Secure { get; }

    /// <summary>When the request was copied (the handshake time of a session).</summary>
    public DateTimeOffset Time { get; }

    /// <summary>
    /// A request as another node of a cluster described it (the handshake of a socket held there, e.g. fetched
    /// by a scale-out adapter): nothing is read from an HTTP context.
    /// </summary>
    public static EngineRequest Describe(
        IReadOnlyDictionary<string, string> query,
        IReadOnlyDictionary<string, string> headers,
        IPAddress? remoteAddress,
        string url,
        bool secure,
        DateTimeOffset time) => new(query, headers, remoteAddress, url, secure, time);

    /// <summary>Copies the request with every header (no bound).</summary>
    public static EngineRequest From(HttpContext context) => From(context, int.MaxValue);

    /// <summary>
    /// Copies the request, keeping headers while their names and values fit in
    /// <paramref name="maxHeaderChars"/> characters in all: a header that does not fit is left out
    /// (never cut), so a session does not pin whatever large headers its handshake carried.
    /// </summary>
    public static EngineRequest From(HttpContext context, int maxHeaderChars)
    {
        // one array each, sized to what it holds: an idle connection keeps both for its lifetime
        var queryItems = new string[context.Request.Query.Count * 2];
        var q = 0;
        foreach (var (key, value) in context.Request.Query)
        {
            queryItems[q++] = SharedStrings.Share(key);
            queryItems[q++] = SharedStrings.Share(value.ToString());
        }

        var headerItems = new string[context.Request.Headers.Count * 2];
        var h = 0;
        var budget = (long)maxHeaderChars;
        foreach (var (key, value) in context.Request.Headers)
        {
            var length = key.Length + SumLength(value);
            if (length > budget)
            {
                continue;
            }

            budget -= length;
            var text = value.ToString();
            headerItems[h++] = SharedStrings.Share(key);
            headerItems[h++] = SharedStrings.IsUnique(key) ? text : SharedStrings.Share(text);
        }

        if (h < headerItems.Length)
        {
            Array.Resize(ref headerItems, h);
        }

        var query = new CompactStringMap(queryItems, StringComparison.Ordinal);
        var headers = new CompactStringMap(headerItems, StringComparison.OrdinalIgnoreCase);
        var request = context.Request;
        var url = SharedStrings.Share(string.Concat(request.PathBase.ToString(), request.Path.ToString(), request.QueryString.ToString()));
        return new EngineRequest(query, headers, context.Connection.RemoteIpAddress, url, request.IsHttps);
    }

    private static long SumLength(Microsoft.Extensions.Primitives.StringValues values)
    {
        long length = Math.Max(0, values.Count - 1); // the joining commas
        foreach (var value in values)
        {
            length += value?.Length ?? 0;
        }

        return length;
    }
}

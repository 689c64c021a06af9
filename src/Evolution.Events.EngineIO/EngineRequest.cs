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
        bool secure)
    {
        Query = query;
        Headers = headers;
        RemoteAddress = remoteAddress;
        Url = url;
        Secure = secure;
        Time = DateTimeOffset.UtcNow;
    }

    public IReadOnlyDictionary<string, string> Query { get; }

    /// <summary>Request headers, names compared case-insensitively; repeated ones joined by a comma.</summary>
    public IReadOnlyDictionary<string, string> Headers { get; }

    public IPAddress? RemoteAddress { get; }

    public string Url { get; }

    public bool Secure { get; }

    public DateTimeOffset Time { get; }

    public static EngineRequest From(HttpContext context)
    {
        var query = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in context.Request.Query)
        {
            query[key] = value.ToString();
        }

        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in context.Request.Headers)
        {
            headers[key] = value.ToString();
        }

        var request = context.Request;
        var url = string.Concat(request.PathBase.ToString(), request.Path.ToString(), request.QueryString.ToString());
        return new EngineRequest(query, headers, context.Connection.RemoteIpAddress, url, request.IsHttps);
    }
}

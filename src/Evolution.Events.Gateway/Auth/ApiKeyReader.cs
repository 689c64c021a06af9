using Microsoft.Extensions.Primitives;

namespace Evolution.Events.Gateway.Auth;

/// <summary>Where a request carries its key.</summary>
public static class ApiKeyReader
{
    /// <summary>Header <c>apikey</c>, else <c>Authorization: Bearer …</c>.</summary>
    public static string? FromHeaders(HttpRequest request)
    {
        if (NonEmpty(request.Headers["apikey"]) is { } key)
            return key;
        var authorization = NonEmpty(request.Headers.Authorization);
        const string bearer = "Bearer ";
        if (authorization is not null && authorization.StartsWith(bearer, StringComparison.OrdinalIgnoreCase))
            return authorization[bearer.Length..].Trim();
        return null;
    }

    /// <summary>Query <c>?apikey=</c>, else <c>?token=</c>, else the headers.</summary>
    public static string? FromQueryOrHeaders(HttpRequest request) =>
        NonEmpty(request.Query["apikey"]) ?? NonEmpty(request.Query["token"]) ?? FromHeaders(request);

    private static string? NonEmpty(StringValues values)
    {
        var value = values.Count > 0 ? values[0] : null;
        return string.IsNullOrWhiteSpace(value) ? null : value;
    }
}

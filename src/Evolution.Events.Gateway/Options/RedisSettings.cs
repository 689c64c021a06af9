using System.Globalization;

namespace Evolution.Events.Gateway.Options;

/// <summary>
/// REDIS_URI, parsed: <c>redis://[[user]:password@]host[:port][/db]</c> or <c>rediss://…</c> (TLS).
/// <see cref="Password"/> is a secret: log <see cref="Display"/>, never the URI as given.
/// </summary>
public sealed class RedisSettings
{
    /// <summary>The rule printed when REDIS_URI is invalid.</summary>
    public const string Rule = "must be redis://[[user]:password@]host[:port][/db] or rediss://… (TLS), db an integer 0 or more";

    /// <summary>Host name or IP address (IPv6 without brackets).</summary>
    public required string Host { get; init; }

    /// <summary>TCP port (6379 when the URI names none).</summary>
    public int Port { get; init; } = 6379;

    /// <summary>ACL user name, or null (the default user).</summary>
    public string? User { get; init; }

    /// <summary>The password (URL-decoded), or null. Never log it.</summary>
    public string? Password { get; init; }

    /// <summary>The database number (0 when the URI names none).</summary>
    public int Database { get; init; }

    /// <summary>True for <c>rediss://</c>: TLS to Redis.</summary>
    public bool UseTls { get; init; }

    /// <summary>The URI with the password masked, for logs and errors.</summary>
    public string Display =>
        $"{(UseTls ? "rediss" : "redis")}://{(User is null && Password is null ? "" : $"{User}{(Password is null ? "" : ":***")}@")}"
        + $"{(Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]" : Host)}:{Port}/{Database}";

    /// <summary>Parses a REDIS_URI value; null when it is not one (the caller reports <see cref="Rule"/>).</summary>
    public static RedisSettings? TryParse(string raw)
    {
        if (!Uri.TryCreate(raw, UriKind.Absolute, out var uri) || uri.Scheme is not ("redis" or "rediss")
            || string.IsNullOrEmpty(uri.Host) || !string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment))
            return null;
        var path = uri.AbsolutePath.Trim('/');
        var database = 0;
        if (path.Length > 0 && !int.TryParse(path, NumberStyles.None, CultureInfo.InvariantCulture, out database))
            return null;
        string? user = null, password = null;
        if (uri.UserInfo.Length > 0)
        {
            var colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
            var rawUser = colon < 0 ? uri.UserInfo : uri.UserInfo[..colon];
            user = rawUser.Length == 0 ? null : Uri.UnescapeDataString(rawUser);
            password = colon < 0 ? null : Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
            if (colon < 0)
            {
                // redis://secret@host: a lone user-info part is the password (as redis-cli -u reads it).
                (user, password) = (null, user);
            }
        }
        return new RedisSettings
        {
            Host = uri.HostNameType == UriHostNameType.IPv6 ? uri.Host.Trim('[', ']') : uri.Host,
            Port = uri.IsDefaultPort || uri.Port < 0 ? 6379 : uri.Port,
            User = user,
            Password = password,
            Database = database,
            UseTls = uri.Scheme == "rediss",
        };
    }

    /// <summary>The value with any user-info part masked, for an error message.</summary>
    public static string Redact(string raw)
    {
        var at = raw.LastIndexOf('@');
        var start = raw.IndexOf("://", StringComparison.Ordinal);
        return at > 0 && start >= 0 && at > start ? raw[..(start + 3)] + "***" + raw[at..] : raw;
    }
}

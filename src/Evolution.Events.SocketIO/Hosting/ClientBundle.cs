using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.FileProviders;

namespace Evolution.Events.SocketIO.Hosting;

/// <summary>
/// The socket.io-client browser bundle, served under the Socket.IO path as socket.io's <c>serveClient</c> does:
/// <c>{path}/socket.io.js</c>, <c>.min.js</c>, <c>.esm.min.js</c>, <c>.msgpack.min.js</c> and their <c>.map</c>
/// files, so that <c>&lt;script src="/socket.io/socket.io.js"&gt;</c> works as it does with a Node server.
/// Set it as <see cref="SocketIOOptions.ClientBundle"/>; null (the default) serves nothing.
/// </summary>
/// <remarks>
/// The files come from the caller (typically the <c>dist/</c> folder of the <c>socket.io-client</c> npm package,
/// copied or embedded at build): the library does not ship a client. Each answer carries a strong
/// <c>ETag</c> (a hash of the file's bytes, so a new client version is never served from a stale cache),
/// <c>Cache-Control: public, max-age=0</c> (revalidate every time, as socket.io does), and a matching
/// <c>If-None-Match</c> gets <c>304</c>. Only GET and HEAD are answered; a file the provider lacks is
/// left to the Engine.IO server (which answers 400, as for any request that is not a handshake).
/// </remarks>
public sealed class ClientBundle
{
    /// <summary>The file names socket.io serves (its <c>serveClient</c> path pattern).</summary>
    public static IReadOnlyList<string> FileNames { get; } =
    [
        "socket.io.js", "socket.io.js.map",
        "socket.io.min.js", "socket.io.min.js.map",
        "socket.io.esm.min.js", "socket.io.esm.min.js.map",
        "socket.io.msgpack.min.js", "socket.io.msgpack.min.js.map",
    ];

    private readonly IFileProvider _files;
    private readonly ConcurrentDictionary<string, Entry?> _entries = new(StringComparer.Ordinal);

    /// <param name="files">Where the bundle files are, by the names in <see cref="FileNames"/>.</param>
    public ClientBundle(IFileProvider files)
    {
        ArgumentNullException.ThrowIfNull(files);
        _files = files;
    }

    /// <summary>The bundle from a folder, e.g. <c>node_modules/socket.io-client/dist</c>.</summary>
    public static ClientBundle FromDirectory(string distDirectory) =>
        new(new PhysicalFileProvider(Path.GetFullPath(distDirectory)));

    /// <summary>
    /// Answers the request if it asks for one of the bundle's files under <paramref name="basePath"/>; false
    /// (nothing written) otherwise.
    /// </summary>
    internal async ValueTask<bool> TryServeAsync(HttpContext context, PathString basePath)
    {
        var request = context.Request;
        if (!(HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method))
            || !request.Path.StartsWithSegments(basePath, out var rest)
            || rest.Value is not { Length: > 1 } name
            || name.IndexOf('/', 1) >= 0
            || !FileNames.Contains(name[1..], StringComparer.Ordinal))
        {
            return false;
        }

        var entry = _entries.GetOrAdd(name[1..], Load);
        if (entry is null)
        {
            return false;
        }

        var response = context.Response;
        response.Headers.CacheControl = "public, max-age=0";
        response.Headers.ETag = entry.ETag;
        var ifNoneMatch = request.Headers.IfNoneMatch.ToString();
        if (ifNoneMatch.Length > 0 && (ifNoneMatch == entry.ETag || ifNoneMatch == "W/" + entry.ETag || ifNoneMatch == "*"))
        {
            response.StatusCode = StatusCodes.Status304NotModified;
            return true;
        }

        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = entry.ContentType;
        response.ContentLength = entry.Bytes.Length;
        if (HttpMethods.IsGet(request.Method))
        {
            await response.Body.WriteAsync(entry.Bytes, context.RequestAborted);
        }

        return true;
    }

    private Entry? Load(string name)
    {
        var file = _files.GetFileInfo(name);
        if (!file.Exists || file.IsDirectory)
        {
            return null;
        }

        using var stream = file.CreateReadStream();
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        var bytes = copy.ToArray();
        var etag = "\"" + Convert.ToHexStringLower(SHA256.HashData(bytes).AsSpan(0, 12)) + "\"";
        var type = name.EndsWith(".map", StringComparison.Ordinal)
            ? "application/json; charset=utf-8"
            : "application/javascript; charset=utf-8";
        return new Entry(bytes, etag, type);
    }

    private sealed record Entry(byte[] Bytes, string ETag, string ContentType);
}

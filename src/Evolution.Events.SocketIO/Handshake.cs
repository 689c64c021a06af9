using System.Text.Json.Nodes;
using Evolution.Events.EngineIO;

namespace Evolution.Events.SocketIO;

/// <summary>What a socket's client showed when it connected: the HTTP handshake and the CONNECT auth payload.</summary>
public sealed class Handshake
{
    internal Handshake(EngineRequest request, EngineRequest connectRequest, JsonObject auth)
    {
        Request = request;
        ConnectRequest = connectRequest;
        Auth = auth;
    }

    /// <summary>The Engine.IO handshake request (the one that created the session).</summary>
    public EngineRequest Request { get; }

    /// <summary>
    /// The request that carried this socket's CONNECT packet: the polling POST, or the WebSocket's request (the
    /// upgrade, or the handshake of a session that began on WebSocket). The same client may send later requests
    /// with other query parameters or headers, and anyone who learns the session id (it is in every polling URL)
    /// can send a CONNECT on it, so a credential sent in the query or a header should be read here, not from
    /// <see cref="Request"/>, <see cref="Query"/> or <see cref="Headers"/>.
    /// </summary>
    public EngineRequest ConnectRequest { get; }

    /// <summary>The headers of the handshake request (see <see cref="ConnectRequest"/> for credentials).</summary>
    public IReadOnlyDictionary<string, string> Headers => Request.Headers;

    /// <summary>The query of the handshake request (see <see cref="ConnectRequest"/> for credentials).</summary>
    public IReadOnlyDictionary<string, string> Query => Request.Query;

    /// <summary>The remote address as the server saw it (no proxy header is trusted here).</summary>
    public string? Address => Request.RemoteAddress?.ToString();

    /// <summary>When the Engine.IO handshake came in (socket.io's <c>handshake.time</c>).</summary>
    public DateTimeOffset Time => Request.Time;

    /// <summary>Whether the handshake came over TLS (socket.io's <c>handshake.secure</c>).</summary>
    public bool Secure => Request.Secure;

    /// <summary>The handshake request's URL: path and query string (socket.io's <c>handshake.url</c>).</summary>
    public string Url => Request.Url;

    /// <summary>The CONNECT payload (<c>{}</c> when the client sent none).</summary>
    public JsonObject Auth { get; }

    /// <summary>The auth field as a string, if the client sent it as one.</summary>
    public string? AuthString(string name) =>
        Auth[name] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}

using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using Evolution.Events.EngineIO;
using Evolution.Events.SocketIO.Protocol;

namespace Evolution.Events.SocketIO;

/// <summary>What a socket's client showed when it connected: the HTTP handshake and the CONNECT auth payload.</summary>
/// <remarks>
/// The auth payload is kept as its UTF-8 JSON (a few dozen bytes for the usual token) and parsed into
/// <see cref="Auth"/> on first use only: a <see cref="JsonObject"/> over the CONNECT packet's document costs about
/// 490 bytes, for as long as the socket lives. <see cref="AuthString"/> reads a field without parsing it.
/// </remarks>
public sealed class Handshake
{
    private static readonly byte[] EmptyAuth = "{}"u8.ToArray();

    private readonly byte[] _authJson;
    private JsonObject? _auth;

    internal Handshake(EngineRequest request, EngineRequest connectRequest, JsonObject auth)
    {
        Request = request;
        ConnectRequest = connectRequest;
        _authJson = Utf8(auth);
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

    /// <summary>
    /// The CONNECT payload (<c>{}</c> when the client sent none), parsed on first use; the same object afterwards,
    /// so a change made to it stays.
    /// </summary>
    public JsonObject Auth
    {
        get
        {
            if (Volatile.Read(ref _auth) is { } auth)
            {
                return auth;
            }

            var parsed = ParseAuth();
            return Interlocked.CompareExchange(ref _auth, parsed, null) ?? parsed;
        }
    }

    /// <summary>Whether <see cref="Auth"/> was parsed (diagnostics and tests: an untouched handshake keeps bytes only).</summary>
    internal bool AuthParsed => Volatile.Read(ref _auth) is not null;

    /// <summary>
    /// The auth field as a string, if the client sent it as one (a top-level field of the payload). Reads the kept
    /// bytes without parsing them into <see cref="Auth"/>, unless that was parsed already (and may have been changed).
    /// </summary>
    public string? AuthString(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (Volatile.Read(ref _auth) is { } auth)
        {
            return auth[name] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
        }

        var reader = new Utf8JsonReader(_authJson, new JsonReaderOptions { MaxDepth = SocketPacketLimits.MaxDepth });
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return null;
        }

        // the payload came from a parsed object (the decoder refuses duplicate fields): the first match is the one
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var match = reader.ValueTextEquals(name);
            reader.Read();
            if (match)
            {
                return reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
            }

            reader.Skip();
        }

        return null;
    }

    /// <summary>A copy of the auth payload that nobody else holds (for a socket's description to another node).</summary>
    internal JsonObject CopyAuth() =>
        Volatile.Read(ref _auth) is { } auth ? (JsonObject)auth.DeepClone() : ParseAuth();

    // parsed as the CONNECT packet was (the bytes were written from what the decoder gave)
    private JsonObject ParseAuth() =>
        JsonNode.Parse(_authJson, SocketPacketDecoder.NodeOptions, SocketPacketDecoder.DocumentOptions)!.AsObject();

    private static byte[] Utf8(JsonObject auth)
    {
        if (auth.Count == 0)
        {
            return EmptyAuth;
        }

        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, JsonArguments.WriterOptions))
        {
            auth.WriteTo(writer);
        }

        return buffer.WrittenSpan.ToArray();
    }
}

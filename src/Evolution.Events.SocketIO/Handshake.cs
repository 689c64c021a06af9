using System.Text.Json.Nodes;
using Evolution.Events.EngineIO;

namespace Evolution.Events.SocketIO;

/// <summary>What a socket's client showed when it connected: the HTTP handshake and the CONNECT auth payload.</summary>
public sealed class Handshake
{
    internal Handshake(EngineRequest request, JsonObject auth)
    {
        Request = request;
        Auth = auth;
    }

    public EngineRequest Request { get; }

    public IReadOnlyDictionary<string, string> Headers => Request.Headers;

    public IReadOnlyDictionary<string, string> Query => Request.Query;

    /// <summary>The remote address as the server saw it (no proxy header is trusted here).</summary>
    public string? Address => Request.RemoteAddress?.ToString();

    public DateTimeOffset Time => Request.Time;

    public bool Secure => Request.Secure;

    public string Url => Request.Url;

    /// <summary>The CONNECT payload (<c>{}</c> when the client sent none).</summary>
    public JsonObject Auth { get; }

    /// <summary>The auth field as a string, if the client sent it as one.</summary>
    public string? AuthString(string name) =>
        Auth[name] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}

namespace Evolution.Events.EngineIO;

/// <summary>What happens when a session's bounded outbound queue is full.</summary>
public enum OverflowPolicy
{
    /// <summary>Close that session (reason <see cref="EngineCloseReason.SlowConsumer"/>), with a logged warning. Default.</summary>
    Disconnect,

    /// <summary>Drop the packet that did not fit and keep the session.</summary>
    DropNewest,
}

/// <summary>Engine.IO server options. Defaults are engine.io's where it has one.</summary>
public sealed class EngineIOOptions
{
    /// <summary>How often the server pings (ms). Default 25000.</summary>
    public int PingInterval { get; set; } = 25_000;

    /// <summary>How long to wait for the pong (ms). Default 20000.</summary>
    public int PingTimeout { get; set; } = 20_000;

    /// <summary>Largest message or polling POST body a client may send (bytes). Default 1000000.</summary>
    public int MaxPayload { get; set; } = 1_000_000;

    /// <summary>How long an upgrade may take between the probe and the upgrade packet (ms). Default 10000.</summary>
    public int UpgradeTimeout { get; set; } = 10_000;

    /// <summary>Whether the HTTP long-polling transport is served (engine.io's <c>transports</c> includes <c>polling</c>). Default true.</summary>
    public bool AllowPolling { get; set; } = true;

    /// <summary>Whether the WebSocket transport is served, for a direct connection or an upgrade. Default true.</summary>
    public bool AllowWebSocket { get; set; } = true;

    /// <summary>Whether a polling session may upgrade to WebSocket. Default true.</summary>
    public bool AllowUpgrades { get; set; } = true;

    /// <summary>
    /// Whether Engine.IO 3 clients (<c>EIO=3</c>: Socket.IO 2.x clients) are served, as engine.io's
    /// <c>allowEIO3</c>. Default false: they are refused (<c>400</c>, code 5). Only the value <c>3</c> asks for
    /// revision 3; a missing or unknown <c>EIO</c> is refused either way.
    /// </summary>
    public bool AllowEIO3 { get; set; }

    /// <summary>Allowed CORS origins for polling; <c>*</c> allows any. Empty: no CORS headers.</summary>
    public IList<string> CorsOrigins { get; } = new List<string>();

    /// <summary>Whether polling CORS responses allow credentials (echoes the origin instead of <c>*</c>).</summary>
    public bool CorsCredentials { get; set; }

    /// <summary>Most packets one session may have queued before the overflow policy applies. Default 4096.</summary>
    public int MaxQueuedPackets { get; set; } = 4096;

    /// <summary>Most bytes one session may have queued before the overflow policy applies. Default 8 MiB.</summary>
    public long MaxQueuedBytes { get; set; } = 8L * 1024 * 1024;

    /// <summary>What happens when a session's outbound queue is full (<see cref="MaxQueuedPackets"/>, <see cref="MaxQueuedBytes"/>). Default <see cref="OverflowPolicy.Disconnect"/>.</summary>
    public OverflowPolicy OverflowPolicy { get; set; } = OverflowPolicy.Disconnect;

    /// <summary>Longest a server-closed polling session waits for the client's last poll (ms). Default 10000.</summary>
    public int CloseTimeout { get; set; } = 10_000;

    /// <summary>
    /// Most characters of request headers (names and values) a session keeps from its handshake
    /// (<see cref="EngineRequest.Headers"/>); a header that does not fit is left out. Default 8192.
    /// </summary>
    public int MaxHandshakeHeaderChars { get; set; } = 8192;

    /// <summary>
    /// How long a session a client closed over polling still answers one poll that crossed its close
    /// packet (ms); see <see cref="ClosedPollTombstones"/>. Internal: tests shorten it.
    /// </summary>
    internal int ClosedPollGraceMs { get; set; } = 2_000;

    /// <summary>Most sessions remembered that way at once.</summary>
    internal int ClosedPollCapacity { get; set; } = 1024;

    /// <summary>
    /// WebSocket <c>permessage-deflate</c> (RFC 7692), as engine.io's <c>perMessageDeflate</c>: null (default) never
    /// negotiates it; set, a client's offer is accepted and messages of at least its threshold are compressed.
    /// Costs CPU per compressed message, no memory per idle socket (see <see cref="PerMessageDeflateOptions"/>).
    /// </summary>
    public PerMessageDeflateOptions? PerMessageDeflate { get; set; }

    /// <summary>
    /// Called before a new session is created (handshake). Return null to accept, or a refusal
    /// (HTTP status and message) — e.g. a connection limit or a rate limit.
    /// </summary>
    public Func<Microsoft.AspNetCore.Http.HttpContext, ValueTask<HandshakeRefusal?>>? AllowRequest { get; set; }

    /// <summary>
    /// HTTP compression of polling responses, as engine.io's <c>httpCompression</c>: on by default with a threshold of
    /// 1024 bytes; null turns it off.
    /// </summary>
    public HttpCompressionOptions? HttpCompression { get; set; } = new();

    internal void Validate()
    {
        if (PingInterval <= 0 || PingTimeout <= 0 || MaxPayload <= 0 || UpgradeTimeout <= 0)
        {
            throw new InvalidOperationException("Engine.IO timings and MaxPayload must be positive");
        }

        if (MaxHandshakeHeaderChars < 0)
        {
            throw new InvalidOperationException("Engine.IO MaxHandshakeHeaderChars must not be negative");
        }

        if (ClosedPollGraceMs <= 0 || ClosedPollCapacity <= 0)
        {
            throw new InvalidOperationException("Engine.IO closed-poll grace and capacity must be positive");
        }

        if (MaxQueuedPackets <= 0 || MaxQueuedBytes <= 0)
        {
            throw new InvalidOperationException("Engine.IO queue bounds must be positive");
        }

        if (HttpCompression is { Threshold: < 0 })
        {
            throw new InvalidOperationException("Engine.IO HttpCompression.Threshold must not be negative");
        }
        PerMessageDeflate?.Validate();
    }
}

/// <summary>A refused handshake: the HTTP status and the message of the JSON body.</summary>
public sealed record HandshakeRefusal(int StatusCode, string Message);

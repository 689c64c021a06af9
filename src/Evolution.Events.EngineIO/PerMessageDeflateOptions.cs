namespace Evolution.Events.EngineIO;

/// <summary>
/// The WebSocket <c>permessage-deflate</c> extension (RFC 7692), as engine.io's <c>perMessageDeflate</c> option:
/// negotiated when a client offers it, messages of at least <see cref="Threshold"/> bytes compressed.
/// </summary>
/// <remarks>
/// The server always answers <c>server_no_context_takeover; client_no_context_takeover</c>: every message is
/// compressed and decompressed on its own, so a socket keeps no zlib context between messages (an idle socket
/// costs what an uncompressed one does), and a message sent to many sockets is compressed once and the
/// compressed bytes shared, like the uncompressed ones. The price is a lower ratio on small, repetitive messages
/// than a context kept for the connection's life would give.
/// </remarks>
public sealed class PerMessageDeflateOptions
{
    private readonly Transports.WebSocketDeflate?[] _byWindowBits = new Transports.WebSocketDeflate?[16];

    /// <summary>Messages below this many bytes are sent uncompressed. Default 1024 (engine.io's).</summary>
    public int Threshold { get; set; } = 1024;

    /// <summary>The zlib level, 1 (fastest) to 9 (smallest). Default 6 (zlib's default, as engine.io's).</summary>
    public int CompressionLevel { get; set; } = 6;

    internal void Validate()
    {
        if (Threshold < 0)
        {
            throw new InvalidOperationException("PerMessageDeflate.Threshold must not be negative");
        }

        if (CompressionLevel is < 1 or > 9)
        {
            throw new InvalidOperationException("PerMessageDeflate.CompressionLevel must be between 1 and 9");
        }
    }

    /// <summary>The negotiated extension for a client's window limit (one shared instance per limit: sockets hold no state of their own).</summary>
    internal Transports.WebSocketDeflate For(int serverMaxWindowBits)
    {
        var deflate = Volatile.Read(ref _byWindowBits[serverMaxWindowBits]);
        if (deflate is null || deflate.Threshold != Threshold || deflate.CompressionLevel != CompressionLevel)
        {
            deflate = new Transports.WebSocketDeflate(Threshold, CompressionLevel, serverMaxWindowBits);
            Volatile.Write(ref _byWindowBits[serverMaxWindowBits], deflate);
        }

        return deflate;
    }
}

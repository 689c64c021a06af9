using Evolution.Events.EngineIO;
using Evolution.Events.SocketIO.Protocol;

namespace Evolution.Events.SocketIO;

/// <summary>Socket.IO server options (the Engine.IO ones under <see cref="Engine"/>).</summary>
public sealed class SocketIOOptions
{
    /// <summary>The options of the underlying Engine.IO server (heartbeat, payload limit, transports, CORS, outbound queue).</summary>
    public EngineIOOptions Engine { get; set; } = new();

    /// <summary>Milliseconds a client has to join a namespace before its connection is closed. Default 45000.</summary>
    public int ConnectTimeout { get; set; } = 45_000;

    /// <summary>Drop a dynamic child namespace when its last socket leaves. Default true.</summary>
    public bool CleanupEmptyChildNamespaces { get; set; } = true;

    /// <summary>Most binary attachments one packet may announce. Default 64.</summary>
    public int MaxAttachments { get; set; } = 64;

    /// <summary>Connection state recovery; null (the default) turns it off, as in socket.io.</summary>
    public ConnectionStateRecoveryOptions? ConnectionStateRecovery { get; set; }

    /// <summary>
    /// Most bytes the attachments of one binary packet may total while it is reassembled; past it the
    /// connection is closed. Attachments of a packet for a namespace the connection has not joined are
    /// never kept. Default 16 MiB.
    /// </summary>
    public long MaxAttachmentBytes { get; set; } = 16L * 1024 * 1024;

    /// <summary>
    /// Most connections that have not joined a namespace yet (within <see cref="ConnectTimeout"/>);
    /// when one more arrives, the oldest of them is closed. 0: no bound. Default 10000.
    /// </summary>
    public int MaxPendingConnections { get; set; } = 10_000;

    /// <summary>
    /// The socket.io-client browser bundle to serve under the Socket.IO path (socket.io's <c>serveClient</c>):
    /// <c>/socket.io/socket.io.js</c> and the other standard files. Null (the default): not served.
    /// </summary>
    public Hosting.ClientBundle? ClientBundle { get; set; }

    /// <summary>
    /// How packets are encoded on the wire (socket.io's <c>parser</c> option); every client must use the same one.
    /// Default: <see cref="DefaultSocketIOParser"/> (socket.io-parser: text plus binary attachments).
    /// </summary>
    public ISocketIOParser Parser { get; set; } = DefaultSocketIOParser.Instance;

    internal SocketPacketLimits PacketLimits => _limits ??= new SocketPacketLimits(MaxAttachments);

    private SocketPacketLimits? _limits;
}

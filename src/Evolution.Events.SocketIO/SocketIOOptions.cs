using Evolution.Events.EngineIO;
using Evolution.Events.SocketIO.Protocol;

namespace Evolution.Events.SocketIO;

/// <summary>Socket.IO server options (the Engine.IO ones under <see cref="Engine"/>).</summary>
public sealed class SocketIOOptions
{
    public EngineIOOptions Engine { get; set; } = new();

    /// <summary>Milliseconds a client has to join a namespace before its connection is closed. Default 45000.</summary>
    public int ConnectTimeout { get; set; } = 45_000;

    /// <summary>Drop a dynamic child namespace when its last socket leaves. Default true.</summary>
    public bool CleanupEmptyChildNamespaces { get; set; } = true;

    public int MaxAttachments { get; set; } = 64;

    /// <summary>Connection state recovery; null (the default) turns it off, as in socket.io.</summary>
    public ConnectionStateRecoveryOptions? ConnectionStateRecovery { get; set; }

    internal SocketPacketLimits PacketLimits => _limits ??= new SocketPacketLimits(MaxAttachments);

    private SocketPacketLimits? _limits;
}

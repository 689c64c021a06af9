namespace Evolution.Events.EngineIO.Protocol;

/// <summary>Engine.IO 4 packet types; the digit is the first character of a text packet.</summary>
public enum EnginePacketType : byte
{
    /// <summary>The server's handshake (sid, upgrades, ping interval/timeout, max payload).</summary>
    Open = 0,

    /// <summary>Either side closes the session.</summary>
    Close = 1,

    /// <summary>A heartbeat (from the server in revision 4, from the client in revision 3); a <c>2probe</c> tests an upgrade.</summary>
    Ping = 2,

    /// <summary>The answer to a ping (<c>3probe</c> answers a probe).</summary>
    Pong = 3,

    /// <summary>Application data: a Socket.IO packet, text or binary.</summary>
    Message = 4,

    /// <summary>The client switches the session to the probed WebSocket.</summary>
    Upgrade = 5,

    /// <summary>Nothing: ends a pending poll during an upgrade.</summary>
    Noop = 6,
}

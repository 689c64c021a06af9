namespace Evolution.Events.EngineIO.Protocol;

/// <summary>Engine.IO 4 packet types; the digit is the first character of a text packet.</summary>
public enum EnginePacketType : byte
{
    Open = 0,
    Close = 1,
    Ping = 2,
    Pong = 3,
    Message = 4,
    Upgrade = 5,
    Noop = 6,
}

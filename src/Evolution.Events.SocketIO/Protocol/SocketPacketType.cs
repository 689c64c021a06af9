namespace Evolution.Events.SocketIO.Protocol;

/// <summary>Socket.IO 5 packet types.</summary>
public enum SocketPacketType : byte
{
    Connect = 0,
    Disconnect = 1,
    Event = 2,
    Ack = 3,
    ConnectError = 4,
    BinaryEvent = 5,
    BinaryAck = 6,
}

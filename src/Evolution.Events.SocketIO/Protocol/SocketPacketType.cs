namespace Evolution.Events.SocketIO.Protocol;

/// <summary>Socket.IO 5 packet types.</summary>
public enum SocketPacketType : byte
{
    /// <summary>Connect to a namespace (client), or the server's accept with the socket id.</summary>
    Connect = 0,

    /// <summary>Leave a namespace, either side.</summary>
    Disconnect = 1,

    /// <summary>An event with JSON arguments.</summary>
    Event = 2,

    /// <summary>The answer to an event that asked for one.</summary>
    Ack = 3,

    /// <summary>The server refused the namespace connection.</summary>
    ConnectError = 4,

    /// <summary>An event with binary arguments (sent as attachments).</summary>
    BinaryEvent = 5,

    /// <summary>An ack with binary arguments (sent as attachments).</summary>
    BinaryAck = 6,
}

namespace Evolution.Events.EngineIO;

/// <summary>
/// Receives what one session's client sends. <see cref="OnMessage"/> and <see cref="OnBinary"/> calls for one
/// session never overlap each other and come in the order the client sent; an implementation must not block
/// (they run on the transport's read loop). <see cref="OnClose"/> is different: it runs on whichever thread
/// closed the session (the heartbeat timer, a server-side close, a failed write, the read loop), so it can
/// overlap a running <see cref="OnMessage"/> call; an implementation must tolerate that.
/// </summary>
public interface IEngineSocketListener
{
    /// <summary>Called for each text message the client sent, in order.</summary>
    void OnMessage(EngineSocket socket, string text);

    /// <summary>Called for each binary message the client sent, in order.</summary>
    void OnBinary(EngineSocket socket, byte[] data);

    /// <summary>
    /// Called once, right after the listener is attached and the open packet queued, before any packet is read
    /// (Socket.IO joins an Engine.IO 3 client to the main namespace here). Its queued packets follow the open packet.
    /// </summary>
    void OnOpen(EngineSocket socket)
    {
    }

    /// <summary>Called once, when the session closes for any reason.</summary>
    void OnClose(EngineSocket socket, EngineCloseReason reason, string? description);
}

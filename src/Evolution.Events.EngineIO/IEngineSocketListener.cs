namespace Evolution.Events.EngineIO;

/// <summary>
/// Receives what one session's client sends. Calls for one session never overlap and come in the
/// order the client sent; an implementation must not block (it runs on the transport's read loop).
/// </summary>
public interface IEngineSocketListener
{
    void OnMessage(EngineSocket socket, string text);

    void OnBinary(EngineSocket socket, byte[] data);

    /// <summary>Called once, when the session closes for any reason.</summary>
    void OnClose(EngineSocket socket, EngineCloseReason reason, string? description);
}

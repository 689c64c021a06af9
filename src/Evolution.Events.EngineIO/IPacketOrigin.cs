namespace Evolution.Events.EngineIO;

/// <summary>Where a client's packet came from (a polling POST, a WebSocket): its request, copied on demand.</summary>
internal interface IPacketOrigin
{
    EngineRequest Request { get; }
}

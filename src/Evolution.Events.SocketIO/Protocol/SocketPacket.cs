using System.Text.Json.Nodes;

namespace Evolution.Events.SocketIO.Protocol;

/// <summary>
/// A decoded Socket.IO packet. <see cref="Data"/> is the JSON payload; for a binary packet whose
/// attachments have arrived, each placeholder has been replaced by a <see cref="JsonValue"/> holding a byte[].
/// </summary>
public sealed record SocketPacket(
    SocketPacketType Type,
    string Namespace,
    long? Id,
    JsonNode? Data,
    int Attachments = 0)
{
    /// <summary>The name of the main namespace.</summary>
    public const string MainNamespace = "/";
}

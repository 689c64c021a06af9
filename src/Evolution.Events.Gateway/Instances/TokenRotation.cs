using System.Globalization;
using System.Net.WebSockets;
using System.Text.Json;
using Evolution.Events.Gateway.Http;

namespace Evolution.Events.Gateway.Instances;

/// <summary>
/// What a socket that logged in with an instance's token is told when that token is rotated
/// (<c>POST /instance/{name}/token/rotate</c>), on every node: the event <see cref="EventName"/>, then a
/// disconnect. Socket.IO: the event, then a server-side namespace disconnect (<c>io server disconnect</c>: the
/// client does not reconnect by itself with the old token). Plain WebSocket: the same JSON as a text message, then
/// a close frame with <see cref="CloseStatus"/> and <see cref="CloseReason"/>. Sockets opened with the global key,
/// or keyless from WEBSOCKET_ALLOWED_HOSTS, stay.
/// </summary>
public static class TokenRotation
{
    /// <summary>The event name (Socket.IO) and <c>event</c> field (both transports).</summary>
    public const string EventName = "token.rotated";

    /// <summary>The plain-WebSocket close code (application range 4000-4999).</summary>
    public const WebSocketCloseStatus CloseStatus = (WebSocketCloseStatus)4001;

    /// <summary>The close reason, also the event's <c>data.reason</c>.</summary>
    public const string CloseReason = "instance token rotated: reconnect with the new token";

    /// <summary><c>{"event":"token.rotated","instance":…,"date_time":…,"data":{"reason":…}}</c> as UTF-8.</summary>
    public static byte[] Message(string instance, DateTimeOffset now) => JsonSerializer.SerializeToUtf8Bytes(new
    {
        @event = EventName,
        instance,
        date_time = now.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
        data = new { reason = CloseReason },
    }, ApiError.Json);
}

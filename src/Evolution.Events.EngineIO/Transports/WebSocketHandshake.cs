using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Evolution.Events.EngineIO.Transports;

/// <summary>
/// The server side of the WebSocket opening handshake (RFC 6455 over HTTP/1.1 upgrade, RFC 8441 over
/// HTTP/2 extended CONNECT), giving the raw duplex stream that <see cref="WebSocketFrameReader"/> and
/// <see cref="WebSocketFrameWriter"/> speak. The only extension negotiated is <c>permessage-deflate</c>, when the
/// server allows it (<see cref="PerMessageDeflateOptions"/>) and the client offers it.
/// </summary>
internal static class WebSocketHandshake
{
    private const string Guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

    public static bool IsWebSocketRequest(HttpContext context)
    {
        var connect = context.Features.Get<IHttpExtendedConnectFeature>();
        if (connect is { IsExtendedConnect: true })
        {
            return string.Equals(connect.Protocol, "websocket", StringComparison.OrdinalIgnoreCase);
        }

        var upgrade = context.Features.Get<IHttpUpgradeFeature>();
        return upgrade is { IsUpgradableRequest: true }
            && HttpMethods.IsGet(context.Request.Method)
            && context.Request.Headers.Upgrade.ToString().Contains("websocket", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>An accepted WebSocket: its stream, and <c>permessage-deflate</c> when it was negotiated.</summary>
    public readonly record struct Accepted(Stream Stream, WebSocketDeflate? Deflate);

    /// <summary>
    /// Completes the handshake and returns the stream, or null after answering 400 to a malformed one. With
    /// <paramref name="deflate"/>, a client's <c>permessage-deflate</c> offer is answered; an offer that cannot be
    /// accepted (unknown or invalid parameters) is declined, the connection goes on uncompressed.
    /// </summary>
    public static async Task<Accepted?> AcceptAsync(HttpContext context, PerMessageDeflateOptions? deflate)
    {
        var headers = context.Request.Headers;
        if (headers.SecWebSocketVersion.ToString() != "13")
        {
            context.Response.Headers.SecWebSocketVersion = "13";
            await EngineHttp.WriteErrorAsync(context, EngineErrorCode.BadRequest, "Unsupported WebSocket version");
            return null;
        }

        var connect = context.Features.Get<IHttpExtendedConnectFeature>();
        if (connect is { IsExtendedConnect: true })
        {
            var negotiatedOverHttp2 = Negotiate(context, deflate);
            return new Accepted(await connect.AcceptAsync(), negotiatedOverHttp2);
        }

        var key = headers.SecWebSocketKey.ToString();
        if (!IsValidKey(key))
        {
            await EngineHttp.WriteErrorAsync(context, EngineErrorCode.BadRequest, "Invalid Sec-WebSocket-Key");
            return null;
        }

        var negotiated = Negotiate(context, deflate);
        var response = context.Response.Headers;
        response.Connection = "Upgrade";
        response.Upgrade = "websocket";
        response.SecWebSocketAccept = AcceptKey(key);
        return new Accepted(await context.Features.Get<IHttpUpgradeFeature>()!.UpgradeAsync(), negotiated);
    }

    private static WebSocketDeflate? Negotiate(HttpContext context, PerMessageDeflateOptions? deflate)
    {
        var offers = context.Request.Headers.SecWebSocketExtensions;
        if (deflate is null || offers.Count == 0)
        {
            return null;
        }

        var negotiated = WebSocketDeflate.Negotiate(offers, deflate, out var answer);
        if (negotiated is not null)
        {
            context.Response.Headers.SecWebSocketExtensions = answer;
        }

        return negotiated;
    }

    private static bool IsValidKey(string key)
    {
        Span<byte> decoded = stackalloc byte[24];
        return key.Length == 24 && Convert.TryFromBase64String(key, decoded, out var n) && n == 16;
    }

    // RFC 6455 fixes SHA-1 for Sec-WebSocket-Accept; it proves the handshake, it protects nothing.
#pragma warning disable CA5350
    private static string AcceptKey(string key) =>
        Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + Guid)));
#pragma warning restore CA5350
}

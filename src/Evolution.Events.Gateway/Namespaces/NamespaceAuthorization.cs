using Evolution.Events.Gateway.Auth;
using Evolution.Events.Gateway.Instances;
using Evolution.Events.SocketIO;
using Evolution.Events.SocketIO.Protocol;

namespace Evolution.Events.Gateway.Namespaces;

/// <summary>
/// Who may open which Socket.IO namespace: the global key any valid one (and <c>/</c>), an
/// instance token only <c>/{its instance}</c>. The key comes from the CONNECT auth payload
/// (<c>apikey</c> or <c>token</c>), or the query (<c>?apikey=</c>/<c>?token=</c>) or <c>apikey</c> header of the
/// request that carried the CONNECT (see <see cref="KeyOf"/>). With WEBSOCKET_ALLOWED_HOSTS, a client from a
/// listed address that presents no key may open an existing instance's namespace (never <c>/</c>).
/// </summary>
public sealed class NamespaceAuthorization(GatewayAuthorizer authorizer)
{
    public const string InvalidApiKey = "Invalid API key";
    public const string ForbiddenNamespace = "Forbidden namespace";

    /// <summary>Middleware of the main namespace: the global key only.</summary>
    public ValueTask<ConnectError?> AuthorizeMain(Socket socket)
    {
        var auth = Authenticate(socket);
        return ValueTask.FromResult(auth.Kind switch
        {
            AuthKind.Global => null,
            AuthKind.Instance => new ConnectError(ForbiddenNamespace),
            _ => new ConnectError(InvalidApiKey),
        });
    }

    /// <summary>Middleware of the instance namespaces <c>/{name}</c>.</summary>
    public ValueTask<ConnectError?> AuthorizeInstance(Socket socket)
    {
        var key = KeyOf(socket.Handshake);
        // WEBSOCKET_ALLOWED_HOSTS: no key at all, from a listed address (the request that carried the CONNECT)
        if (key is null && authorizer.AllowsKeyless(socket.Handshake.ConnectRequest.RemoteAddress, InstanceOf(socket.Namespace)))
            return ValueTask.FromResult<ConnectError?>(null);
        var auth = authorizer.Authenticate(key);
        var decision = GatewayAuthorizer.Authorize(auth, InstanceOf(socket.Namespace));
        return ValueTask.FromResult(decision switch
        {
            AccessDecision.Allowed => null,
            AccessDecision.Forbidden => new ConnectError(ForbiddenNamespace),
            _ => new ConnectError(InvalidApiKey),
        });
    }

    /// <summary>
    /// After a token rotation: every socket of the instance's namespace whose key no longer opens it (it logged in
    /// with the old token) gets <see cref="TokenRotation.EventName"/>, then a server-side disconnect.
    /// Sockets of the global key, or keyless (WEBSOCKET_ALLOWED_HOSTS), stay.
    /// </summary>
    public void DisconnectRevoked(Namespace nsp, DateTimeOffset now)
    {
        var instance = InstanceOf(nsp);
        var message = TokenRotation.Message(instance, now);
        foreach (var socket in nsp.SocketsById.Values)
        {
            if (KeyOf(socket.Handshake) is not { } key || GatewayAuthorizer.CanAccessInstance(authorizer.Authenticate(key), instance))
                continue;
            socket.Emit(TokenRotation.EventName, new RawJson(message));
            socket.Disconnect();
        }
    }

    /// <summary>A namespace is an instance namespace when its name (without the slash) is a valid instance name.</summary>
    public static bool IsInstanceNamespace(string nsp) => nsp.Length > 1 && InstanceNames.IsValid(nsp[1..]);

    public static string InstanceOf(Namespace nsp) => nsp.Name[1..];

    private AuthResult Authenticate(Socket socket) => authorizer.Authenticate(KeyOf(socket.Handshake));

    /// <summary>
    /// The key this login carries: its CONNECT auth payload, else the query or header of the request that carried
    /// the CONNECT (<see cref="Handshake.ConnectRequest"/>), never the Engine.IO handshake's: a session id is in
    /// every polling URL, and whoever learns it must not log in with the key of the client that opened it.
    /// socket.io-client sends its <c>query</c> and <c>extraHeaders</c> with every request, so they are there.
    /// </summary>
    internal static string? KeyOf(Handshake handshake) =>
        NonEmpty(handshake.AuthString("apikey"))
        ?? NonEmpty(handshake.AuthString("token"))
        ?? NonEmpty(handshake.ConnectRequest.Query.GetValueOrDefault("apikey"))
        ?? NonEmpty(handshake.ConnectRequest.Query.GetValueOrDefault("token"))
        ?? NonEmpty(handshake.ConnectRequest.Headers.GetValueOrDefault("apikey"));

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;
}

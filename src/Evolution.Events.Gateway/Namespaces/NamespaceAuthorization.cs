using Evolution.Events.Gateway.Auth;
using Evolution.Events.Gateway.Instances;
using Evolution.Events.SocketIO;

namespace Evolution.Events.Gateway.Namespaces;

/// <summary>
/// Who may open which Socket.IO namespace: the global key any valid one (and <c>/</c>), an
/// instance token only <c>/{its instance}</c>. The key comes from the CONNECT auth payload
/// (<c>apikey</c> or <c>token</c>), the query (<c>?apikey=</c>/<c>?token=</c>) or the <c>apikey</c> header.
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
        var auth = Authenticate(socket);
        var decision = GatewayAuthorizer.Authorize(auth, InstanceOf(socket.Namespace));
        return ValueTask.FromResult(decision switch
        {
            AccessDecision.Allowed => null,
            AccessDecision.Forbidden => new ConnectError(ForbiddenNamespace),
            _ => new ConnectError(InvalidApiKey),
        });
    }

    /// <summary>A namespace is an instance namespace when its name (without the slash) is a valid instance name.</summary>
    public static bool IsInstanceNamespace(string nsp) => nsp.Length > 1 && InstanceNames.IsValid(nsp[1..]);

    public static string InstanceOf(Namespace nsp) => nsp.Name[1..];

    private AuthResult Authenticate(Socket socket) => authorizer.Authenticate(KeyOf(socket.Handshake));

    internal static string? KeyOf(Handshake handshake) =>
        NonEmpty(handshake.AuthString("apikey"))
        ?? NonEmpty(handshake.AuthString("token"))
        ?? NonEmpty(handshake.Query.GetValueOrDefault("apikey"))
        ?? NonEmpty(handshake.Query.GetValueOrDefault("token"))
        ?? NonEmpty(handshake.Headers.GetValueOrDefault("apikey"));

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;
}

using System.Net;
using System.Security.Cryptography;
using System.Text;
using Evolution.Events.Gateway.Instances;
using Evolution.Events.Gateway.Options;

namespace Evolution.Events.Gateway.Auth;

/// <summary>
/// The one place that decides who a key belongs to and what it may open. Shared by REST,
/// ingestion, plain WebSocket and Socket.IO namespaces. Keys are compared in constant time
/// and never logged.
/// </summary>
public sealed class GatewayAuthorizer(GatewayOptions options, InstanceRegistry registry)
{
    private readonly byte[] _globalKeyHash = SHA256.HashData(Encoding.UTF8.GetBytes(options.ApiKey));

    /// <summary>Identifies a key: the global key, an instance token, or nothing.</summary>
    public AuthResult Authenticate(string? key)
    {
        if (string.IsNullOrEmpty(key))
            return AuthResult.None;
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(key));
        if (CryptographicOperations.FixedTimeEquals(hash, _globalKeyHash))
            return AuthResult.Global;
        return registry.FindByToken(key) is { } instance ? AuthResult.ForInstance(instance) : AuthResult.None;
    }

    /// <summary>
    /// WEBSOCKET_ALLOWED_HOSTS: whether a client that presented no key may open the events of
    /// <paramref name="instanceName"/>: only when its address (the TCP peer, or the client a TRUSTED_PROXIES peer
    /// names in X-Forwarded-For) is listed and the instance exists. The caller decides where this applies:
    /// instance-scoped WebSocket subscriptions only, never the main namespace nor REST.
    /// </summary>
    public bool AllowsKeyless(IPAddress? clientAddress, string instanceName) =>
        options.AllowedHosts.Count > 0
        && IsInList(options.AllowedHosts, clientAddress)
        && registry.TryGet(instanceName, out _);

    /// <summary>Whether an address is in one of the networks; an IPv4-mapped IPv6 address counts as its IPv4 form.</summary>
    public static bool IsInList(IReadOnlyList<IPNetwork> networks, IPAddress? address)
    {
        if (address is null)
            return false;
        if (address.IsIPv4MappedToIPv6)
            address = address.MapToIPv4();
        foreach (var network in networks)
        {
            if (network.Contains(address))
                return true;
        }
        return false;
    }

    /// <summary>The global key opens every instance; an instance token only its own.</summary>
    public static bool CanAccessInstance(AuthResult auth, string instanceName) => auth.Kind switch
    {
        AuthKind.Global => true,
        AuthKind.Instance => string.Equals(auth.InstanceName, instanceName, StringComparison.Ordinal),
        _ => false,
    };

    /// <summary>Allowed, 401 (no valid key) or 403 (valid key, other instance).</summary>
    public static AccessDecision Authorize(AuthResult auth, string instanceName)
    {
        if (!auth.IsAuthenticated)
            return AccessDecision.Unauthenticated;
        return CanAccessInstance(auth, instanceName) ? AccessDecision.Allowed : AccessDecision.Forbidden;
    }

    /// <summary>Allowed for the global key only (create, list, delete instances).</summary>
    public static AccessDecision RequireGlobal(AuthResult auth) => auth.Kind switch
    {
        AuthKind.Global => AccessDecision.Allowed,
        AuthKind.Instance => AccessDecision.Forbidden,
        _ => AccessDecision.Unauthenticated,
    };
}

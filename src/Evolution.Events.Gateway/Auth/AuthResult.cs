namespace Evolution.Events.Gateway.Auth;

/// <summary>Who presented a key: nobody valid, the global key, or an instance's token.</summary>
public enum AuthKind
{
    None,
    Global,
    Instance,
}

/// <summary>The outcome of <see cref="GatewayAuthorizer.Authenticate"/>.</summary>
public readonly record struct AuthResult(AuthKind Kind, string? InstanceName)
{
    public static AuthResult None => new(AuthKind.None, null);

    public static AuthResult Global => new(AuthKind.Global, null);

    public static AuthResult ForInstance(string name) => new(AuthKind.Instance, name);

    public bool IsAuthenticated => Kind != AuthKind.None;

    public bool IsGlobal => Kind == AuthKind.Global;
}

/// <summary>The outcome of <see cref="GatewayAuthorizer.Authorize"/>: maps to 200 / 401 / 403.</summary>
public enum AccessDecision
{
    Allowed,
    Unauthenticated,
    Forbidden,
}

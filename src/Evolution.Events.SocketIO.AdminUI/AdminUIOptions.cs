namespace Evolution.Events.SocketIO.AdminUI;

/// <summary>What the UI may see: everything (<see cref="Development"/>) or the server statistics only.</summary>
public enum AdminUIMode
{
    /// <summary>
    /// Sockets, rooms and events as they happen (<c>all_sockets</c>, <c>socket_connected</c>, <c>room_joined</c>,
    /// <c>event_received</c>, …) plus the server statistics. Costs one admin event per socket connect, disconnect,
    /// room change and client event.
    /// </summary>
    Development,

    /// <summary>The server statistics only (<c>server_stats</c> every <see cref="AdminUIOptions.StatsInterval"/>).</summary>
    Production,
}

/// <summary>What the UI's login form sent (its <c>auth</c> payload), for <see cref="AdminUIOptions.Authenticate"/>.</summary>
/// <param name="Username">The username field (null when not sent as a string).</param>
/// <param name="Password">The password field (null when not sent as a string).</param>
/// <param name="Socket">The admin socket being authenticated (its handshake: address, headers).</param>
public sealed record AdminUICredentials(string? Username, string? Password, Socket Socket);

/// <summary>Options of <see cref="AdminUIInstrumentation.Instrument(SocketIOServer, AdminUIOptions, Microsoft.Extensions.Logging.ILoggerFactory?)"/> (<c>instrument(io, opts)</c> of @socket.io/admin-ui).</summary>
public sealed class AdminUIOptions
{
    /// <summary>The namespace the UI connects to (socket.io's <c>namespaceName</c>, default <c>/admin</c>).</summary>
    public string NamespaceName { get; set; } = "/admin";

    /// <summary>
    /// Checks the login form's credentials: true lets the UI in (it then gets a session id that logs it in again
    /// without the form, kept in memory on this node for <see cref="SessionDuration"/>); false refuses it with
    /// <c>invalid credentials</c>, the message the UI shows as "Invalid credentials". Required unless
    /// <see cref="AllowAnonymous"/> is set. Compare secrets in constant time.
    /// </summary>
    public Func<AdminUICredentials, ValueTask<bool>>? Authenticate { get; set; }

    /// <summary>Lets anyone in without credentials (socket.io's <c>auth: false</c>). Off by default.</summary>
    public bool AllowAnonymous { get; set; }

    /// <summary>No commands from the UI (emit, join, leave, disconnect): it only watches (socket.io's <c>readonly</c>).</summary>
    public bool ReadOnly { get; set; }

    /// <summary>What the UI may see (socket.io's <c>mode</c>); <see cref="AdminUIMode.Development"/> by default.</summary>
    public AdminUIMode Mode { get; set; } = AdminUIMode.Development;

    /// <summary>This node's name in the UI's server list (socket.io's <c>serverId</c>); the host name when null.</summary>
    public string? ServerId { get; set; }

    /// <summary>How often <c>server_stats</c> is emitted (socket.io: every 2 s).</summary>
    public TimeSpan StatsInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long a session id given after a login stays valid (socket.io's RedisStore: one day).</summary>
    public TimeSpan SessionDuration { get; set; } = TimeSpan.FromDays(1);

    /// <summary>At most this many live sessions are kept; past it a login still works but gets no session id.</summary>
    public int MaxSessions { get; set; } = 1000;
}

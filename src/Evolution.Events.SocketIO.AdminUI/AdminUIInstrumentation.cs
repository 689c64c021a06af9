using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Evolution.Events.EngineIO;
using Evolution.Events.SocketIO.Adapters;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Evolution.Events.SocketIO.AdminUI;

/// <summary>
/// The server side of the official Socket.IO Admin UI (<c>@socket.io/admin-ui</c> 0.5's <c>instrument(io, opts)</c>):
/// a namespace (<c>/admin</c>) behind an authentication check, where the UI gets its configuration, the server's
/// statistics every 2 s and, in <see cref="AdminUIMode.Development"/>, every socket, room and event of every
/// namespace as they happen, and from where it sends its commands (emit, join, leave, disconnect) unless
/// <see cref="AdminUIOptions.ReadOnly"/>.
/// </summary>
/// <remarks>
/// Built on the library's public API only. With a cluster adapter, what the admin namespace emits reaches the UIs
/// connected to every node, and each node emits its own <c>server_stats</c> (the UI lists the servers by
/// <c>serverId</c>); <c>all_sockets</c> is fetched cluster-wide (<see cref="Namespace.FetchSocketsAsync"/>). Commands
/// run on the UI's node through the adapter (<see cref="BroadcastOperator.DisconnectSockets"/>, …), for the namespaces
/// that exist on that node. Not reported: transport upgrades after the connect (<c>socket_updated</c>), changes of a
/// socket's data after the connect, and per-packet byte counts (<c>packetsIn</c>/<c>bytesIn</c>/… of the
/// aggregated events: only connections and disconnections are counted).
/// </remarks>
public sealed class AdminUIInstrumentation : IDisposable
{
    private static readonly JsonSerializerOptions DataJson = new(JsonSerializerDefaults.Web);

    private readonly SocketIOServer _io;
    private readonly AdminUIOptions _options;
    private readonly Namespace _admin;
    private readonly string[] _features;
    private readonly bool _development;
    private readonly JsonObject _baseStats;
    private readonly DateTime _processStart;
    private readonly ConditionalWeakTable<Namespace, object> _instrumented = [];
    private readonly ConditionalWeakTable<Socket, string> _newSessions = [];
    private readonly ConcurrentDictionary<string, DateTimeOffset> _sessions = new(StringComparer.Ordinal);
    private readonly EventBuffer _events = new();
    private readonly ILogger _logger;
    private readonly Timer _statsTimer;
    private volatile bool _disposed;

    private AdminUIInstrumentation(SocketIOServer io, AdminUIOptions options, ILogger logger)
    {
        _io = io;
        _options = options;
        _logger = logger;
        _development = options.Mode == AdminUIMode.Development;
        List<string> features = options.ReadOnly ? [] : ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT"];
        features.Add("AGGREGATED_EVENTS");
        if (_development)
        {
            features.Add("ALL_EVENTS");
        }

        _features = [.. features];
        using (var process = Process.GetCurrentProcess())
        {
            _processStart = process.StartTime.ToUniversalTime();
        }

        _baseStats = new JsonObject
        {
            ["serverId"] = options.ServerId ?? Environment.MachineName,
            ["hostname"] = Environment.MachineName,
            ["pid"] = Environment.ProcessId,
        };

        _admin = io.Of(options.NamespaceName);
        _admin.Use(AuthenticateAsync);
        _admin.OnConnection(OnAdminConnectedAsync);

        io.ConnectionOpened += OnRawConnection;
        io.Engine.SessionClosed += OnRawDisconnection;
        if (_development)
        {
            io.NamespaceCreated += Instrument;
            foreach (var nsp in io.Namespaces)
            {
                Instrument(nsp);
            }
        }

        _statsTimer = new Timer(_ => EmitStats(), null, TimeSpan.Zero, options.StatsInterval);
    }

    /// <summary>The admin namespace.</summary>
    public Namespace Namespace => _admin;

    /// <summary>The features announced to the UI in its <c>config</c> event (<c>EMIT</c>, <c>MDISCONNECT</c>, …).</summary>
    public IReadOnlyList<string> SupportedFeatures => _features;

    /// <summary>
    /// Serves the Admin UI's protocol on <paramref name="io"/> (socket.io's <c>instrument(io, opts)</c>). Call it once,
    /// before clients connect. Dispose the result to stop the statistics timer and the reporting.
    /// </summary>
    /// <exception cref="ArgumentException">No <see cref="AdminUIOptions.Authenticate"/> and not <see cref="AdminUIOptions.AllowAnonymous"/>, or a bad option.</exception>
    public static AdminUIInstrumentation Instrument(SocketIOServer io, AdminUIOptions options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(io);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Authenticate is null && !options.AllowAnonymous)
        {
            throw new ArgumentException("the Authenticate option must be set, or AllowAnonymous explicitly", nameof(options));
        }

        if (string.IsNullOrWhiteSpace(options.NamespaceName) || options.NamespaceName == "/")
        {
            throw new ArgumentException("NamespaceName must name a namespace other than /", nameof(options));
        }

        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.StatsInterval, TimeSpan.Zero, nameof(options));
        var logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<AdminUIInstrumentation>();
        return new AdminUIInstrumentation(io, options, logger);
    }

    /// <summary>Stops the instrumentation: the stats timer and the server event subscriptions (the admin namespace stays).</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _statsTimer.Dispose();
        _io.ConnectionOpened -= OnRawConnection;
        _io.Engine.SessionClosed -= OnRawDisconnection;
        _io.NamespaceCreated -= Instrument;
    }

    // --- authentication -------------------------------------------------------------------------------------

    private async ValueTask<ConnectError?> AuthenticateAsync(Socket socket)
    {
        if (_options.AllowAnonymous)
        {
            return null;
        }

        var now = DateTimeOffset.UtcNow;
        if (socket.Handshake.AuthString("sessionId") is { Length: > 0 } sessionId
            && _sessions.TryGetValue(sessionId, out var expiry) && expiry > now)
        {
            return null;
        }

        bool accepted;
        try
        {
            accepted = await _options.Authenticate!(new AdminUICredentials(
                socket.Handshake.AuthString("username"), socket.Handshake.AuthString("password"), socket));
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Admin UI: the authentication callback failed");
            accepted = false;
        }

        if (!accepted)
        {
            _logger.LogInformation("Admin UI: login refused (invalid credentials) from {Address}", socket.Handshake.Address);
            return new ConnectError("invalid credentials");
        }

        if (SaveSession(now) is { } newSession)
        {
            _newSessions.AddOrUpdate(socket, newSession);
        }

        return null;
    }

    private string? SaveSession(DateTimeOffset now)
    {
        if (_sessions.Count >= _options.MaxSessions)
        {
            foreach (var (id, expiry) in _sessions)
            {
                if (expiry <= now)
                {
                    _sessions.TryRemove(id, out _);
                }
            }

            if (_sessions.Count >= _options.MaxSessions)
            {
                return null;
            }
        }

        var sessionId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        _sessions[sessionId] = now + _options.SessionDuration;
        return sessionId;
    }

    // --- the admin socket -----------------------------------------------------------------------------------

    private async ValueTask OnAdminConnectedAsync(Socket socket)
    {
        if (_newSessions.TryGetValue(socket, out var sessionId))
        {
            _newSessions.Remove(socket);
            socket.Emit("session", sessionId);
        }

        if (!_options.ReadOnly)
        {
            RegisterCommands(socket);
        }

        socket.Emit("config", new JsonObject { ["supportedFeatures"] = new JsonArray([.. _features.Select(f => (JsonNode)f)]) });
        if (_development)
        {
            socket.Emit("all_sockets", await FetchAllSocketsAsync());
        }
    }

    private async Task<JsonArray> FetchAllSocketsAsync()
    {
        var all = new JsonArray();
        foreach (var nsp in _io.Namespaces)
        {
            IReadOnlyList<IClusterSocket> sockets;
            try
            {
                sockets = await nsp.FetchSocketsAsync();
            }
            catch (Exception ex)
            {
                // a cluster node that does not answer: this node's sockets at least
                _logger.LogWarning(ex, "Admin UI: fetching the sockets of {Namespace} failed; listing this node's only", nsp.Name);
                sockets = [.. nsp.SocketsById.Values];
            }

            foreach (var socket in sockets)
            {
                all.Add(Serialize(socket, nsp.Name));
            }
        }

        return all;
    }

    private void RegisterCommands(Socket admin)
    {
        admin.On("emit", e =>
        {
            // (nsp, filter, event, ...args)
            if (Str(e.Args, 0) is not { } nsp || Str(e.Args, 2) is not { } eventName || !_io.TryGetNamespace(nsp, out var target))
            {
                return;
            }

            var args = e.Args.Skip(3).Select(a => (object?)a?.DeepClone()).ToArray();
            var op = Str(e.Args, 1) is { Length: > 0 } filter ? target.To(filter) : new BroadcastOperator(target);
            Run(() => op.Emit(eventName, args), "emit");
        });
        admin.On("join", e =>
        {
            // (nsp, room, filter)
            if (Str(e.Args, 0) is { } nsp && Str(e.Args, 1) is { Length: > 0 } room && _io.TryGetNamespace(nsp, out var target))
            {
                var op = Str(e.Args, 2) is { Length: > 0 } filter ? target.To(filter) : new BroadcastOperator(target);
                Run(() => op.SocketsJoin(room), "join");
            }
        });
        admin.On("leave", e =>
        {
            if (Str(e.Args, 0) is { } nsp && Str(e.Args, 1) is { Length: > 0 } room && _io.TryGetNamespace(nsp, out var target))
            {
                var op = Str(e.Args, 2) is { Length: > 0 } filter ? target.To(filter) : new BroadcastOperator(target);
                Run(() => op.SocketsLeave(room), "leave");
            }
        });
        admin.On("_disconnect", e =>
        {
            // (nsp, close, filter)
            if (Str(e.Args, 0) is { } nsp && _io.TryGetNamespace(nsp, out var target))
            {
                var close = e.Args.Count > 1 && e.Args[1] is JsonValue v && v.TryGetValue<bool>(out var b) && b;
                var op = Str(e.Args, 2) is { Length: > 0 } filter ? target.To(filter) : new BroadcastOperator(target);
                Run(() => op.DisconnectSockets(close), "disconnect");
            }
        });
    }

    private void Run(Action command, string name)
    {
        try
        {
            command();
        }
        catch (Exception ex)
        {
            _logger.LogWarning(ex, "Admin UI: the {Command} command failed", name);
        }
    }

    private static string? Str(IReadOnlyList<JsonNode?> args, int index) =>
        index < args.Count && args[index] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    // --- what the UI sees as it happens (development mode) ---------------------------------------------------

    private void Instrument(Namespace nsp)
    {
        if (_disposed)
        {
            return;
        }

        lock (_instrumented)
        {
            if (_instrumented.TryGetValue(nsp, out _))
            {
                return;
            }

            _instrumented.Add(nsp, this);
        }

        nsp.OnConnection(socket => OnSocketConnected(nsp, socket));
        if (nsp.Adapter is InMemoryAdapter adapter)
        {
            adapter.RoomJoined += (room, id) => EmitAdmin("room_joined", nsp.Name, room, id, Now());
            adapter.RoomLeft += (room, id) => EmitAdmin("room_left", nsp.Name, room, id, Now());
        }
    }

    private void OnSocketConnected(Namespace nsp, Socket socket)
    {
        if (_disposed)
        {
            return;
        }

        // carried with the socket's data, so that another node's UI sees them in a fetch (socket.io's data._admin)
        socket.Data["_admin"] = new JsonObject
        {
            ["clientId"] = ClientId(socket),
            ["transport"] = socket.Transport,
        };
        socket.Disconnected += (s, reason) => EmitAdmin("socket_disconnected", nsp.Name, s.Id, reason, Now());
        if (nsp != _admin)
        {
            socket.OnAny(e =>
            {
                EmitAdmin("event_received", nsp.Name, e.Socket.Id, new JsonArray([(JsonNode)e.Name, .. e.Args.Select(a => a?.DeepClone())]), Now());
                return ValueTask.CompletedTask;
            });
            socket.OnAnyOutgoing((eventName, args) =>
                EmitAdmin("event_sent", nsp.Name, socket.Id, new JsonArray([(JsonNode)eventName, .. args.Select(ToNode)]), Now()));
        }

        if (socket.Connected)
        {
            EmitAdmin("socket_connected", Serialize(socket, nsp.Name), Now());
        }
    }

    private void EmitAdmin(string eventName, params object?[] args)
    {
        if (_disposed)
        {
            return;
        }

        try
        {
            _admin.Emit(eventName, args);
        }
        catch (Exception ex)
        {
            _logger.LogWarning(ex, "Admin UI: emitting {Event} failed", eventName);
        }
    }

    private static string Now() => DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    private static string ClientId(Socket socket) => socket.Connection.Id.Length > 12 ? socket.Connection.Id[..12] : socket.Connection.Id;

    /// <summary>A socket as the UI lists it (socket.io-admin-ui's <c>serialize</c>).</summary>
    internal static JsonObject Serialize(IClusterSocket socket, string nsp)
    {
        string? clientId = null;
        string? transport = null;
        if (socket is Socket local)
        {
            clientId = ClientId(local);
            transport = local.Transport;
        }
        else if (socket.Data.TryGetValue("_admin", out var admin))
        {
            var node = ToNode(admin);
            clientId = (node?["clientId"] as JsonValue)?.GetValue<string>();
            transport = (node?["transport"] as JsonValue)?.GetValue<string>();
        }

        var handshake = socket.Handshake;
        var headers = new JsonObject();
        foreach (var (name, value) in handshake.Headers)
        {
            headers[name.ToLowerInvariant()] = value;
        }

        var query = new JsonObject();
        foreach (var (name, value) in handshake.Query)
        {
            query[name] = value;
        }

        var data = new JsonObject();
        foreach (var (key, value) in socket.Data)
        {
            if (key != "_admin")
            {
                data[key] = ToNode(value);
            }
        }

        string? address = Header(handshake, "cf-connecting-ip") ?? Header(handshake, "x-forwarded-for") ?? handshake.Address;
        return new JsonObject
        {
            ["id"] = socket.Id,
            ["clientId"] = clientId,
            ["transport"] = transport,
            ["nsp"] = nsp,
            ["data"] = data,
            ["handshake"] = new JsonObject
            {
                ["address"] = address,
                ["headers"] = headers,
                ["query"] = query,
                ["issued"] = handshake.Time.ToUnixTimeMilliseconds(),
                ["secure"] = handshake.Secure,
                ["time"] = handshake.Time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
                ["url"] = handshake.Url,
                ["xdomain"] = Header(handshake, "origin") is not null,
            },
            ["rooms"] = new JsonArray([.. socket.Rooms.Select(r => (JsonNode)r)]),
        };
    }

    private static string? Header(Handshake handshake, string name)
    {
        foreach (var (key, value) in handshake.Headers)
        {
            if (string.Equals(key, name, StringComparison.OrdinalIgnoreCase))
            {
                return value;
            }
        }

        return null;
    }

    /// <summary>The application's value as JSON; null when it does not serialize.</summary>
    private static JsonNode? ToNode(object? value)
    {
        if (value is null)
        {
            return null;
        }

        if (value is JsonNode node)
        {
            return node.DeepClone();
        }

        try
        {
            return JsonSerializer.SerializeToNode(value, value.GetType(), DataJson);
        }
        catch (Exception ex) when (ex is JsonException or NotSupportedException or InvalidOperationException)
        {
            return null;
        }
    }

    // --- statistics ----------------------------------------------------------------------------------------

    private void OnRawConnection(EngineSocket connection) => _events.Push("rawConnection", null);

    private void OnRawDisconnection(EngineSocket connection, EngineCloseReason reason) => _events.Push("rawDisconnection", ReasonText(reason));

    private static string ReasonText(EngineCloseReason reason) => reason switch
    {
        EngineCloseReason.TransportClose => "transport close",
        EngineCloseReason.TransportError => "transport error",
        EngineCloseReason.PingTimeout => "ping timeout",
        EngineCloseReason.ParseError => "parse error",
        EngineCloseReason.ForcedClose => "forced close",
        _ => reason.ToString(),
    };

    private void EmitStats()
    {
        if (_disposed)
        {
            return;
        }

        try
        {
            var namespaces = new JsonArray();
            foreach (var nsp in _io.Namespaces)
            {
                namespaces.Add(new JsonObject { ["name"] = nsp.Name, ["socketsCount"] = nsp.SocketCount });
            }

            var stats = (JsonObject)_baseStats.DeepClone();
            stats["uptime"] = Math.Round((DateTime.UtcNow - _processStart).TotalSeconds, 3);
            stats["clientsCount"] = _io.Engine.SessionCount;
            stats["pollingClientsCount"] = Math.Max(0, _io.Engine.SessionCount - _io.Engine.WebSocketSessionCount);
            stats["aggregatedEvents"] = _events.GetValuesAndClear();
            stats["namespaces"] = namespaces;
            _admin.Emit("server_stats", stats);
        }
        catch (Exception ex)
        {
            _logger.LogWarning(ex, "Admin UI: emitting server_stats failed");
        }
    }

    /// <summary>Counts per second and type (socket.io-admin-ui's <c>EventBuffer</c>), emptied by each <c>server_stats</c>.</summary>
    private sealed class EventBuffer
    {
        private readonly Dictionary<(long Timestamp, string Type, string? SubType), int> _counts = [];

        public void Push(string type, string? subType)
        {
            var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            var key = (now - (now % 1000), type, subType);
            lock (_counts)
            {
                _counts[key] = _counts.GetValueOrDefault(key) + 1;
            }
        }

        public JsonArray GetValuesAndClear()
        {
            KeyValuePair<(long Timestamp, string Type, string? SubType), int>[] values;
            lock (_counts)
            {
                values = [.. _counts];
                _counts.Clear();
            }

            var array = new JsonArray();
            foreach (var (key, count) in values)
            {
                var item = new JsonObject { ["timestamp"] = key.Timestamp, ["type"] = key.Type };
                if (key.SubType is not null)
                {
                    item["subType"] = key.SubType;
                }

                item["count"] = count;
                array.Add(item);
            }

            return array;
        }
    }
}

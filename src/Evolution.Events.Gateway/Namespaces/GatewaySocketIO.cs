using Evolution.Events.EngineIO;
using Evolution.Events.Gateway.Connections;
using Evolution.Events.Gateway.Fanout;
using Evolution.Events.Gateway.Http;
using Evolution.Events.Gateway.Instances;
using Evolution.Events.Gateway.Options;
using Evolution.Events.Gateway.PlainWebSockets;
using Evolution.Events.SocketIO;
using Evolution.Events.SocketIO.Adapters;
using Evolution.Events.SocketIO.Hosting;
using Microsoft.Extensions.FileProviders;

namespace Evolution.Events.Gateway.Namespaces;

/// <summary>Composition of the Socket.IO side: server options from the gateway's, namespaces, auth, fan-out, relay.</summary>
public static class GatewaySocketIO
{
    public const string Path = "/socket.io";

    public static IServiceCollection AddGatewaySocketIO(this IServiceCollection services, GatewayOptions options)
    {
        if (!options.WebSocketEnabled)
        {
            return services;
        }

        if (options.Redis is not null)
        {
            services.AddSingleton<ClusterAdapterFactory>();
            services.AddSingleton<IAdapterFactory>(sp => sp.GetRequiredService<ClusterAdapterFactory>());
        }

        services.AddSocketIO(configure: o =>
        {
            o.Engine.MaxPayload = options.MaxPayload;
            if (options.Parser == SocketIOParserMode.MsgPack)
            {
                o.Parser = Evolution.Events.SocketIO.MsgPack.MsgPackParser.Instance;
            }

            // socket.io's serveClient: the stock browser client at /socket.io/socket.io.js (.min.js, .esm.min.js, maps)
            o.ClientBundle = new ClientBundle(new EmbeddedFileProvider(typeof(GatewaySocketIO).Assembly, "Evolution.Events.Gateway.client"));
            if (options.RecoverySeconds > 0)
            {
                // the middlewares (authorization) run again on recovery: a key revoked meanwhile does not recover
                o.ConnectionStateRecovery = new ConnectionStateRecoveryOptions
                {
                    MaxDisconnectionDuration = TimeSpan.FromSeconds(options.RecoverySeconds),
                    SkipMiddlewares = false,
                };
            }
            o.Engine.MaxQueuedBytes = options.SendQueueBytes;
            o.Engine.MaxQueuedPackets = options.SendQueueLimit;
            o.Engine.OverflowPolicy = options.OverflowPolicy;
            o.Engine.PingInterval = (int)options.PingInterval.TotalMilliseconds;
            o.Engine.PingTimeout = (int)options.PingTimeout.TotalMilliseconds;
            o.Engine.AllowPolling = options.Transports.Contains("polling");
            o.Engine.AllowWebSocket = options.Transports.Contains("websocket");
            o.Engine.AllowUpgrades = o.Engine.AllowPolling && o.Engine.AllowWebSocket;
            o.Engine.AllowEIO3 = options.AllowEio3;
            o.Engine.HttpCompression = options.HttpCompression
                ? new HttpCompressionOptions { Threshold = options.HttpCompressionThreshold }
                : null;
            o.Engine.PerMessageDeflate = options.PerMessageDeflate;
            // before a namespace is joined a connection costs little and briefly (docs/reliability.md)
            o.ConnectTimeout = (int)options.ConnectTimeout.TotalMilliseconds;
            o.MaxPendingConnections = options.MaxPendingConnections;
            o.MaxAttachmentBytes = options.MaxPayload;
            foreach (var origin in options.CorsOrigins)
            {
                o.Engine.CorsOrigins.Add(origin);
            }
        });
        services.AddSingleton<NamespaceAuthorization>();
        services.AddSingleton<SocketIOSlots>();
        services.AddSingleton<ClientEventRelay>();
        services.AddSingleton<IEventSink, SocketIOSink>();
        return services;
    }

    /// <summary>Maps <c>/socket.io/</c>, or a 404 that says why when WEBSOCKET_ENABLED=false.</summary>
    public static WebApplication MapGatewaySocketIO(this WebApplication app, GatewayOptions options)
    {
        if (!options.WebSocketEnabled)
        {
            app.Map(Path + "/{**rest}", () => ApiError.Result(StatusCodes.Status404NotFound, ApiError.WebSocketDisabledMessage));
            return app;
        }

        var io = app.Services.GetRequiredService<SocketIOServer>();
        Configure(io, app.Services);
        AdminUI.GatewayAdminUI.Instrument(io, app.Services, options);
        app.MapSocketIO(Path);
        return app;
    }

    private static void Configure(SocketIOServer io, IServiceProvider services)
    {
        var authorization = services.GetRequiredService<NamespaceAuthorization>();
        var relay = services.GetRequiredService<ClientEventRelay>();
        var gate = services.GetRequiredService<ConnectionGate>();
        var registry = services.GetRequiredService<InstanceRegistry>();
        var replay = services.GetRequiredService<LastStateReplay>();

        var slots = services.GetRequiredService<SocketIOSlots>();

        // the handshake only counts against the rate; a slot of WEBSOCKET_MAX_CONNECTIONS is taken at
        // the first namespace joined (the last middleware), and given back when the connection closes
        io.Engine.Options.AllowRequest = context => ValueTask.FromResult(
            gate.CheckRate(context, out var status, out var reason) ? null : new HandshakeRefusal(status, reason));
        io.Engine.SessionClosed += (session, _) => slots.Release(session);

        io.Sockets.Use(authorization.AuthorizeMain).Use(slots.Admit);
        var instances = io.Of(NamespaceAuthorization.IsInstanceNamespace)
            .Use(authorization.AuthorizeInstance)
            .Use(slots.Admit);
        relay.Attach(instances);
        if (replay.Enabled)
        {
            instances.OnJoining(SocketIOReplay.Interceptor(replay, registry));
        }

        registry.InstanceDeleted += instance =>
        {
            if (io.TryGetNamespace("/" + instance.Name, out var nsp))
            {
                nsp.Local.DisconnectSockets(); // every node hears of the delete itself
            }
        };
        registry.TokenRotated += instance =>
        {
            if (io.TryGetNamespace("/" + instance.Name, out var nsp))
            {
                authorization.DisconnectRevoked(nsp, services.GetRequiredService<TimeProvider>().GetUtcNow());
            }
        };
    }
}

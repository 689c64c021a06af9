using Evolution.Events.Gateway.AdminUI;
using Evolution.Events.Gateway.Dashboard;
using Evolution.Events.Gateway.Http;
using Evolution.Events.Gateway.Ingestion;
using Evolution.Events.Gateway.Instances;
using Evolution.Events.Gateway.Namespaces;
using Evolution.Events.Gateway.Observability;
using Evolution.Events.Gateway.OpenApi;
using Evolution.Events.Gateway.Options;
using Evolution.Events.Gateway.PlainWebSockets;
using Evolution.Events.Gateway.Settings;
using Evolution.Events.EngineIO.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Evolution.Events.Gateway;

/// <summary>
/// Builds the gateway. <c>Program.cs</c> calls <see cref="Build"/>; tests call it with overrides
/// (e.g. <c>urls=http://127.0.0.1:0</c>, <c>DATABASE_PATH=…</c>) and read the bound port with
/// <see cref="BoundAddress"/>.
/// </summary>
public static class GatewayApp
{
    /// <summary>
    /// Builds (does not start) the app. <paramref name="overrides"/> win over environment variables and
    /// appsettings.json; the key <c>urls</c> replaces the default listen address <c>http://+:SERVER_PORT</c>.
    /// Throws <see cref="GatewayConfigurationException"/> for an invalid value.
    /// </summary>
    /// <param name="args">Command-line arguments (configuration keys, e.g. <c>--urls</c>).</param>
    /// <param name="overrides">Settings that win over everything else.</param>
    /// <param name="hermetic">True: <paramref name="overrides"/> are the only settings (no environment variables, no
    /// appsettings.json), so a test's gateway never picks up the ambient environment of the machine running it.</param>
    public static WebApplication Build(string[] args, IDictionary<string, string?>? overrides = null, bool hermetic = false,
        Serilog.Core.ILogEventSink? alsoLogTo = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args });
        if (hermetic)
            builder.Configuration.Sources.Clear();
        if (overrides is not null)
            builder.Configuration.AddInMemoryCollection(overrides);
        var options = GatewayOptionsBinder.Bind(builder.Configuration);
        if (options.InlineIo)
            builder.WebHost.UseSockets(o => o.UnsafePreferInlineScheduling = true);
        builder.WebHost.UseUrls(ListenUrls(builder.Configuration, options));
        if (options.RawUpgrade)
        {
            // WebSocket upgrades served on the raw connection: a connection middleware on every endpoint
            builder.Services.AddRawWebSocketUpgrades();
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.UseRawWebSocketUpgrades());
        }
        builder.Services.AddGatewayLogging(options, alsoLogTo);
        builder.Services.AddGateway(options);
        builder.Services.AddGatewaySocketIO(options);
        // after the Socket.IO services: it must stop first (lifecycle services stop in reverse order)
        builder.Services.AddHostedService<GatewayShutdown>();
        builder.Services.AddGatewayObservability(options);
        builder.Services.AddGatewayOpenApi();
        builder.Services.AddHostedService<StartupBannerService>(); // the start-up block, once Kestrel listens

        var app = builder.Build();
        if (options.RawUpgrade)
        {
            // first: the rest of the pipeline (routing included) is what an upgrade taken on the raw connection runs,
            // so every check, refusal, metric and log is the HTTP path's own (/socket.io also when WEBSOCKET_ENABLED=false)
            app.UseRawWebSocketUpgrades(GatewaySocketIO.Path, PlainWebSocketEndpoint.EventsPath, "/");
            app.UseRouting();
        }
        app.UseGatewayRefusalMetrics();
        app.UseStatusCodePages(ApiError.WriteStatusCodePageAsync); // a bodiless 404/405/415 gets the JSON error shape
        app.UseInstanceStoreErrors();
        app.UseGatewayForwardedHeaders(options);
        // CORS_ORIGIN has one enforcer per surface: ASP.NET Core's CORS for the REST API, the Engine.IO server's own
        // (socket.io's `cors` option, set in AddGatewaySocketIO) for polling; never both on one response
        app.UseWhen(context => !context.Request.Path.StartsWithSegments(GatewaySocketIO.Path), rest => rest.UseCors());
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(25) });
        app.UseMiddleware<PlainWebSocketEndpoint>();
        app.UseGatewayAdminUI(options); // ADMIN_UI_ENABLED: /admin-ui/
        app.UseGatewayDashboard(); // after the plain WebSocket: upgrades at / stay with it
        app.MapGatewaySocketIO(options);
        app.MapInstanceEndpoints();
        app.MapWebSocketSettingsEndpoints();
        app.MapWebhookEndpoints();
        app.MapGatewayObservability(options);
        app.MapDashboardEndpoints();
        app.MapGatewayOpenApi();
        return app;
    }

    /// <summary>
    /// Where to listen: ASPNETCORE_URLS / URLS / <c>--urls</c> (the configuration key <c>urls</c>) when set,
    /// else <c>http://SERVER_HOST:SERVER_PORT</c>.
    /// </summary>
    public static string ListenUrls(IConfiguration configuration, GatewayOptions options) =>
        string.IsNullOrWhiteSpace(configuration["urls"]) ? $"http://{options.Host}:{options.Port}" : configuration["urls"]!.Trim();

    /// <summary>The first address the server listens on (after <c>StartAsync</c>), e.g. <c>http://127.0.0.1:53111</c>.</summary>
    public static Uri BoundAddress(WebApplication app)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        return new Uri(addresses.First().Replace("+", "localhost", StringComparison.Ordinal).Replace("[::]", "localhost", StringComparison.Ordinal));
    }
}

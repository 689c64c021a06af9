using System.Text;
using System.Text.RegularExpressions;
using Evolution.Events.Gateway.Auth;
using Evolution.Events.Gateway.Instances;
using Evolution.Events.Gateway.Observability;
using Evolution.Events.Gateway.Options;
using Evolution.Events.SocketIO;
using Evolution.Events.SocketIO.AdminUI;
using Microsoft.AspNetCore.StaticFiles;
using Microsoft.Extensions.FileProviders;

namespace Evolution.Events.Gateway.AdminUI;

/// <summary>
/// ADMIN_UI_ENABLED: the official Socket.IO Admin UI. Its page and assets (embedded from npm at build) at
/// <c>/admin-ui/</c>, its fonts served locally instead of from the CDNs its page names; its namespace <c>/admin</c>
/// (<see cref="AdminUIInstrumentation"/>) behind the global key: any username, the global key as password.
/// </summary>
public static partial class GatewayAdminUI
{
    public const string Path = "/admin-ui";

    /// <summary>The CDN links of the UI's index.html and their local replacements.</summary>
    private static readonly (string Cdn, string Local)[] CdnLinks =
    [
        ("<link rel=\"stylesheet\" href=\"https://fonts.googleapis.com/css?family=Roboto:100,300,400,500,700,900\">",
            string.Concat(new[] { 100, 300, 400, 500, 700, 900 }.Select(w => $"<link rel=\"stylesheet\" href=\"vendor/roboto/{w}.css\">"))),
        ("<link rel=\"stylesheet\" href=\"https://cdn.jsdelivr.net/npm/@mdi/font@latest/css/materialdesignicons.min.css\">",
            "<link rel=\"stylesheet\" href=\"vendor/mdi/css/materialdesignicons.min.css\">"),
    ];

    /// <summary>The UI's page as served: every CDN link replaced by its local copy (throws if the page changed).</summary>
    internal static byte[] LocalIndex(IFileProvider files)
    {
        var file = files.GetFileInfo("index.html");
        if (!file.Exists)
            throw new InvalidOperationException("the Admin UI's index.html is not embedded (build with npm available)");
        using var reader = new StreamReader(file.CreateReadStream(), Encoding.UTF8);
        var html = reader.ReadToEnd();
        foreach (var (cdn, local) in CdnLinks)
        {
            if (!html.Contains(cdn, StringComparison.Ordinal))
                throw new InvalidOperationException("the Admin UI's index.html no longer links " + cdn);
            html = html.Replace(cdn, local, StringComparison.Ordinal);
        }
        return Encoding.UTF8.GetBytes(html);
    }

    /// <summary>Serves <c>/admin-ui/</c> when ADMIN_UI_ENABLED=true (nothing otherwise: a 404).</summary>
    public static WebApplication UseGatewayAdminUI(this WebApplication app, GatewayOptions options)
    {
        if (!options.AdminUIEnabled || !options.WebSocketEnabled)
            return app;
        var files = new EmbeddedFileProvider(typeof(GatewayAdminUI).Assembly, "Evolution.Events.Gateway.adminui");
        var index = LocalIndex(files);
        app.Use(async (context, next) =>
        {
            var request = context.Request;
            if (!request.Path.StartsWithSegments(Path, out var rest) || !(HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method)))
            {
                await next(context);
                return;
            }
            if (!rest.HasValue)
            {
                // relative asset links need the trailing slash
                context.Response.Redirect(Path + "/" + request.QueryString, permanent: false);
                return;
            }
            if (rest.Value is "/" or "/index.html")
            {
                context.Response.ContentType = "text/html; charset=utf-8";
                context.Response.Headers.CacheControl = "no-cache";
                context.Response.ContentLength = index.Length;
                if (HttpMethods.IsGet(request.Method))
                    await context.Response.Body.WriteAsync(index, context.RequestAborted);
                return;
            }
            await next(context);
        });
        app.UseStaticFiles(new StaticFileOptions
        {
            RequestPath = Path,
            FileProvider = files,
            ContentTypeProvider = new FileExtensionContentTypeProvider(),
            // css/js/img names carry a content hash: cached for good; the rest (fonts, favicon) revalidated
            OnPrepareResponse = context => context.Context.Response.Headers.CacheControl =
                HashedName().IsMatch(context.File.Name) ? "public, max-age=31536000, immutable" : "no-cache",
        });
        return app;
    }

    /// <summary>The namespace <c>/admin</c>, when ADMIN_UI_ENABLED=true: after the gateway's namespaces are configured.</summary>
    public static void Instrument(SocketIOServer io, IServiceProvider services, GatewayOptions options)
    {
        if (!options.AdminUIEnabled)
            return;
        var authorizer = services.GetRequiredService<GatewayAuthorizer>();
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(GatewayAdminUI));
        var registry = services.GetRequiredService<InstanceRegistry>();
        var instrumentation = AdminUIInstrumentation.Instrument(io, new AdminUIOptions
        {
            NamespaceName = GatewayOptions.AdminUINamespace,
            // the global key only: an instance token is refused like a wrong key (compared in constant time)
            Authenticate = credentials => ValueTask.FromResult(authorizer.Authenticate(credentials.Password).Kind == AuthKind.Global),
            Mode = options.AdminUIMode,
            ReadOnly = options.AdminUIReadOnly,
            ServerId = services.GetRequiredService<ClusterNodes>().Id,
        }, services.GetRequiredService<ILoggerFactory>());
        services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.Register(instrumentation.Dispose);
        var reserved = GatewayOptions.AdminUINamespace[1..];
        // the registry is loaded at start-up
        services.GetRequiredService<IHostApplicationLifetime>().ApplicationStarted.Register(() =>
        {
            if (registry.TryGet(reserved, out _))
                logger.LogWarning("An instance is named '{Instance}', the Socket.IO Admin UI's namespace (ADMIN_UI_ENABLED=true): its " +
                "Socket.IO clients reach the Admin UI's login (refused without the global key) and get none of its events; " +
                "its plain WebSocket clients are not affected. Rename the instance or turn the Admin UI off.", reserved);
        });
    }

    [GeneratedRegex(@"\.[0-9a-f]{8}\.(js|css|svg)\z", RegexOptions.CultureInvariant)]
    private static partial Regex HashedName();
}

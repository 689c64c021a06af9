using Evolution.Events.Gateway;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Evolution.Events.BrowserTests;

/// <summary>A second web server on 127.0.0.1:0 that serves one HTML page (loopback, so Chromium's local-network rules allow its script to load from the gateway).</summary>
internal sealed class PageServer(WebApplication app, PageServer.Content content) : IAsyncDisposable
{
    public Uri Url { get; } = new(GatewayApp.BoundAddress(app), "/qrcode.php");

    /// <summary>The page's origin (scheme, host, port), as a browser sends it in <c>Origin</c>.</summary>
    public string Origin => Url.GetLeftPart(UriPartial.Authority);

    /// <summary>How many times the page was requested (a reload is one more).</summary>
    public int Requests => Volatile.Read(ref content.Requests);

    /// <summary>The page served; may be set after start (when the page must name a server started later).</summary>
    public string Html
    {
        get => content.Html;
        set => content.Html = value;
    }

    /// <param name="html">The page at <c>/qrcode.php</c>.</param>
    /// <param name="files">More files by path (e.g. <c>/app.js</c>), served as JavaScript.</param>
    public static async Task<PageServer> StartAsync(string html = "", IReadOnlyDictionary<string, string>? files = null)
    {
        var content = new Content { Html = html };
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        app.MapGet("/qrcode.php", () =>
        {
            Interlocked.Increment(ref content.Requests);
            return Results.Content(content.Html, "text/html; charset=utf-8");
        });
        foreach (var (path, text) in files ?? new Dictionary<string, string>())
            app.MapGet(path, () => Results.Text(text, "application/javascript; charset=utf-8"));
        using (var start = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
            await app.StartAsync(start.Token); // a start that hangs fails after 60 s instead of holding the run
        return new PageServer(app, content);
    }

    internal sealed class Content
    {
        public volatile string Html = "";
        public int Requests;
    }

    public async ValueTask DisposeAsync()
    {
        using (var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
            await app.StopAsync(stop.Token); // connections still open after 30 s are aborted
        await app.DisposeAsync();
    }
}

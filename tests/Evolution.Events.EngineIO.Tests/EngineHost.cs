using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using Evolution.Events.EngineIO.Hosting;
using Evolution.Events.EngineIO.Protocol;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Evolution.Events.EngineIO.Tests;

/// <summary>A real Kestrel on 127.0.0.1:0 serving a plain <see cref="EngineIOServer"/> at /engine.io.</summary>
public sealed class EngineHost : IAsyncDisposable
{
    public const string Path = "/engine.io/";

    private EngineHost(WebApplication app, EngineIOServer server)
    {
        App = app;
        Server = server;
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        BaseUri = new Uri(address);
        Http = new HttpClient { BaseAddress = BaseUri, Timeout = TimeSpan.FromSeconds(10) };
    }

    public WebApplication App { get; }

    public EngineIOServer Server { get; }

    public Uri BaseUri { get; }

    public HttpClient Http { get; }

    /// <summary>Listeners of the sessions opened so far, by session id.</summary>
    public ConcurrentDictionary<string, RecordingListener> Listeners { get; } = new(StringComparer.Ordinal);

    /// <summary>Whether listeners send every message back (text and binary).</summary>
    public bool Echo { get; set; } = true;

    /// <param name="configure">Changes to the Engine.IO options.</param>
    /// <param name="logger">The Engine.IO server's logger (default: none, or <paramref name="logs"/>').</param>
    /// <param name="logs">A log provider for the whole host (Kestrel included) and the server.</param>
    /// <param name="rawUpgrade">WebSocket upgrades served on the raw connection (<see cref="RawUpgradeExtensions"/>).</param>
    /// <param name="first">Middleware added first in the pipeline (after the raw-upgrade capture).</param>
    public static async Task<EngineHost> StartAsync(
        Action<EngineIOOptions>? configure = null, ILogger<EngineIOServer>? logger = null, ILoggerProvider? logs = null,
        bool rawUpgrade = false, Action<WebApplication>? first = null)
    {
        var options = new EngineIOOptions { PingInterval = 30_000, PingTimeout = 30_000 };
        configure?.Invoke(options);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (logs is not null)
        {
            builder.Logging.AddProvider(logs).SetMinimumLevel(LogLevel.Debug);
        }

        builder.WebHost.UseUrls("http://127.0.0.1:0");
        if (rawUpgrade)
        {
            builder.Services.AddRawWebSocketUpgrades();
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.UseRawWebSocketUpgrades());
        }

        var app = builder.Build();
        if (rawUpgrade)
        {
            app.UseRawWebSocketUpgrades();
            app.UseRouting();
        }

        first?.Invoke(app);
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero });
        var server = new EngineIOServer(options, logger ?? (logs is null ? null : app.Services.GetRequiredService<ILogger<EngineIOServer>>()));
        app.MapEngineIO("/engine.io", server);
        await app.StartAsync();
        var host = new EngineHost(app, server);
        server.OnConnection = socket =>
        {
            var listener = new RecordingListener(host);
            host.Listeners[socket.Id] = listener;
            return listener;
        };
        return host;
    }

    public Uri WebSocketUri(string query) =>
        new($"ws://{BaseUri.Authority}{Path}?{query}");

    /// <summary>Polling handshake: returns the session id and the parsed open packet.</summary>
    public async Task<(string Sid, JsonObject Open)> HandshakeAsync()
    {
        using var response = await Http.GetAsync(Path + "?EIO=4&transport=polling");
        var body = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("0{", body);
        var open = JsonNode.Parse(body[1..])!.AsObject();
        return (open["sid"]!.GetValue<string>(), open);
    }

    public Task<HttpResponseMessage> PollAsync(string sid, CancellationToken cancellationToken = default) =>
        Http.GetAsync(Path + "?EIO=4&transport=polling&sid=" + Uri.EscapeDataString(sid), cancellationToken);

    public Task<HttpResponseMessage> PostAsync(string sid, string payload) =>
        Http.PostAsync(Path + "?EIO=4&transport=polling&sid=" + Uri.EscapeDataString(sid), new StringContent(payload));

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        Server.CloseAll();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}

/// <summary>Records what one session received and how it closed; echoes when the host says so.</summary>
public sealed class RecordingListener(EngineHost host) : IEngineSocketListener
{
    private readonly TaskCompletionSource<(EngineCloseReason Reason, string? Description)> _closed =
        new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ConcurrentQueue<string> Messages { get; } = new();

    public ConcurrentQueue<byte[]> Binaries { get; } = new();

    public Task<(EngineCloseReason Reason, string? Description)> Closed => _closed.Task;

    public void OnMessage(EngineSocket socket, string text)
    {
        Messages.Enqueue(text);
        if (host.Echo)
        {
            socket.Send(OutboundPacket.Message(text));
        }
    }

    public void OnBinary(EngineSocket socket, byte[] data)
    {
        Binaries.Enqueue(data);
        if (host.Echo)
        {
            socket.Send(OutboundPacket.Binary(data));
        }
    }

    /// <summary>The managed thread that ran <see cref="OnClose"/> (0 before).</summary>
    public int CloseThread { get; private set; }

    public void OnClose(EngineSocket socket, EngineCloseReason reason, string? description)
    {
        CloseThread = Environment.CurrentManagedThreadId;
        _closed.TrySetResult((reason, description));
    }
}

using System.Collections.Concurrent;
using System.Text.Json;
using Evolution.Events.SocketIO.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SocketIOClient.Transport;

namespace Evolution.Events.SocketIO.AdminUI.Tests;

/// <summary>A real Kestrel on 127.0.0.1:0 with a Socket.IO server instrumented for the Admin UI.</summary>
public sealed class AdminServer : IAsyncDisposable
{
    public const string Password = "s3cret";
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    private AdminServer(WebApplication app, AdminUIInstrumentation admin)
    {
        App = app;
        Io = app.Services.GetRequiredService<SocketIOServer>();
        Admin = admin;
        Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');
    }

    public WebApplication App { get; }

    public SocketIOServer Io { get; }

    public AdminUIInstrumentation Admin { get; }

    public string Url { get; }

    public static async Task<AdminServer> StartAsync(Action<AdminUIOptions>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddSocketIO(configure: o => o.ConnectTimeout = 5000);
        var app = builder.Build();
        app.UseWebSockets();
        app.MapSocketIO("/socket.io");
        await app.StartAsync();
        var io = app.Services.GetRequiredService<SocketIOServer>();

        // an application namespace: joins the room its client names in auth.room
        io.Of("/chat").OnConnection(socket =>
        {
            if (socket.Handshake.AuthString("room") is { } room)
            {
                socket.Join(room);
            }

            socket.On("hello", e => socket.Emit("welcome", e.Args[0]?.GetValue<string>()));
        });

        var options = new AdminUIOptions
        {
            Authenticate = c => ValueTask.FromResult(c.Password == Password),
            StatsInterval = TimeSpan.FromMilliseconds(200),
            ServerId = "node-a",
        };
        configure?.Invoke(options);
        var admin = AdminUIInstrumentation.Instrument(io, options);
        return new AdminServer(app, admin);
    }

    public SocketIOClient.SocketIO Client(string nsp, object auth, TransportProtocol transport = TransportProtocol.WebSocket) =>
        new(Url + nsp, new SocketIOClient.SocketIOOptions
        {
            Path = "/socket.io",
            EIO = 4,
            Transport = transport,
            AutoUpgrade = false,
            Reconnection = false,
            ConnectionTimeout = Wait,
            Auth = auth,
        });

    public static async Task ConnectAsync(SocketIOClient.SocketIO client)
    {
        var connected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.OnConnected += (_, _) => connected.TrySetResult();
        await client.ConnectAsync().WaitAsync(Wait);
        await connected.Task.WaitAsync(Wait);
    }

    public async ValueTask DisposeAsync()
    {
        Admin.Dispose();
        Io.Close();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}

/// <summary>An admin client (what the UI does): every event it gets, in order, with its arguments as JSON.</summary>
public sealed class AdminClient : IDisposable
{
    private readonly ConcurrentQueue<(string Name, JsonElement[] Args)> _events = new();
    private readonly SemaphoreSlim _arrived = new(0);

    public AdminClient(AdminServer server, object auth, string nsp = "/admin")
    {
        Socket = server.Client(nsp, auth);
        Socket.OnAny((name, response) =>
        {
            var args = new List<JsonElement>();
            for (var i = 0; i < response.Count; i++)
            {
                args.Add(response.GetValue<JsonElement>(i));
            }

            _events.Enqueue((name, [.. args]));
            _arrived.Release();
        });
    }

    public SocketIOClient.SocketIO Socket { get; }

    public IReadOnlyCollection<(string Name, JsonElement[] Args)> Events => _events;

    /// <summary>Waits until an event of that name matches (already received or to come).</summary>
    public async Task<JsonElement[]> WaitForAsync(string name, Func<JsonElement[], bool>? match = null)
    {
        var deadline = DateTime.UtcNow + AdminServer.Wait;
        while (true)
        {
            foreach (var (n, args) in _events)
            {
                if (n == name && (match is null || match(args)))
                {
                    return args;
                }
            }

            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException($"no {name} event matched; got: {string.Join(", ", _events.Select(e => e.Name).Distinct())}");
            }

            await _arrived.WaitAsync(left < TimeSpan.FromMilliseconds(200) ? left : TimeSpan.FromMilliseconds(200));
        }
    }

    public void Dispose() => Socket.Dispose();
}

using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Evolution.Events.SocketIO.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Evolution.Events.SocketIO.Tests;

/// <summary>What the server saw, for one client tag (the <c>tag</c> field of the client's auth).</summary>
public sealed record Observation(string Tag, string Kind, string Namespace, string Value);

/// <summary>
/// A real Kestrel on 127.0.0.1:0 with the Socket.IO test server: namespaces "/", "/admin" (refused
/// with "not allowed" unless auth.token == "secret") and the dynamic ^/dyn-\w+$, with the handlers
/// the interop scenarios use.
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    private static readonly TimeSpan AckTimeout = TimeSpan.FromSeconds(5);

    private TestServer(WebApplication app)
    {
        App = app;
        Io = app.Services.GetRequiredService<SocketIOServer>();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        BaseUri = new Uri(address);
    }

    public WebApplication App { get; }

    public SocketIOServer Io { get; }

    /// <summary>http://127.0.0.1:port (no trailing slash), what socket.io clients take.</summary>
    public Uri BaseUri { get; }

    public string Url => BaseUri.GetLeftPart(UriPartial.Authority);

    public ConcurrentQueue<Observation> Observations { get; } = new();

    public static async Task<TestServer> StartAsync(
        Action<SocketIOOptions>? configure = null, ILoggerProvider? logs = null, SocketIO.Adapters.IAdapterFactory? adapterFactory = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (logs is not null)
        {
            builder.Logging.AddProvider(logs).SetMinimumLevel(LogLevel.Debug);
        }

        if (Environment.GetEnvironmentVariable("SOCKETIO_TESTS_LOG") is { Length: > 0 } level)
        {
            // e.g. SOCKETIO_TESTS_LOG=Debug: the server's log on the console, to investigate a failure
            builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(Enum.Parse<LogLevel>(level));
        }
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        if (adapterFactory is not null)
        {
            builder.Services.AddSingleton(adapterFactory);
        }

        builder.Services.AddSocketIO(configure: o =>
        {
            o.ConnectTimeout = 5000;
            configure?.Invoke(o);
        });
        var app = builder.Build();
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero });
        app.MapSocketIO("/socket.io");
        await app.StartAsync();
        var server = new TestServer(app);
        server.Configure();
        return server;
    }

    public IEnumerable<Observation> For(string tag) => Observations.Where(o => o.Tag == tag);

    /// <summary>Waits until an observation matches (the server side runs concurrently with the client).</summary>
    public async Task<Observation> WaitForAsync(Func<Observation, bool> match, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(5));
        while (true)
        {
            var found = Observations.FirstOrDefault(match);
            if (found is not null)
            {
                return found;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("no matching server observation; saw: " + string.Join("; ", Observations));
            }

            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Io.Close();
        await App.StopAsync();
        await App.DisposeAsync();
    }

    private void Configure()
    {
        Io.Sockets.OnConnection(OnConnection);

        Io.Of("/admin")
            .Use(socket => ValueTask.FromResult(socket.Handshake.AuthString("token") == "secret"
                ? null
                : new ConnectError("not allowed", new { reason = "bad token" })))
            .OnConnection(socket =>
            {
                socket.Emit("welcome", socket.Namespace.Name);
                OnConnection(socket);
            });

        Io.Of(new Regex(@"^/dyn-\w+$"))
            .OnConnection(socket =>
            {
                socket.Emit("welcome", socket.Namespace.Name);
                OnConnection(socket);
            });
    }

    private static string TagOf(Socket socket) =>
        socket.Handshake.AuthString("tag") ?? socket.Handshake.Query.GetValueOrDefault("tag") ?? "";

    private void Record(Socket socket, string kind, string value) =>
        Observations.Enqueue(new Observation(TagOf(socket), kind, socket.Namespace.Name, value));

    private void OnConnection(Socket socket)
    {
        Record(socket, "connect", socket.Transport);
        socket.Disconnected += (s, reason) => Record(s, "disconnect", reason);

        // echo: the arguments back, in the ack when one was asked for, else as an "echo" event
        socket.On("echo", e =>
        {
            if (!e.Ack([.. e.Args]))
            {
                socket.Emit("echo", [.. e.Args]);
            }
        });

        // ask: the server asks the client "question" with an ack and reports the answer
        socket.On("ask", async e =>
        {
            try
            {
                var answer = await socket.EmitWithAckAsync("question", [e.Args[0]], AckTimeout);
                Record(socket, "answer", answer.Length > 0 ? answer[0]?.ToJsonString() ?? "null" : "");
                socket.Emit("answer", [.. answer]);
            }
            catch (Exception ex)
            {
                socket.Emit("answer-error", ex.Message);
            }
        });

        socket.On("join", e =>
        {
            socket.Join(e.Args[0]!.GetValue<string>());
            e.Ack(new JsonArray([.. socket.Rooms.Order().Select(r => (JsonNode?)r)]));
        });

        socket.On("leave", e =>
        {
            socket.Leave(e.Args[0]!.GetValue<string>());
            e.Ack(true);
        });

        // to-room: every socket of the room (the sender too, if it is in); broadcast-room: the others
        socket.On("to-room", e =>
        {
            socket.Namespace.To(e.Args[0]!.GetValue<string>()).Emit("room-message", e.Args[1], TagOf(socket));
            e.Ack(true);
        });

        socket.On("broadcast-room", e =>
        {
            socket.To(e.Args[0]!.GetValue<string>()).Emit("room-message", e.Args[1], TagOf(socket));
            e.Ack(true);
        });

        socket.On("broadcast", e =>
        {
            socket.Broadcast.Emit("broadcast-message", e.Args[0], TagOf(socket));
            e.Ack(true);
        });

        socket.On("send-binary", e =>
        {
            var all = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
            socket.Emit("binary", all, new { name = "blob", data = new byte[] { 1, 2, 3 }, nested = new[] { new byte[] { 9 } } });
            e.Ack(true);
        });

        socket.On("binary-info", e =>
        {
            // the sizes of the binary arguments the server received, to prove they arrived as bytes
            var sizes = e.Args.Select(a => Protocol.JsonArguments.TryGetBinary(a, out var b) ? b.Length : -1).ToArray();
            e.Ack(sizes);
        });

        socket.On("who", e => e.Ack(new
        {
            id = socket.Id,
            nsp = socket.Namespace.Name,
            transport = socket.Transport,
            auth = socket.Handshake.Auth,
            query = socket.Handshake.Query.GetValueOrDefault("custom"),
        }));

        // kick: a namespace disconnect by the server (close=true also closes the connection)
        socket.On("kick", e =>
        {
            var close = e.Args.Count > 0 && e.Args[0] is JsonValue v && v.TryGetValue<bool>(out var b) && b;
            socket.Disconnect(close);
        });

        // engine-close: the server closes the underlying Engine.IO session (a transport close for the client)
        socket.On("engine-close", _ => socket.Client.Connection.Close());

        // stream: auth.stream = N emits n = 0..N-1 from the connection on; -1 streams until "stop-stream"
        var stop = new CancellationTokenSource();
        socket.On("stop-stream", _ => stop.Cancel());
        socket.Disconnected += (_, _) => stop.Cancel();
        if (socket.Handshake.Auth["stream"] is JsonValue stream && stream.TryGetValue<int>(out var n))
        {
            _ = StreamAsync(socket, n < 0 ? MaxStream : n, stop.Token);
        }
    }

    private const int MaxStream = 20_000;

    /// <summary>Emits n = 0, 1, … about one per millisecond until count or stopped, then "stream-end" with the count.</summary>
    private async Task StreamAsync(Socket socket, int count, CancellationToken stop)
    {
        var sent = 0;
        for (var i = 0; i < count && !stop.IsCancellationRequested; i++)
        {
            if (!socket.Emit("n", i))
            {
                break;
            }

            sent++;
            await Task.Delay(1, CancellationToken.None);
        }

        Record(socket, "streamed", sent.ToString());
        socket.Emit("stream-end", sent);
    }
}

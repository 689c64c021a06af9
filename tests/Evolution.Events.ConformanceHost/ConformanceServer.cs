using Evolution.Events.EngineIO;
using Evolution.Events.EngineIO.Hosting;
using Evolution.Events.EngineIO.Protocol;
using Evolution.Events.SocketIO;
using Evolution.Events.SocketIO.Hosting;

namespace Evolution.Events.ConformanceHost;

public static class ConformanceServer
{
    public static int ParsePort(string[] args)
    {
        var i = Array.IndexOf(args, "--port");
        var text = i >= 0 && i + 1 < args.Length ? args[i + 1] : Environment.GetEnvironmentVariable("PORT");
        return int.TryParse(text, out var port) ? port : 3000;
    }

    public static WebApplication Build(int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls($"http://localhost:{port}");
        // WebSocket upgrades served on the raw connection, as the gateway does by default
        builder.Services.AddRawWebSocketUpgrades();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.UseRawWebSocketUpgrades());
        builder.Services.AddSocketIO(configure: o =>
        {
            Configure(o.Engine);
            o.ConnectTimeout = 1000;
        });

        var app = builder.Build();
        app.UseRawWebSocketUpgrades();
        app.UseRouting();
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero });

        var echo = new EngineIOServer(Configure(new EngineIOOptions()), app.Services.GetRequiredService<ILogger<EngineIOServer>>())
        {
            OnConnection = _ => new EchoListener(),
        };
        app.MapEngineIO("/engine.io", echo);
        app.MapSocketIO("/socket.io");

        var io = app.Services.GetRequiredService<SocketIOServer>();
        io.Sockets.OnConnection(socket =>
        {
            socket.Emit("auth", socket.Handshake.Auth);
            socket.On("message", e => socket.Emit("message-back", [.. e.Args]));
            socket.On("message-with-ack", e => e.Ack([.. e.Args]));
        });
        io.Of("/custom").OnConnection(socket => socket.Emit("auth", socket.Handshake.Auth));
        return app;
    }

    /// <summary>Whether Engine.IO 3 clients are served too (<c>ALLOW_EIO3=true</c>), for the official v3 suite.</summary>
    public static bool AllowEIO3 => string.Equals(Environment.GetEnvironmentVariable("ALLOW_EIO3"), "true", StringComparison.OrdinalIgnoreCase);

    private static EngineIOOptions Configure(EngineIOOptions o)
    {
        o.AllowEIO3 = AllowEIO3;
        o.PingInterval = 300;
        o.PingTimeout = 200;
        o.MaxPayload = 1_000_000;
        o.CorsOrigins.Add("*");
        return o;
    }

    private sealed class EchoListener : IEngineSocketListener
    {
        public void OnMessage(EngineSocket socket, string text) => socket.Send(OutboundPacket.Message(text));

        public void OnBinary(EngineSocket socket, byte[] data) => socket.Send(OutboundPacket.Binary(data));

        public void OnClose(EngineSocket socket, EngineCloseReason reason, string? description)
        {
        }
    }
}

// permessage-deflate on vs off, on loopback (docs/configuration.md, "WebSocket compression"):
//   dotnet run -c Release --project bench/Evolution.Events.DeflateBench -- <on|off> <sockets> <broadcasts> [level]
// N engine.io WebSocket clients (Node ws, clients.mjs, another process; they offer permessage-deflate) on one
// EngineIOServer (raw upgrade path). Prints the memory per idle socket (GC heap and RSS after full GCs, against the
// server before the clients) and the server's CPU time for M broadcasts of one 2.7 KB event to every socket, until
// every client has received every message. Bounded: the clients give up after 120 s.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Evolution.Events.EngineIO;
using Evolution.Events.EngineIO.Hosting;
using Evolution.Events.EngineIO.Protocol;

var deflate = args[0] == "on";
var sockets = int.Parse(args[1], CultureInfo.InvariantCulture);
var broadcasts = int.Parse(args[2], CultureInfo.InvariantCulture);
var level = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 6;
var options = new EngineIOOptions
{
    PingInterval = 600_000,
    PingTimeout = 600_000,
    PerMessageDeflate = deflate ? new PerMessageDeflateOptions { CompressionLevel = level } : null,
};
var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.WebHost.UseUrls("http://127.0.0.1:0");
builder.Services.AddRawWebSocketUpgrades();
builder.WebHost.ConfigureKestrel(k => k.UseRawWebSocketUpgrades());
var app = builder.Build();
app.UseRawWebSocketUpgrades();
app.UseRouting();
var server = new EngineIOServer(options);
var sessions = new ConcurrentBag<EngineSocket>();
server.OnConnection = s =>
{
    sessions.Add(s);
    return new Silent();
};
app.MapEngineIO("/engine.io", server);
await app.StartAsync();

var baseline = Memory();
var script = Path.Combine(AppContext.BaseDirectory, "clients.mjs");
using var client = Process.Start(new ProcessStartInfo("node")
{
    ArgumentList = { script, app.Urls.First(), sockets.ToString(CultureInfo.InvariantCulture), (sockets * broadcasts).ToString(CultureInfo.InvariantCulture) },
    RedirectStandardOutput = true,
})!;
var ready = await client.StandardOutput.ReadLineAsync();
var wait = Stopwatch.StartNew();
while (server.SessionCount < sockets && wait.Elapsed < TimeSpan.FromSeconds(60))
{
    await Task.Delay(100);
}

await Task.Delay(1000);
var connected = Memory();
Console.WriteLine($"permessage-deflate {(deflate ? "on" : "off")} (level {level}), {server.SessionCount} sockets, clients: {ready}");
Console.WriteLine($"per idle socket: GC heap {(connected.Heap - baseline.Heap) / (double)sockets:F0} B, RSS {(connected.Rss - baseline.Rss) / (double)sockets:F0} B");

var items = Enumerable.Range(0, 60).Select(i => $"{{\"id\":\"3EB0{i * 7919 % 100000:D5}\",\"fromMe\":{(i % 2 == 0 ? "true" : "false")},\"n\":{i}}}");
var json = "{\"event\":\"messages.upsert\",\"instance\":\"sales\",\"data\":[" + string.Join(",", items) + "]}";
var all = sessions.ToArray();
using var self = Process.GetCurrentProcess();
var cpu = self.TotalProcessorTime;
var wall = Stopwatch.StartNew();
for (var k = 0; k < broadcasts; k++)
{
    var packet = OutboundPacket.Message(json + new string(' ', k % 3)); // a new packet each time, as events are
    using (OutboundQueue.Cork())
    {
        foreach (var s in all)
        {
            s.Send(packet);
        }
    }

    if (k % 50 == 49)
    {
        await Task.Delay(1);
    }
}

var done = await client.StandardOutput.ReadLineAsync();
self.Refresh();
var used = self.TotalProcessorTime - cpu;
var delivered = broadcasts * (double)sockets;
Console.WriteLine($"{json.Length} B x {broadcasts} broadcasts x {sockets} sockets: server CPU {used.TotalMilliseconds:F0} ms, "
    + $"{used.TotalMilliseconds * 1000 / delivered:F2} us per message delivered; wall {wall.ElapsedMilliseconds} ms; clients: {done}");
if (!client.WaitForExit(10_000))
{
    client.Kill(entireProcessTree: true);
}

await app.StopAsync();

static (long Heap, long Rss) Memory()
{
    for (var i = 0; i < 3; i++)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
    }

    using var process = Process.GetCurrentProcess();
    return (GC.GetTotalMemory(true), process.WorkingSet64);
}

internal sealed class Silent : IEngineSocketListener
{
    public void OnMessage(EngineSocket socket, string text)
    {
    }

    public void OnBinary(EngineSocket socket, byte[] data)
    {
    }

    public void OnClose(EngineSocket socket, EngineCloseReason reason, string? description)
    {
    }
}

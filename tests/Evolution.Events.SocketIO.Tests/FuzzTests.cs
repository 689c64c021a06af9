using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Evolution.Events.SocketIO.Tests;

/// <summary>
/// Random and mutated packets against a real server, over both transports, text and binary:
/// truncated and oversized frames, bad UTF-8, wrong attachment counts, unknown namespaces, deep
/// JSON, duplicate keys. Invariants: never a 5xx, never an exception in the log, and afterwards the
/// server serves a normal client and its memory is back near its baseline.
/// CI size by default (50,000 packets); a long run: <c>FUZZ_PACKETS=1000000</c>, and
/// <c>FUZZ_SEED=n</c> to replay a run (the seed is printed).
/// </summary>
[Collection(AttackCollection.Name)]
public class FuzzTests(ITestOutputHelper output)
{
    private const int MaxPayload = 64 * 1024;
    private const int Workers = 4;

    [Fact]
    public async Task Random_and_mutated_packets_never_hurt_the_server()
    {
        var packets = int.TryParse(Environment.GetEnvironmentVariable("FUZZ_PACKETS"), out var n) && n > 0 ? n : 50_000;
        var seed = int.TryParse(Environment.GetEnvironmentVariable("FUZZ_SEED"), out var s) ? s : Environment.TickCount & 0x7FFFFFFF;
        output.WriteLine($"fuzz: {packets} packets, seed {seed} (replay with FUZZ_SEED={seed})");

        var logs = new CountingLoggerProvider();
        await using var server = await TestServer.StartAsync(
            o =>
            {
                o.Engine.MaxPayload = MaxPayload;
                o.ConnectTimeout = 2000;
                o.MaxAttachmentBytes = 256 * 1024;
            },
            logs);
        await AssertServesAsync(server);
        await Task.Delay(300);
        var baseline = GC.GetTotalMemory(forceFullCollection: true);

        var stats = new FuzzStats();
        var watch = Stopwatch.StartNew();
        var perWorker = packets / Workers;
        await Task.WhenAll(Enumerable.Range(0, Workers).Select(w => Task.Run(() => RunWorkerAsync(server, new Random(seed + w), perWorker, stats))));
        watch.Stop();

        output.WriteLine($"fuzz: {stats} in {watch.Elapsed.TotalSeconds:F1} s; log: {logs}");
        Assert.Equal(0, stats.ServerErrors);
        Assert.True(logs.Exceptions.IsEmpty, "exceptions logged: " + string.Join(" | ", logs.Exceptions.Take(5)));
        Assert.True(stats.Sent >= perWorker * Workers);

        // afterwards: a normal client is served, every fuzzing session ends, memory returns near its baseline
        await AssertServesAsync(server);
        await AttackTests.WaitUntilAsync(() => server.Io.Engine.SessionCount == 0 && server.Io.PendingConnectionCount == 0);
        server.Observations.Clear(); // the test server records every connect and disconnect: not the server's memory
        var after = GC.GetTotalMemory(forceFullCollection: true);
        output.WriteLine($"fuzz: managed memory {baseline / 1048576.0:F1} MiB before, {after / 1048576.0:F1} MiB after");
        Assert.True(after - baseline < 32L * 1024 * 1024, $"memory grew by {(after - baseline) / 1048576.0:F1} MiB");
    }

    private static async Task RunWorkerAsync(TestServer server, Random random, int packets, FuzzStats stats)
    {
        using var http = new HttpClient { BaseAddress = server.BaseUri, Timeout = TimeSpan.FromSeconds(10) };
        var sent = 0;
        while (sent < packets)
        {
            var batch = Math.Min(packets - sent, random.Next(1, 40));
            sent += random.Next(3) == 0
                ? await PollingSessionAsync(http, random, batch, stats)
                : await WebSocketSessionAsync(server, random, batch, stats);
        }
    }

    private static async Task<int> WebSocketSessionAsync(TestServer server, Random random, int count, FuzzStats stats)
    {
        using var ws = new ClientWebSocket();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await ws.ConnectAsync(new Uri($"ws://{server.BaseUri.Authority}/socket.io/?EIO=4&transport=websocket"), timeout.Token);
        Interlocked.Increment(ref stats.Sessions);
        var draining = DrainAsync(ws, timeout.Token);
        var sent = 0;
        try
        {
            if (random.Next(2) == 0)
            {
                await ws.SendAsync("40"u8.ToArray(), WebSocketMessageType.Text, true, timeout.Token); // join "/" first, half the time
            }

            for (; sent < count; sent++)
            {
                var (bytes, type) = FuzzFrame(random);
                await ws.SendAsync(bytes, type, true, timeout.Token);
                Interlocked.Increment(ref stats.Sent);
            }

            if (ws.State == WebSocketState.Open)
            {
                await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, timeout.Token);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
        {
            Interlocked.Increment(ref stats.ClosedByServer);
            sent = Math.Max(sent, 1);
        }

        await draining;
        return sent;
    }

    private static async Task DrainAsync(ClientWebSocket ws, CancellationToken cancellationToken)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (ws.State is WebSocketState.Open or WebSocketState.CloseSent)
            {
                var result = await ws.ReceiveAsync(buffer, cancellationToken);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
        {
        }
    }

    private static async Task<int> PollingSessionAsync(HttpClient http, Random random, int count, FuzzStats stats)
    {
        using var handshake = await http.GetAsync("/socket.io/?EIO=4&transport=polling");
        stats.Count(handshake);
        var body = await handshake.Content.ReadAsStringAsync();
        var sid = JsonNode.Parse(body[1..])!["sid"]!.GetValue<string>();
        Interlocked.Increment(ref stats.Sessions);
        var path = AttackTests.PollPath(sid);
        var sent = 0;
        while (sent < count)
        {
            // several packets per POST, as a polling client sends them
            var packets = Math.Min(count - sent, random.Next(1, 6));
            var payload = string.Join('\u001e', Enumerable.Range(0, packets).Select(_ => FuzzPollingPacket(random)));
            using var post = await http.PostAsync(path, new ByteArrayContent(Mutate(random, Encoding.UTF8.GetBytes(payload), rate: 30)));
            stats.Count(post);
            sent += packets;
            Interlocked.Add(ref stats.Sent, packets);
            if (!post.IsSuccessStatusCode)
            {
                Interlocked.Increment(ref stats.ClosedByServer);
                return sent;
            }
        }

        using var poll = await http.GetAsync(path);
        stats.Count(poll);
        using var close = await http.PostAsync(path, new StringContent("1"));
        stats.Count(close);
        return sent;
    }

    /// <summary>A WebSocket message: a Socket.IO packet (maybe mutated) as text, or bytes as binary, now and then oversized or bad UTF-8.</summary>
    private static (byte[] Bytes, WebSocketMessageType Type) FuzzFrame(Random random)
    {
        switch (random.Next(20))
        {
            case 0:
                return (RandomBytes(random, random.Next(0, 2000)), WebSocketMessageType.Binary);
            case 1:
                return (RandomBytes(random, MaxPayload + random.Next(1, 5000)), random.Next(2) == 0 ? WebSocketMessageType.Binary : WebSocketMessageType.Text);
            case 2:
                return ([0x34, 0x32, 0xc3, 0x28, .. RandomBytes(random, random.Next(0, 20))], WebSocketMessageType.Text); // invalid UTF-8
            default:
                var text = Encoding.UTF8.GetBytes("4" + SocketPacketText(random));
                return (random.Next(4) == 0 ? Mutate(random, text, rate: 10) : text, WebSocketMessageType.Text);
        }
    }

    private static string FuzzPollingPacket(Random random) => random.Next(8) switch
    {
        0 => "b" + Convert.ToBase64String(RandomBytes(random, random.Next(0, 500))),
        1 => "b" + RandomText(random, random.Next(0, 30)), // bad base64
        2 => RandomText(random, random.Next(0, 40)),
        _ => "4" + SocketPacketText(random),
    };

    private static readonly string[] Namespaces = ["/", "/admin", "/dyn-a", "/dyn-b", "/nope", "/dyn-", "/dyn-\n", "//", "/" + new string('n', 300)];

    // events of the test server whose handlers accept any arguments ("join", "leave" and "ask" are
    // test handlers that expect a string: an exception there is the application's, logged as it should be)
    private static readonly string[] Events = ["echo", "who", "binary-info", "connect", "disconnect", "x", "__proto__", "kick", "engine-close"];

    /// <summary>A Socket.IO packet, well-formed or nearly so.</summary>
    private static string SocketPacketText(Random random)
    {
        var nsp = Namespaces[random.Next(Namespaces.Length)];
        var prefix = nsp == "/" && random.Next(2) == 0 ? "" : nsp + ",";
        var ack = random.Next(4) == 0 ? random.Next(0, 1000).ToString(System.Globalization.CultureInfo.InvariantCulture) : "";
        return random.Next(9) switch
        {
            0 => "0" + prefix + (random.Next(2) == 0 ? "" : Json(random, 3)),
            1 => "1" + prefix,
            2 => "2" + prefix + ack + "[\"" + Events[random.Next(Events.Length)] + "\"," + Json(random, 4) + "]",
            3 => "3" + prefix + ack + "[" + Json(random, 3) + "]",
            4 or 5 => BinaryPacket(random, prefix, ack),
            6 => "2" + prefix + "[\"echo\"," + new string('[', random.Next(50, 3000)) + new string(']', random.Next(0, 3000)) + "]",
            7 => "0" + prefix + "{\"a\":1,\"a\":2,\"token\":\"secret\"}",
            _ => random.Next(10).ToString(System.Globalization.CultureInfo.InvariantCulture) + RandomText(random, random.Next(0, 60)),
        };
    }

    private static string BinaryPacket(Random random, string prefix, string ack)
    {
        var announced = random.Next(6) == 0 ? random.Next(0, 100_000) : random.Next(0, 5);
        var placeholders = random.Next(0, 5);
        var args = string.Join(',', Enumerable.Range(0, placeholders).Select(i => $"{{\"_placeholder\":true,\"num\":{(random.Next(5) == 0 ? random.Next(-2, 50) : i)}}}"));
        var type = random.Next(2) == 0 ? "5" : "6";
        var body = type == "5" ? $"[\"binary-info\"{(placeholders > 0 ? "," : "")}{args}]" : $"[{args}]";
        return $"{type}{announced}-{prefix}{ack}{body}";
    }

    private static string Json(Random random, int depth)
    {
        if (depth == 0)
        {
            return random.Next(4) switch
            {
                0 => random.Next().ToString(System.Globalization.CultureInfo.InvariantCulture),
                1 => "\"" + RandomText(random, random.Next(0, 12)).Replace("\"", "", StringComparison.Ordinal).Replace("\\", "", StringComparison.Ordinal) + "\"",
                2 => random.Next(2) == 0 ? "true" : "null",
                _ => "1.5e3",
            };
        }

        return random.Next(3) switch
        {
            0 => "[" + string.Join(',', Enumerable.Range(0, random.Next(0, 4)).Select(_ => Json(random, depth - 1))) + "]",
            1 => "{" + string.Join(',', Enumerable.Range(0, random.Next(0, 4)).Select(i => $"\"k{(random.Next(4) == 0 ? 0 : i)}\":{Json(random, depth - 1)}")) + "}",
            _ => Json(random, 0),
        };
    }

    /// <summary>Flips, drops, duplicates or truncates bytes (about one change in <paramref name="rate"/> bytes, at least one).</summary>
    private static byte[] Mutate(Random random, byte[] data, int rate)
    {
        if (data.Length == 0 || random.Next(3) == 0)
        {
            return data;
        }

        var list = new List<byte>(data);
        var changes = 1 + (data.Length / rate);
        for (var i = 0; i < changes && list.Count > 0; i++)
        {
            var at = random.Next(list.Count);
            switch (random.Next(4))
            {
                case 0:
                    list[at] = (byte)random.Next(256);
                    break;
                case 1:
                    list.RemoveAt(at);
                    break;
                case 2:
                    list.Insert(at, (byte)Inserted[random.Next(Inserted.Length)]);
                    break;
                default:
                    list.RemoveRange(at, list.Count - at); // truncated
                    break;
            }
        }

        return [.. list];
    }

    private const string Inserted = "{}[]\",:-/0123456789\u001e";

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    private static string RandomText(Random random, int length)
    {
        var chars = new char[length];
        for (var i = 0; i < length; i++)
        {
            chars[i] = (char)(random.Next(6) == 0 ? random.Next(0, 0x3000) : random.Next(0x20, 0x7f));
        }

        return new string(chars);
    }

    /// <summary>A normal client: joins "/", emits with an ack and gets its answer.</summary>
    private static async Task AssertServesAsync(TestServer server)
    {
        using var ws = await AttackTests.OpenWebSocketAsync(server);
        await ws.SendAsync("40"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.StartsWith("40{", await AttackTests.ReceiveTextAsync(ws));
        await ws.SendAsync("427[\"echo\",\"still here\"]"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.Equal("437[\"still here\"]", await AttackTests.ReceiveTextAsync(ws));
        await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
    }

    private sealed class FuzzStats
    {
        public long Sent;
        public long Sessions;
        public long ClosedByServer;
        public long Responses;
        public long ServerErrors;

        public void Count(HttpResponseMessage response)
        {
            Interlocked.Increment(ref Responses);
            if ((int)response.StatusCode >= 500)
            {
                Interlocked.Increment(ref ServerErrors);
            }
        }

        public override string ToString() =>
            $"{Sent} packets, {Sessions} sessions ({ClosedByServer} ended by the server), {Responses} HTTP responses ({ServerErrors} 5xx)";
    }
}

/// <summary>Counts log entries by level and keeps the first failures: errors, and exceptions logged by the library or at Warning and above.</summary>
public sealed class CountingLoggerProvider : ILoggerProvider
{
    private readonly long[] _levels = new long[7];

    public ConcurrentQueue<string> Exceptions { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Counter(this, categoryName);

    public void Dispose()
    {
    }

    public override string ToString() =>
        string.Join(", ", Enumerable.Range(0, 6).Where(i => _levels[i] > 0).Select(i => $"{(LogLevel)i} {_levels[i]}"));

    private sealed class Counter(CountingLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            Interlocked.Increment(ref owner._levels[(int)logLevel]);
            // Kestrel's own Debug lines about connections the server aborted carry exceptions too: those are not failures
            var failure = logLevel >= LogLevel.Error
                || (exception is not null && (logLevel >= LogLevel.Warning || category.StartsWith("Evolution.", StringComparison.Ordinal)));
            if (failure && owner.Exceptions.Count < 100)
            {
                owner.Exceptions.Enqueue($"{category} {eventId.Id}: {formatter(state, exception)} {exception}");
            }
        }
    }
}

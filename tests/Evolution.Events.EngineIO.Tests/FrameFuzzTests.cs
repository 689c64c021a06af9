using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Evolution.Events.EngineIO.Tests;

/// <summary>
/// Random WebSocket frames on raw TCP: any opcode, reserved bits, unmasked frames, lengths in every
/// encoding (and lengths that lie), fragments out of order, oversized control frames, bad UTF-8,
/// connections cut mid-frame. Invariants: no exception logged, every session ends, memory returns
/// near its baseline, and the server still serves. <c>FUZZ_FRAMES</c> sizes a long run,
/// <c>FUZZ_SEED</c> replays one (the seed is printed).
/// </summary>
[Collection(AttackCollection.Name)]
public class FrameFuzzTests(ITestOutputHelper output)
{
    private const int MaxPayload = 32 * 1024;

    [Fact]
    public async Task Random_frames_never_hurt_the_server()
    {
        var frames = int.TryParse(Environment.GetEnvironmentVariable("FUZZ_FRAMES"), out var n) && n > 0 ? n : 20_000;
        var seed = int.TryParse(Environment.GetEnvironmentVariable("FUZZ_SEED"), out var s) ? s : Environment.TickCount & 0x7FFFFFFF;
        output.WriteLine($"frame fuzz: {frames} frames, seed {seed} (replay with FUZZ_SEED={seed})");
        var logs = new FailureLog();
        await using var host = await EngineHost.StartAsync(o => o.MaxPayload = MaxPayload, logs: logs);
        host.Echo = true;
        var baseline = GC.GetTotalMemory(forceFullCollection: true);

        long sent = 0, connections = 0;
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            var random = new Random(seed + w);
            while (Interlocked.Read(ref sent) < frames)
            {
                Interlocked.Increment(ref connections);
                using var client = await RawWebSocket.ConnectAsync(host, "EIO=4&transport=websocket");
                var count = random.Next(1, 30);
                for (var i = 0; i < count; i++)
                {
                    var frame = RandomFrame(random);
                    if (!client.TrySendAll(frame, TimeSpan.FromSeconds(2)))
                    {
                        break; // closed by the server (or it stopped reading): a new connection
                    }

                    Interlocked.Increment(ref sent);
                }

                if (random.Next(3) == 0)
                {
                    client.TrySendAll(RawWebSocket.FrameHeader(0x1, random.Next(10, MaxPayload)), TimeSpan.FromSeconds(1)); // cut mid-frame
                }
            }
        })));
        output.WriteLine($"frame fuzz: {sent} frames over {connections} connections in {watch.Elapsed.TotalSeconds:F1} s; log: {logs}");

        Assert.True(logs.Failures.IsEmpty, "failures logged: " + string.Join(" | ", logs.Failures.Take(5)));
        await AttackTests.WaitUntilAsync(() => host.Server.SessionCount == 0, TimeSpan.FromSeconds(30));
        var (sid, _) = await host.HandshakeAsync(); // still serves
        Assert.True(host.Server.TryGetSession(sid, out _));
        host.Listeners.Clear(); // the test host records every message of every session: not the server's memory
        var after = GC.GetTotalMemory(forceFullCollection: true);
        output.WriteLine($"frame fuzz: managed memory {baseline / 1048576.0:F1} MiB before, {after / 1048576.0:F1} MiB after");
        Assert.True(after - baseline < 32L * 1024 * 1024, $"memory grew by {(after - baseline) / 1048576.0:F1} MiB");
    }

    private static byte[] RandomFrame(Random random)
    {
        var payload = new byte[random.Next(8) switch
        {
            0 => random.Next(126, 70_000),
            1 => random.Next(MaxPayload - 10, MaxPayload + 10),
            _ => random.Next(0, 140),
        }];
        random.NextBytes(payload);
        if (payload.Length > 0 && random.Next(2) == 0)
        {
            payload[0] = (byte)'4'; // an Engine.IO message, half the time
        }

        var opcode = random.Next(5) == 0 ? (byte)random.Next(16) : (byte)new[] { 0x0, 0x1, 0x2, 0x8, 0x9, 0xA }[random.Next(6)];
        var frame = RawWebSocket.Frame(opcode, payload);
        switch (random.Next(10))
        {
            case 0:
                frame[0] &= 0x7F; // not final: a fragment
                break;
            case 1:
                frame[0] |= (byte)(0x10 << random.Next(3)); // a reserved bit
                break;
            case 2:
                frame[1] &= 0x7F; // unmasked (the mask bytes now read as payload)
                break;
            case 3:
                return frame[..random.Next(1, frame.Length)]; // truncated: the next frame's bytes follow
            case 4:
                if ((frame[1] & 0x7F) == 127)
                {
                    frame[2] = (byte)random.Next(256); // a length up to 2^63
                }

                break;
        }

        return frame;
    }

    private sealed class FailureLog : ILoggerProvider
    {
        private long _entries;

        public ConcurrentQueue<string> Failures { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose()
        {
        }

        public override string ToString() => $"{Interlocked.Read(ref _entries)} entries, {Failures.Count} failures";

        private sealed class Logger(FailureLog owner, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                Interlocked.Increment(ref owner._entries);
                var failure = logLevel >= LogLevel.Error
                    || (exception is not null && (logLevel >= LogLevel.Warning || category.StartsWith("Evolution.", StringComparison.Ordinal)));
                if (failure && owner.Failures.Count < 100)
                {
                    owner.Failures.Enqueue($"{category} {eventId.Id}: {formatter(state, exception)} {exception}");
                }
            }
        }
    }
}

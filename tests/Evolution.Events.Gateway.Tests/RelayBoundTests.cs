using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Evolution.Events.Gateway.Namespaces;

namespace Evolution.Events.Gateway.Tests;

/// <summary>
/// The relay to INBOUND_WEBHOOK_URL has a global bound (requests and bytes in flight) besides the per-socket
/// one, and its acks never name the upstream's address.
/// </summary>
public class RelayBoundTests
{
    [Fact]
    public async Task ManyClientsAgainstASlowUpstreamNeverPassTheGlobalBound()
    {
        await using var upstream = await SlowUpstream.StartAsync();
        await using var gw = await TestGateway.StartAsync(new()
        {
            ["INBOUND_WEBHOOK_URL"] = upstream.Url,
            ["INBOUND_WEBHOOK_MAX_IN_FLIGHT"] = "4",
            ["INBOUND_WEBHOOK_TIMEOUT_MS"] = "60000",
        });
        var token = await gw.CreateInstanceAsync("sales");
        var clients = new List<NodeClient>();
        try
        {
            for (var i = 0; i < 3; i++)
                clients.Add(await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(token), "websocket"));
            var id = 0;
            foreach (var client in clients)
            {
                for (var j = 0; j < 4; j++)
                {
                    await client.SendAsync(new JsonObject
                    {
                        ["cmd"] = "emit", ["event"] = "send.message", ["args"] = new JsonArray(new JsonObject { ["n"] = id }),
                        ["ack"] = true, ["id"] = ++id, ["timeoutMs"] = 60000,
                    });
                }
            }

            // 12 emitted, 4 held by the upstream: the 8 others are answered at once with the refusal
            var acks = new System.Collections.Concurrent.ConcurrentQueue<JsonObject>();
            var readers = clients.Select(client => Task.Run(async () =>
            {
                for (var j = 0; j < 4; j++)
                    acks.Enqueue((await client.NextAsync(l => (string?)l["type"] == "ack", TimeSpan.FromSeconds(60)))["args"]![0]!.AsObject());
            })).ToList();
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (acks.Count < 8 && DateTime.UtcNow < deadline)
                await Task.Delay(50);
            Assert.Equal(8, acks.Count);
            Assert.All(acks, a => Assert.Contains("INBOUND_WEBHOOK_MAX_IN_FLIGHT", (string?)a["error"], StringComparison.Ordinal));
            await WaitUntilAsync(() => upstream.Active == 4);
            Assert.Equal(4, upstream.MaxActive);

            // released, the 4 get the upstream's answer, and the relay takes new ones again
            upstream.Release();
            await Task.WhenAll(readers).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(4, acks.Count(a => a["ok"] is not null && (bool)a["ok"]!));
            var again = await SocketIORelayTests.EmitAsync(clients[0], "send.message", 1);
            Assert.True((bool)again["args"]![0]!["ok"]!);
            Assert.True(upstream.MaxActive <= 4, $"{upstream.MaxActive} relays were in flight");
        }
        finally
        {
            upstream.Release();
            foreach (var client in clients)
                await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task OneSocketHasAtMost32RelaysInFlightAndTheyAreCancelledWhenItLeaves()
    {
        await using var upstream = await SlowUpstream.StartAsync();
        await using var gw = await TestGateway.StartAsync(new()
        {
            ["INBOUND_WEBHOOK_URL"] = upstream.Url,
            ["INBOUND_WEBHOOK_MAX_IN_FLIGHT"] = "1000",
            ["INBOUND_WEBHOOK_TIMEOUT_MS"] = "60000",
        });
        var client = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(TestGateway.Key), "websocket");
        try
        {
            for (var i = 1; i <= ClientEventRelay.MaxInFlightPerSocket + 1; i++)
            {
                await client.SendAsync(new JsonObject
                {
                    ["cmd"] = "emit", ["event"] = "send.message", ["args"] = new JsonArray(i),
                    ["ack"] = true, ["id"] = i, ["timeoutMs"] = 60000,
                });
            }

            var refused = await TryNextAckAsync(client, TimeSpan.FromSeconds(10));
            Assert.NotNull(refused);
            Assert.Equal($"too many relays in flight (max {ClientEventRelay.MaxInFlightPerSocket})", (string?)refused["args"]![0]!["error"]);
            await WaitUntilAsync(() => upstream.Active == ClientEventRelay.MaxInFlightPerSocket);
        }
        finally
        {
            await client.DisposeAsync();
        }

        // the socket left: its relays are cancelled (the upstream sees them aborted), never left to their 60 s timeout
        await WaitUntilAsync(() => upstream.Active == 0);
    }

    [Fact]
    public async Task BytesInFlightAreBoundedToo()
    {
        await using var upstream = await SlowUpstream.StartAsync();
        await using var gw = await TestGateway.StartAsync(new()
        {
            ["INBOUND_WEBHOOK_URL"] = upstream.Url,
            ["INBOUND_WEBHOOK_MAX_IN_FLIGHT_BYTES"] = "5000",
            ["INBOUND_WEBHOOK_TIMEOUT_MS"] = "60000",
        });
        await using var client = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(TestGateway.Key), "websocket");
        for (var i = 1; i <= 5; i++)
        {
            await client.SendAsync(new JsonObject
            {
                ["cmd"] = "emit", ["event"] = "send.message", ["args"] = new JsonArray(new string('x', 2000)),
                ["ack"] = true, ["id"] = i, ["timeoutMs"] = 60000,
            });
        }
        // each payload is ~2.1 KB: two fit in 5000 bytes, three are refused
        for (var i = 0; i < 3; i++)
        {
            var ack = await TryNextAckAsync(client, TimeSpan.FromSeconds(10));
            Assert.NotNull(ack);
            Assert.Contains("INBOUND_WEBHOOK_MAX_IN_FLIGHT_BYTES=5000", (string?)ack["args"]![0]!["error"], StringComparison.Ordinal);
        }
        await WaitUntilAsync(() => upstream.Active == 2);
        Assert.Equal(2, upstream.MaxActive);
        upstream.Release();
        for (var i = 0; i < 2; i++)
            Assert.True((bool)(await TryNextAckAsync(client, TimeSpan.FromSeconds(10)))!["args"]![0]!["ok"]!);
    }

    [Fact]
    public async Task AFailedUpstreamsAckNamesNeitherItsHostNorPortNorPath()
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }
        await using var gw = await TestGateway.StartAsync(new() { ["INBOUND_WEBHOOK_URL"] = $"http://127.0.0.1:{port}/secret-hook-path" });
        await using var client = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(TestGateway.Key), "websocket");
        var error = (string?)(await SocketIORelayTests.EmitAsync(client, "send.message", 1))["args"]![0]!["error"];
        Assert.Equal("upstream unreachable", error);
        Assert.DoesNotContain("127.0.0.1", error, StringComparison.Ordinal);
        Assert.DoesNotContain(port.ToString(), error, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", error, StringComparison.Ordinal);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!condition() && DateTime.UtcNow < deadline)
            await Task.Delay(20);
        Assert.True(condition(), "condition not met within 20 s");
    }

    private static async Task<JsonObject?> TryNextAckAsync(NodeClient client, TimeSpan wait)
    {
        try
        {
            return await client.NextAsync(l => (string?)l["type"] == "ack", wait);
        }
        catch (Xunit.Sdk.FailException)
        {
            return null;
        }
    }

    /// <summary>An upstream on 127.0.0.1:0 that holds every request until <see cref="Release"/>, counting them.</summary>
    private sealed class SlowUpstream : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _active;
        private int _maxActive;

        private SlowUpstream(WebApplication app) => _app = app;

        public int Active => Volatile.Read(ref _active);

        public int MaxActive => Volatile.Read(ref _maxActive);

        public string Url => GatewayApp.BoundAddress(_app).ToString().TrimEnd('/') + "/hook";

        public void Release() => _gate.TrySetResult();

        public static async Task<SlowUpstream> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Logging.ClearProviders();
            var app = builder.Build();
            var upstream = new SlowUpstream(app);
            app.Run(async context =>
            {
                var now = Interlocked.Increment(ref upstream._active);
                int max;
                while ((max = Volatile.Read(ref upstream._maxActive)) < now
                    && Interlocked.CompareExchange(ref upstream._maxActive, now, max) != max)
                {
                }
                try
                {
                    await upstream._gate.Task.WaitAsync(TimeSpan.FromSeconds(60), context.RequestAborted);
                    await context.Response.WriteAsJsonAsync(new JsonObject { ["ok"] = true });
                }
                finally
                {
                    Interlocked.Decrement(ref upstream._active);
                }
            });
            await app.StartAsync();
            return upstream;
        }

        public async ValueTask DisposeAsync()
        {
            Release();
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}

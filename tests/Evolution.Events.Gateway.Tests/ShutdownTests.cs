using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using Evolution.Events.Testing;

namespace Evolution.Events.Gateway.Tests;

/// <summary>Stopping the host: what was acknowledged is delivered, the rest is refused with 503.</summary>
public class ShutdownTests
{
    /// <summary>
    /// Producers post continuously while the host stops. Every event answered 202 must reach the connected
    /// Socket.IO and plain WebSocket clients (before their transport closes); every other POST must get 503
    /// with Retry-After and the error shape, or fail to connect once the listener closed. Nothing else.
    /// </summary>
    /// <remarks>With Redis (REDIS_URI) the accepted batches travel through the Redis event bus and back.</remarks>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task EveryAcceptedEventReachesTheClientsAndTheRestGets503(bool redis)
    {
        await using var redisServer = redis ? await RedisServer.StartAsync() : null;
        var gw = await TestGateway.StartAsync(redisServer is null ? null : new() { ["REDIS_URI"] = redisServer.Uri() });
        await using var _ = gw;
        await gw.CreateInstanceAsync("sales");
        await using var node = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(TestGateway.Key), "websocket");
        using var plain = await gw.ConnectAsync($"/ws/events?apikey={TestGateway.Key}&instance=sales");
        var plainSeqs = new List<int>();
        var plainReader = ReadUntilCloseAsync(plain, plainSeqs);

        var accepted = new ConcurrentBag<int>();
        var refused = new ConcurrentBag<int>();
        var connectionErrors = 0;
        var unexpected = new ConcurrentBag<string>();
        var nextSeq = -1;
        var stopping = new TaskCompletionSource();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        async Task ProduceAsync()
        {
            using var http = new HttpClient { BaseAddress = gw.BaseUri, Timeout = TimeSpan.FromSeconds(20) };
            while (!deadline.IsCancellationRequested)
            {
                var seq = Interlocked.Increment(ref nextSeq);
                if (seq >= 50_000)
                    return;
                using var request = new HttpRequestMessage(HttpMethod.Post, "/webhook")
                {
                    Content = new StringContent(TestGateway.Event("messages.upsert", "sales", $$"""{"seq":{{seq}}}"""), Encoding.UTF8, "application/json"),
                };
                request.Headers.Add("apikey", TestGateway.Key);
                try
                {
                    using var response = await http.SendAsync(request, deadline.Token);
                    var status = (int)response.StatusCode;
                    if (status == 202)
                    {
                        accepted.Add(seq);
                    }
                    else if (status == 503)
                    {
                        refused.Add(seq);
                        if (response.Headers.RetryAfter?.Delta is not { TotalSeconds: > 0 })
                            unexpected.Add($"{seq}: 503 without Retry-After");
                        var body = (await TestGateway.ReadJsonAsync(response))!;
                        if ((int?)body["status"] != 503 || body["messages"]?.AsArray().Count is not > 0)
                            unexpected.Add($"{seq}: 503 body {body.ToJsonString()}");
                    }
                    else
                    {
                        unexpected.Add($"{seq}: {status} {await response.Content.ReadAsStringAsync()}");
                    }
                }
                catch (HttpRequestException)
                {
                    // the listener closed: fine once the host is stopping, and nothing more to send
                    Interlocked.Increment(ref connectionErrors);
                    if (!stopping.Task.IsCompleted)
                        unexpected.Add($"{seq}: connection error before the host was stopped");
                    return;
                }
            }
        }

        var producers = Enumerable.Range(0, 4).Select(_ => Task.Run(ProduceAsync)).ToArray();
        await PlainWebSocketTests.WaitUntilAsync(() => accepted.Count >= 300);
        stopping.SetResult();
        await gw.StopAsync();
        await Task.WhenAll(producers);

        var nodeSeqs = new List<int>();
        while (true)
        {
            var line = await node.NextAsync(l => (string?)l["type"] is "event" or "disconnect", TimeSpan.FromSeconds(20));
            if ((string?)line["type"] == "disconnect")
            {
                Assert.Equal("transport close", (string?)line["reason"]);
                break;
            }
            nodeSeqs.Add((int)line["args"]![0]!["data"]!["seq"]!);
        }
        await plainReader;
        Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, plain.CloseStatus);

        Assert.Empty(unexpected);
        var expected = accepted.Order().ToList();
        Assert.Equal(expected, nodeSeqs.Order().ToList());
        Assert.Equal(expected, plainSeqs.Order().ToList());
        Assert.Equal(nodeSeqs.Count, nodeSeqs.Distinct().Count());
        Assert.True(accepted.Count >= 300, $"accepted {accepted.Count}");
        Console.WriteLine($"shutdown under load: {accepted.Count} accepted and delivered, {refused.Count} refused with 503, {connectionErrors} connection errors");
    }

    private static async Task ReadUntilCloseAsync(ClientWebSocket ws, List<int> seqs)
    {
        while (await TestGateway.ReceiveTextAsync(ws) is { } text)
            seqs.Add((int)JsonNode.Parse(text)!["data"]!["seq"]!);
    }
}

using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Evolution.Events.Testing;
using Xunit.Abstractions;

namespace Evolution.Events.Gateway.Tests;

/// <summary>
/// Failures of a real cluster: two gateway processes (<see cref="GatewayProcess"/>) on one real redis-server, with a
/// Socket.IO client (socket.io-client, Node) and a plain WebSocket client on each node, a stream of events posted
/// alternately to both. One node SIGKILLed mid-stream: the other keeps serving and its clients get every accepted
/// event exactly once, in order. Redis restarted mid-stream: the nodes report the outage (readiness 503, the counter,
/// the log), keep serving their own clients, reconnect by themselves, and delivery across nodes resumes.
/// </summary>
public sealed class ClusterProcessTests(ITestOutputHelper output)
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(30) };

    private sealed class Node(GatewayProcess process) : IAsyncDisposable
    {
        public GatewayProcess Process { get; } = process;
        public NodeClient? SocketIO { get; set; }
        public ClientWebSocket? Plain { get; set; }

        public string Url(string path) => new Uri(Process.BaseUri, path).ToString();

        public async ValueTask DisposeAsync()
        {
            Plain?.Dispose();
            if (SocketIO is not null)
                await SocketIO.DisposeAsync();
            await Process.DisposeAsync();
        }
    }

    private static async Task<Node> StartNodeAsync(RedisServer redis, string mode)
    {
        var process = GatewayProcess.Start(new()
        {
            ["REDIS_URI"] = redis.Uri(),
            ["REDIS_ADAPTER"] = mode,
            ["LOG_LEVEL"] = "Information",
            ["NODE_HEARTBEAT_MS"] = "300",
        }, readStdout: true);
        await process.WaitReadyAsync(Http);
        return new Node(process);
    }

    private static async Task<HttpResponseMessage> SendAsync(Node node, HttpMethod method, string path, string? json = null)
    {
        var request = new HttpRequestMessage(method, node.Url(path));
        request.Headers.Add("apikey", TestGateway.Key);
        if (json is not null)
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        return await Http.SendAsync(request);
    }

    private static async Task EventuallyAsync(Func<Task<bool>> condition, string what, int seconds = 30)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(seconds), $"not within {seconds} s: {what}");
            await Task.Delay(100);
        }
    }

    private static async Task<HttpStatusCode> ReadyAsync(Node node)
    {
        try
        {
            using var response = await Http.GetAsync(node.Url("/health/ready"));
            return response.StatusCode;
        }
        catch (HttpRequestException)
        {
            return 0;
        }
    }

    private static async Task<double> MetricAsync(Node node, string name)
    {
        using var response = await SendAsync(node, HttpMethod.Get, "/metrics");
        var text = await response.Content.ReadAsStringAsync();
        var m = Regex.Match(text, $@"^{name} (\S+)$", RegexOptions.Multiline);
        return m.Success ? double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
    }

    private static async Task<string> CreateInstanceAsync(Node node, string name)
    {
        using var response = await SendAsync(node, HttpMethod.Post, "/instance/create", $$"""{"instanceName":"{{name}}"}""");
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (string)JsonNode.Parse(await response.Content.ReadAsStringAsync())!["token"]!;
    }

    /// <summary>Connects a Socket.IO client to /{instance} and a plain WebSocket client to node.</summary>
    private static async Task ConnectClientsAsync(Node node, string instance, string token)
    {
        await EventuallyAsync(async () =>
        {
            using var response = await SendAsync(node, HttpMethod.Get, $"/instance/fetchInstances?instanceName={instance}");
            return response.StatusCode == HttpStatusCode.OK && JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsArray().Count == 1;
        }, "the instance is known");
        var options = new JsonObject { ["auth"] = new JsonObject { ["token"] = token } };
        node.SocketIO = NodeClient.Start("client.mjs", node.Process.BaseUri.ToString() + instance, options.ToJsonString());
        var first = await node.SocketIO.NextAsync(l => (string?)l["type"] is "connect" or "connect_error");
        Assert.Equal("connect", (string?)first["type"]);
        node.Plain = new ClientWebSocket();
        await node.Plain.ConnectAsync(new Uri($"ws://{node.Process.BaseUri.Authority}/ws/events?token={token}"), CancellationToken.None);
    }

    private static string Event(string instance, int seq) => TestGateway.Event("messages.upsert", instance, $$"""{"seq":{{seq}}}""");

    /// <summary>Posts one event; true on 202, false when the node cannot be reached (killed).</summary>
    private static async Task<bool> PostAsync(Node node, string instance, int seq)
    {
        try
        {
            using var response = await SendAsync(node, HttpMethod.Post, "/webhook", Event(instance, seq));
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            return true;
        }
        catch (HttpRequestException)
        {
            return false;
        }
    }

    private static async Task<int> NextSocketIOSeqAsync(Node node) =>
        (int)(await node.SocketIO!.NextEventAsync(TimeSpan.FromSeconds(20)))["args"]![0]!["data"]!["seq"]!;

    private static async Task<int> NextPlainSeqAsync(Node node) =>
        (int)(await TestGateway.ReceiveJsonAsync(node.Plain!))["data"]!["seq"]!;

    /// <summary>Each client of the node gets exactly <paramref name="expected"/>, in order, then the marker, nothing else.</summary>
    private static async Task AssertExactlyAsync(Node node, IReadOnlyList<int> expected, int marker)
    {
        foreach (var seq in expected.Append(marker))
        {
            Assert.Equal(seq, await NextSocketIOSeqAsync(node));
            Assert.Equal(seq, await NextPlainSeqAsync(node));
        }
    }

    [Theory]
    [InlineData("streams")]
    [InlineData("pubsub")]
    public async Task ANodeKilledMidStream_TheOtherDeliversEverythingAcceptedExactlyOnce(string mode)
    {
        await using var redis = await RedisServer.StartAsync();
        await using var a = await StartNodeAsync(redis, mode);
        await using var b = await StartNodeAsync(redis, mode);
        var token = await CreateInstanceAsync(a, "orders");
        await ConnectClientsAsync(a, "orders", token);
        await ConnectClientsAsync(b, "orders", token);

        // alternately to A and B; A is SIGKILLed after 30 events; the rest goes to B
        var accepted = new List<int>();
        var postedToA = 0;
        for (var seq = 0; seq < 60; seq++)
        {
            if (seq == 30)
            {
                await a.Process.KillAsync();
                output.WriteLine($"A killed after {accepted.Count} accepted events ({postedToA} of them by A)");
            }
            var target = seq % 2 == 0 && !a.Process.HasExited ? a : b;
            if (await PostAsync(target, "orders", seq))
            {
                accepted.Add(seq);
                if (target == a)
                    postedToA++;
            }
        }
        Assert.True(postedToA >= 10);
        await PostAsync(b, "orders", 1000);
        await AssertExactlyAsync(b, accepted, 1000);
        await b.SocketIO!.AssertNoEventAsync(TimeSpan.FromMilliseconds(300));

        // B still serves: new clients, the API, readiness; A leaves B's cluster view
        Assert.Equal(HttpStatusCode.OK, await ReadyAsync(b));
        await EventuallyAsync(async () =>
        {
            using var response = await SendAsync(b, HttpMethod.Get, "/dashboard/stats");
            return (int)JsonNode.Parse(await response.Content.ReadAsStringAsync())!["cluster"]!["nodes"]! == 1;
        }, "the killed node disappears from the cluster view");
        Assert.False(b.Process.HasExited);
    }

    [Theory]
    [InlineData("streams")]
    [InlineData("pubsub")]
    public async Task RedisRestartedMidStream_NodesReportTheGap_ReconnectByThemselves_AndClusterDeliveryResumes(string mode)
    {
        await using var redis = await RedisServer.StartAsync(new RedisServerOptions { AppendOnly = true });
        await using var a = await StartNodeAsync(redis, mode);
        await using var b = await StartNodeAsync(redis, mode);
        var token = await CreateInstanceAsync(a, "orders");
        await ConnectClientsAsync(a, "orders", token);
        await ConnectClientsAsync(b, "orders", token);

        var before = new List<int>();
        for (var seq = 0; seq < 10; seq++)
        {
            Assert.True(await PostAsync(seq % 2 == 0 ? a : b, "orders", seq));
            before.Add(seq);
        }
        await Task.Delay(1200); // AOF fsyncs every second: the registry and the counter are on disk

        await redis.StopAsync(graceful: false);
        await EventuallyAsync(async () => await ReadyAsync(a) == HttpStatusCode.ServiceUnavailable
            && await ReadyAsync(b) == HttpStatusCode.ServiceUnavailable, "both nodes not ready while Redis is down");

        // during the outage each node serves its own clients only, and says so
        Assert.True(await PostAsync(a, "orders", 100));
        Assert.True(await PostAsync(b, "orders", 200));
        Assert.Equal(1, await MetricAsync(a, "evolution_events_local_only_total"));
        Assert.Equal(1, await MetricAsync(b, "evolution_events_local_only_total"));
        Assert.Equal(0, await MetricAsync(a, "evolution_redis_up"));

        await redis.StartAsync();
        await EventuallyAsync(async () => await ReadyAsync(a) == HttpStatusCode.OK && await ReadyAsync(b) == HttpStatusCode.OK,
            "both nodes ready again");
        if (mode == "pubsub")
        {
            // pub/sub: what is published before a node's subscription is back never reaches it (the stream has no such gap)
            await using var mux = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{redis.Port}");
            await EventuallyAsync(async () => (long)((StackExchange.Redis.RedisResult[])(await mux.GetDatabase()
                .ExecuteAsync("PUBSUB", "NUMSUB", "evolution-events:events"))!)[1] == 2, "both nodes subscribed again");
        }
        var after = new List<int>();
        for (var seq = 300; seq < 310; seq++)
        {
            Assert.True(await PostAsync(seq % 2 == 0 ? a : b, "orders", seq));
            after.Add(seq);
        }
        await PostAsync(b, "orders", 1000);

        await AssertExactlyAsync(a, [.. before, 100, .. after], 1000);
        await AssertExactlyAsync(b, [.. before, 200, .. after], 1000);
        Assert.False(a.Process.HasExited);
        Assert.False(b.Process.HasExited);
        var logA = string.Join("\n", a.Process.StdoutLines());
        Assert.Contains("Redis event bus unreachable", logA);
        Assert.Contains("Redis event bus reachable again", logA);
        Assert.Equal(1, await MetricAsync(a, "evolution_events_local_only_total"));
    }
}

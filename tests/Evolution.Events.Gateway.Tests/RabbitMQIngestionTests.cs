using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Evolution.Events.Gateway.Ingestion;
using Evolution.Events.Gateway.Options;
using Evolution.Events.Testing;
using Microsoft.Extensions.Configuration;
using RabbitMQ.Client;
using Xunit.Abstractions;

namespace Evolution.Events.Gateway.Tests;

/// <summary>One real RabbitMQ broker (a private node) shared by the tests of the collection.</summary>
public sealed class RabbitMQFixture : IAsyncLifetime
{
    public RabbitMQServer Broker { get; private set; } = null!;

    public async Task InitializeAsync() => Broker = await RabbitMQServer.StartNewAsync();

    public async Task DisposeAsync() => await Broker.DisposeAsync();
}

[CollectionDefinition("rabbitmq")]
public sealed class RabbitMQCollection : ICollectionFixture<RabbitMQFixture>;

/// <summary>
/// RABBITMQ_URI: events published to a real RabbitMQ as Evolution API publishes them reach Socket.IO clients through
/// the same path as <c>POST /webhook</c>. Each test uses its own exchange and queue on the shared broker.
/// </summary>
[Collection("rabbitmq")]
public sealed class RabbitMQIngestionTests(RabbitMQFixture fixture, ITestOutputHelper output)
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);
    private RabbitMQServer Broker => fixture.Broker;

    private static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 9)];

    private Task<TestGateway> GatewayAsync(string queue, string? exchange = null, Dictionary<string, string?>? more = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["RABBITMQ_URI"] = Broker.Uri,
            ["RABBITMQ_QUEUE"] = queue,
            ["RABBITMQ_PREFETCH"] = "20",
        };
        if (exchange is not null)
            settings["RABBITMQ_EXCHANGE_NAME"] = exchange;
        foreach (var (k, v) in more ?? [])
            settings[k] = v;
        return TestGateway.StartAsync(settings);
    }

    private static async Task EventuallyAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(clock.Elapsed < timeout, $"not within {timeout.TotalSeconds} s: {what}");
            await Task.Delay(50);
        }
    }

    private static async Task<int> ReadyStatusAsync(TestGateway gw)
    {
        using var ready = await gw.SendAsync(HttpMethod.Get, "/health/ready", key: null);
        return (int)ready.StatusCode;
    }

    private static Task WaitReadyAsync(TestGateway gw) =>
        EventuallyAsync(async () => await ReadyStatusAsync(gw) == 200, Long, "/health/ready 200 (consuming)");

    private static double Sample(string metrics, string series) =>
        Regex.Match(metrics, $@"^{Regex.Escape(series)} (\S+)$", RegexOptions.Multiline) is { Success: true } m
            ? double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)
            : -1;

    private async Task<IConnection> ConnectAsync()
    {
        var factory = new ConnectionFactory { Uri = new Uri(Broker.Uri), AutomaticRecoveryEnabled = false };
        return await factory.CreateConnectionAsync();
    }

    private static byte[] EvolutionMessage(string evt, string instance, JsonNode data, string apikey = "evolution-instance-token") =>
        JsonSerializer.SerializeToUtf8Bytes(new JsonObject
        {
            ["event"] = evt,
            ["instance"] = instance,
            ["data"] = data,
            ["server_url"] = "http://evolution.local:8080",
            ["date_time"] = "2026-11-29T00:00:00.000Z",
            ["sender"] = "5511999999999@s.whatsapp.net",
            ["apikey"] = apikey,
        });

    [Fact]
    public async Task EventsPublishedAsEvolutionApiDoes_ReachSocketIOClients_WithTheWebhookEnvelope_AndWithoutTheApikey()
    {
        var queue = Unique("q");
        await using var gw = await GatewayAsync(queue, more: new() { ["RABBITMQ_INSTANCE_EXCHANGES"] = "shop" });
        await WaitReadyAsync(gw);
        await using var sales = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(TestGateway.Key));
        await using var shop = await SocketIOEventTests.ConnectAsync(gw, "/shop", SocketIOEventTests.Auth(TestGateway.Key));

        // Global mode: the default exchange evolution_exchange, routing key = the event name.
        var items = new JsonArray(
            new JsonObject { ["event"] = "messages.upsert", ["instance"] = "sales", ["data"] = new JsonObject { ["seq"] = 1, ["text"] = "olá" }, ["apikey"] = "evo-secret" },
            new JsonObject { ["event"] = "connection.update", ["instance"] = "sales", ["data"] = new JsonObject { ["seq"] = 2, ["state"] = "open" }, ["apikey"] = "evo-secret" },
            new JsonObject { ["event"] = "group-participants.update", ["instance"] = "sales", ["data"] = new JsonObject { ["seq"] = 3 }, ["apikey"] = "evo-secret" });
        await NodeClient.RunAsync("evolution-rabbitmq.mjs", Broker.Uri, "evolution_exchange", items.ToJsonString());
        // Per-instance mode: an exchange named after the instance (RABBITMQ_INSTANCE_EXCHANGES).
        var own = new JsonArray(new JsonObject { ["event"] = "messages.update", ["instance"] = "shop", ["data"] = new JsonObject { ["seq"] = 4 }, ["apikey"] = "evo-secret" });
        await NodeClient.RunAsync("evolution-rabbitmq.mjs", Broker.Uri, "shop", own.ToJsonString());

        foreach (var (evt, seq) in new[] { ("messages.upsert", 1), ("connection.update", 2), ("group-participants.update", 3) })
        {
            var line = await sales.NextEventAsync(Long);
            Assert.Equal(evt, (string?)line["event"]);
            var envelope = line["args"]![0]!.AsObject();
            Assert.Equal(["event", "instance", "data", "server_url", "date_time", "sender"], envelope.Select(p => p.Key).ToArray());
            Assert.Equal(evt, (string?)envelope["event"]);
            Assert.Equal("sales", (string?)envelope["instance"]);
            Assert.Equal(seq, (int)envelope["data"]!["seq"]!);
            if (seq == 1)
                Assert.Equal("olá", (string?)envelope["data"]!["text"]);
            Assert.Equal("http://evolution.local:8080", (string?)envelope["server_url"]);
            Assert.Equal("5511999999999@s.whatsapp.net", (string?)envelope["sender"]);
            Assert.DoesNotContain("evo-secret", line.ToJsonString(), StringComparison.Ordinal);
        }
        var fromShop = await shop.NextEventAsync(Long);
        Assert.Equal("messages.update", (string?)fromShop["event"]);
        Assert.Equal(4, (int)fromShop["args"]![0]!["data"]!["seq"]!);
        Assert.DoesNotContain("evo-secret", fromShop.ToJsonString(), StringComparison.Ordinal);

        // the unknown instances were registered, as the webhook does with the global key
        using var instances = await gw.SendAsync(HttpMethod.Get, "/instance/fetchInstances");
        var names = (await TestGateway.ReadJsonAsync(instances))!.AsArray().Select(i => (string?)i!["instanceName"]).ToList();
        Assert.Contains("sales", names);
        Assert.Contains("shop", names);

        await EventuallyAsync(async () => Sample(await gw.MetricsAsync(), "evolution_rabbitmq_consumed_total") == 4, Long, "4 consumed");
        var metrics = await gw.MetricsAsync();
        Assert.Equal(1, Sample(metrics, "evolution_rabbitmq_up"));
        Assert.Equal(1, Sample(metrics, "evolution_events_ingested_total{event=\"messages.upsert\"}"));
        // everything acknowledged: the queue is empty
        await using var connection = await ConnectAsync();
        await using var channel = await connection.CreateChannelAsync();
        await EventuallyAsync(async () => (await channel.QueueDeclarePassiveAsync(queue)).MessageCount == 0, Long, "queue empty");
    }

    [Fact]
    public async Task TheUriPasswordIsNeverLoggedNorShown_AndARefusedLoginKeepsTheGatewayUp_NotReady()
    {
        var secret = "hunter2-" + Guid.NewGuid().ToString("N")[..8];
        await using var gateway = GatewayProcess.Start(new()
        {
            ["LOG_LEVEL"] = "Debug",
            ["RABBITMQ_URI"] = $"amqp://guest:{secret}@127.0.0.1:{Broker.Port}/",
            ["RABBITMQ_QUEUE"] = Unique("q"),
        }, readStdout: true);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };
        await gateway.WaitReadyAsync(http); // live: the broker refusing the login does not stop the gateway
        await EventuallyAsync(() => Task.FromResult(gateway.StdoutLines().Any(l => l.Contains("ACCESS_REFUSED", StringComparison.Ordinal))),
            Long, "the refused login logged");
        using var ready = await http.GetAsync(new Uri(gateway.BaseUri, "/health/ready"));
        var body = await ready.Content.ReadAsStringAsync();
        Assert.Equal(503, (int)ready.StatusCode);
        Assert.Contains("amqp://guest:***@127.0.0.1", body, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, body, StringComparison.Ordinal);
        Assert.DoesNotContain(gateway.StdoutLines(), l => l.Contains(secret, StringComparison.Ordinal));
        Assert.DoesNotContain(secret, gateway.Stderr(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task MalformedMessages_GoToTheDeadLetterQueueWithTheReason_AndAreNeverRequeued()
    {
        var queue = Unique("q");
        var exchange = Unique("ex");
        await using var gw = await GatewayAsync(queue, exchange);
        await WaitReadyAsync(gw);
        await using var client = await SocketIOEventTests.ConnectAsync(gw, "/orders", SocketIOEventTests.Auth(TestGateway.Key));

        await using var connection = await ConnectAsync();
        await using var channel = await connection.CreateChannelAsync(
            new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true));
        async Task PublishAsync(string routingKey, byte[] body) =>
            await channel.BasicPublishAsync(exchange, routingKey, mandatory: true, new BasicProperties(), body);
        await PublishAsync("messages.upsert", "this is { not json"u8.ToArray());
        await PublishAsync("no.such.event", EvolutionMessage("no.such.event", "orders", new JsonObject()));
        await PublishAsync("messages.upsert", EvolutionMessage("messages.upsert", "bad name!", new JsonObject()));
        await PublishAsync("messages.upsert", EvolutionMessage("messages.upsert", "orders", new JsonObject { ["ok"] = true }));

        // the valid message after the three bad ones arrives: they were dealt with, in queue order
        var line = await client.NextEventAsync(Long);
        Assert.True((bool)line["args"]![0]!["data"]!["ok"]!);

        var dead = new List<(string Reason, string Body, string RoutingKey)>();
        await EventuallyAsync(async () =>
        {
            while (await channel.BasicGetAsync(queue + ".dead", autoAck: true) is { } got)
            {
                var headers = got.BasicProperties.Headers!;
                dead.Add((Encoding.UTF8.GetString((byte[])headers[RabbitMQIngestion.ReasonHeader]!),
                    Encoding.UTF8.GetString(got.Body.Span), Encoding.UTF8.GetString((byte[])headers["x-original-routing-key"]!)));
            }
            return dead.Count >= 3;
        }, Long, "3 dead-lettered messages");
        foreach (var d in dead)
            output.WriteLine($"{d.RoutingKey}: {d.Reason}");
        Assert.Equal(3, dead.Count);
        Assert.Contains("malformed JSON", dead[0].Reason, StringComparison.Ordinal);
        Assert.Equal("this is { not json", dead[0].Body);
        Assert.Contains("unknown event name 'no.such.event'", dead[1].Reason, StringComparison.Ordinal);
        Assert.Equal("no.such.event", dead[1].RoutingKey);
        Assert.Contains("instance", dead[2].Reason, StringComparison.Ordinal);

        // never requeued: the queue holds nothing, nothing more is consumed
        Assert.Equal(0u, (await channel.QueueDeclarePassiveAsync(queue)).MessageCount);
        await Task.Delay(500);
        var metrics = await gw.MetricsAsync();
        Assert.Equal(4, Sample(metrics, "evolution_rabbitmq_consumed_total"));
        Assert.Equal(0, Sample(metrics, "evolution_rabbitmq_redelivered_total"));
        Assert.Equal(1, Sample(metrics, "evolution_rabbitmq_dead_lettered_total{reason=\"malformed_json\"}"));
        Assert.Equal(2, Sample(metrics, "evolution_rabbitmq_dead_lettered_total{reason=\"invalid\"}"));
        await client.AssertNoEventAsync(TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public async Task EventsPublishedWhileTheGatewayIsDown_WaitInItsQueue_AndAreDeliveredWhenItStarts_EvenAcrossAGracefulStop()
    {
        // Two nodes on one Redis: the client is on the receiver; the consumer node (RABBITMQ_URI) is down, then up.
        await using var redis = await RedisServer.StartAsync();
        var queue = Unique("q");
        var exchange = Unique("ex");
        var redisSettings = new Dictionary<string, string?> { ["REDIS_URI"] = redis.Uri() };
        await using var receiver = await TestGateway.StartAsync(redisSettings);
        var consumer = await GatewayAsync(queue, exchange, redisSettings);
        await WaitReadyAsync(consumer); // declares the queue
        await consumer.DisposeAsync();
        await using var client = await SocketIOEventTests.ConnectAsync(receiver, "/late", SocketIOEventTests.Auth(TestGateway.Key));

        const int count = 2000;
        var items = new JsonArray(new JsonObject { ["event"] = "messages.upsert", ["instance"] = "late", ["apikey"] = "evo-secret", ["repeat"] = count });
        await NodeClient.RunAsync("evolution-rabbitmq.mjs", Broker.Uri, exchange, items.ToJsonString());
        await using (var connection = await ConnectAsync())
        await using (var channel = await connection.CreateChannelAsync())
            Assert.Equal((uint)count, (await channel.QueueDeclarePassiveAsync(queue)).MessageCount);

        var received = new List<int>();
        async Task ReceiveUntilAsync(int distinct)
        {
            while (received.Distinct().Count() < distinct)
                received.Add((int)(await client.NextEventAsync(Long))["args"]![0]!["data"]!["seq"]!);
        }

        // first start: stopped gracefully mid-stream (what it took is acknowledged, the rest stays queued)
        consumer = await GatewayAsync(queue, exchange, redisSettings);
        await ReceiveUntilAsync(count / 10);
        await consumer.DisposeAsync();
        output.WriteLine($"received {received.Count} before the graceful stop");
        // second start: the rest
        await using var again = await GatewayAsync(queue, exchange, redisSettings);
        await ReceiveUntilAsync(count);

        Assert.Equal(Enumerable.Range(0, count), received.Distinct().Order());
        output.WriteLine($"received {received.Count} for {count} published ({received.Count - count} redelivered duplicates)");
        // Queue order, duplicates aside; except that the prefetched messages the stopped node gave back (at most
        // RABBITMQ_PREFETCH=20) may come back in another order: RabbitMQ does not keep the order of returned messages.
        var firsts = received.Select((seq, i) => (seq, i)).GroupBy(x => x.seq).Select(g => g.First()).OrderBy(x => x.i).Select(x => x.seq).ToList();
        var misplaced = Enumerable.Range(0, count).Where(i => Math.Abs(firsts[i] - i) > 20).ToList();
        Assert.True(misplaced.Count == 0,
            $"out of order past the prefetch window at positions {string.Join(",", misplaced.Take(10))}: {string.Join(",", firsts.Skip(Math.Max(0, misplaced.FirstOrDefault() - 5)).Take(40))}");
        output.WriteLine($"{Enumerable.Range(0, count).Count(i => firsts[i] != i)} events not at their queue position (returned prefetched messages)");
        await using (var connection = await ConnectAsync())
        await using (var channel = await connection.CreateChannelAsync())
            await EventuallyAsync(async () => (await channel.QueueDeclarePassiveAsync(queue)).MessageCount == 0, Long, "queue drained");
    }

    [Fact]
    public async Task TheBrokerRestartedMidStream_LosesNothingItConfirmed_AndReadinessIs503WhileItIsDown()
    {
        var queue = Unique("q");
        var exchange = Unique("ex");
        await using var gw = await GatewayAsync(queue, exchange);
        await WaitReadyAsync(gw);
        await using var client = await SocketIOEventTests.ConnectAsync(gw, "/stream", SocketIOEventTests.Auth(TestGateway.Key));

        const int count = 3000;
        var received = new List<int>();
        int Distinct()
        {
            lock (received)
                return received.Distinct().Count();
        }
        var receiving = Task.Run(async () =>
        {
            while (Distinct() < count)
            {
                var seq = (int)(await client.NextEventAsync(TimeSpan.FromSeconds(120)))["args"]![0]!["data"]!["seq"]!;
                lock (received)
                    received.Add(seq);
            }
        });

        // Publishes 0…count-1 as Evolution does (transient messages), each until the broker confirmed it: while the
        // broker is down it waits and publishes again (a message that was in but not confirmed may come twice).
        var confirmed = 0;
        var publishing = Task.Run(async () =>
        {
            IConnection? connection = null;
            IChannel? channel = null;
            for (var seq = 0; seq < count; seq++)
            {
                while (true)
                {
                    try
                    {
                        connection ??= await ConnectAsync();
                        channel ??= await connection.CreateChannelAsync(
                            new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true));
                        await channel.BasicPublishAsync(exchange, "messages.upsert", mandatory: true, new BasicProperties(),
                            EvolutionMessage("messages.upsert", "stream", new JsonObject { ["seq"] = seq }));
                        Interlocked.Increment(ref confirmed);
                        break;
                    }
                    catch (Exception)
                    {
                        // broker gone: start over with a new connection once it is back
                        try
                        {
                            if (connection is not null)
                                await connection.DisposeAsync();
                        }
                        catch (Exception)
                        {
                        }
                        (connection, channel) = (null, null);
                        await Task.Delay(200);
                    }
                }
            }
            if (connection is not null)
                await connection.DisposeAsync();
        });

        // stop the broker mid-stream: the gateway holds unacknowledged deliveries, the publisher is publishing
        await EventuallyAsync(() => Task.FromResult(Distinct() >= count / 10), Long, "a tenth of the stream received");
        var clock = Stopwatch.StartNew();
        await Broker.StopAsync();
        output.WriteLine($"broker stopped in {clock.ElapsedMilliseconds} ms with {Distinct()} received, {Volatile.Read(ref confirmed)} confirmed");
        await EventuallyAsync(async () => await ReadyStatusAsync(gw) == 503, Long, "/health/ready 503 with the broker down");
        using (var ready = await gw.SendAsync(HttpMethod.Get, "/health/ready", key: null))
            Assert.Contains("rabbitmq", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(0, Sample(await gw.MetricsAsync(), "evolution_rabbitmq_up"));

        clock.Restart();
        await Broker.StartAsync();
        output.WriteLine($"broker up again in {clock.ElapsedMilliseconds} ms");
        await WaitReadyAsync(gw);
        output.WriteLine($"gateway consuming again {clock.ElapsedMilliseconds} ms after the restart began");
        await publishing.WaitAsync(TimeSpan.FromSeconds(120));
        await receiving.WaitAsync(TimeSpan.FromSeconds(120));

        Assert.Equal(count, confirmed);
        lock (received)
        {
            Assert.Equal(Enumerable.Range(0, count), received.Distinct().Order());
            output.WriteLine($"received {received.Count} events for {count} published ({received.Count - count} duplicates)");
        }
        var metrics = await gw.MetricsAsync();
        Assert.Equal(1, Sample(metrics, "evolution_rabbitmq_up"));
        Assert.True(Sample(metrics, "evolution_rabbitmq_consumed_total") >= count);
        output.WriteLine($"consumed {Sample(metrics, "evolution_rabbitmq_consumed_total")}, redelivered {Sample(metrics, "evolution_rabbitmq_redelivered_total")}");
    }
}

/// <summary>The RABBITMQ_* variables (no broker needed).</summary>
public sealed class RabbitMQOptionsTests
{
    private static RabbitMQSettings? Read(Dictionary<string, string?> values) =>
        RabbitMQSettings.Read(new ConfigurationBuilder().AddInMemoryCollection(values).Build());

    [Fact]
    public void Defaults_AndEventNamesInBindingKeys_AreNormalized()
    {
        Assert.Null(Read(new()));
        var settings = Read(new() { ["RABBITMQ_URI"] = "amqp://evo:s3cret@rabbit:5672/prod" })!;
        Assert.Equal("evolution_exchange", settings.Exchange);
        Assert.Equal("evolution-events", settings.Queue);
        Assert.Equal("evolution-events.dead", settings.DeadLetterQueue);
        Assert.Equal(["#"], settings.BindingKeys);
        Assert.Equal(50, settings.Prefetch);
        Assert.Equal("quorum", settings.QueueType);
        Assert.Equal("amqp://evo:***@rabbit:5672/prod", settings.Display);

        settings = Read(new()
        {
            ["RABBITMQ_URI"] = "amqp://rabbit",
            ["RABBITMQ_BINDING_KEYS"] = "MESSAGES_UPSERT, group-participants-update, qrcode.updated, messages.*",
        })!;
        Assert.Equal(["messages.upsert", "group-participants.update", "qrcode.updated", "messages.*"], settings.BindingKeys);
        Assert.Equal("amqp://rabbit:5672/", settings.Display);
    }

    [Theory]
    [InlineData("RABBITMQ_URI", "http://user:hunter2@rabbit")]
    [InlineData("RABBITMQ_PREFETCH", "0")]
    [InlineData("RABBITMQ_BINDING_KEYS", "not-an-event")]
    [InlineData("RABBITMQ_QUEUE_TYPE", "stream")]
    [InlineData("RABBITMQ_INSTANCE_EXCHANGES", "bad name!")]
    [InlineData("RABBITMQ_QUEUE", "amq.reserved")]
    public void AnInvalidValue_StopsStartUp_NamingTheVariable_WithoutThePassword(string variable, string value)
    {
        var values = new Dictionary<string, string?> { ["RABBITMQ_URI"] = "amqp://user:hunter2@rabbit", [variable] = value };
        var ex = Assert.Throws<GatewayConfigurationException>(() => Read(values));
        Assert.Contains(variable, ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", ex.Message, StringComparison.Ordinal);
    }
}

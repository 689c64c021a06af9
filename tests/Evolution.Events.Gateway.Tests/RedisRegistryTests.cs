using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using System.Text.Json.Nodes;
using Evolution.Events.Testing;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace Evolution.Events.Gateway.Tests;

/// <summary>
/// The instance registry shared through Redis (REDIS_URI): two real gateways in this process on one real
/// redis-server (tests/Evolution.Events.Testing), each with its own in-memory snapshot.
/// </summary>
public sealed class RedisRegistryTests(ITestOutputHelper output)
{
    /// <summary>
    /// How long a change may take to reach the other node: generous for a loaded 2-core machine (a change
    /// notification takes milliseconds), yet well under REDIS_RELOAD_INTERVAL_MS (30 s), so a node that only
    /// learns changes from the periodic reload fails.
    /// </summary>
    private static readonly TimeSpan Propagation = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Recovery = TimeSpan.FromSeconds(20);

    private static Task<TestGateway> NodeAsync(RedisServer redis, Dictionary<string, string?>? extra = null)
    {
        var settings = new Dictionary<string, string?> { ["REDIS_URI"] = redis.Uri() };
        foreach (var (k, v) in extra ?? [])
            settings[k] = v;
        return TestGateway.StartAsync(settings);
    }

    /// <summary>Polls until <paramref name="condition"/> holds; returns how long it took, fails after <paramref name="timeout"/>.</summary>
    private static async Task<TimeSpan> EventuallyAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(clock.Elapsed < timeout, $"not within {timeout.TotalSeconds} s: {what}");
            await Task.Delay(20);
        }
        return clock.Elapsed;
    }

    private static async Task<JsonObject?> FindInstanceAsync(TestGateway gw, string name)
    {
        using var response = await gw.SendAsync(HttpMethod.Get, $"/instance/fetchInstances?instanceName={name}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await TestGateway.ReadJsonAsync(response))!.AsArray().SingleOrDefault()?.AsObject();
    }

    private static async Task<HttpStatusCode> CreateStatusAsync(TestGateway gw, string name, string? token = null)
    {
        var body = token is null ? $$"""{"instanceName":"{{name}}"}""" : $$"""{"instanceName":"{{name}}","token":"{{token}}"}""";
        using var response = await gw.PostAsync("/instance/create", body);
        return response.StatusCode;
    }

    /// <summary>The status and body of a create, e.g. <c>409 {"status":409,…}</c>.</summary>
    private static async Task<string> CreateAnswerAsync(TestGateway gw, string name, string? token = null)
    {
        var body = token is null ? $$"""{"instanceName":"{{name}}"}""" : $$"""{"instanceName":"{{name}}","token":"{{token}}"}""";
        using var response = await gw.PostAsync("/instance/create", body);
        return $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";
    }

    private static void AssertOneWins(string[] answers, string conflict)
    {
        var all = string.Join(" | ", answers);
        Assert.True(answers.Count(x => x.StartsWith("201 ", StringComparison.Ordinal)) == 1, all);
        Assert.True(answers.Count(x => x.StartsWith("409 ", StringComparison.Ordinal) && x.Contains(conflict, StringComparison.Ordinal)) == 1, all);
    }

    private static string TokenAuth(string token) => new JsonObject { ["auth"] = new JsonObject { ["token"] = token } }.ToJsonString();

    private static async Task<string> MetricsAsync(TestGateway gw) => await gw.MetricsAsync();

    /// <summary>The value of an unlabelled sample in the exposition text, or null when there is none.</summary>
    private static double? Sample(string metrics, string name) =>
        System.Text.RegularExpressions.Regex.Match(metrics, $@"^{name} (\S+)$", System.Text.RegularExpressions.RegexOptions.Multiline) is { Success: true } m
            ? double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)
            : null;

    [Fact]
    public async Task CreateOnOneNode_IsListedAndAuthenticatesOnTheOther_BeforeAnyReload_PasswordUri()
    {
        await using var redis = await RedisServer.StartAsync(new RedisServerOptions { Password = "s3cret/pw" });
        await using var a = await NodeAsync(redis);
        await using var b = await NodeAsync(redis);

        var token = await a.CreateInstanceAsync("alpha");
        var took = await EventuallyAsync(async () => await FindInstanceAsync(b, "alpha") is not null, Propagation, "alpha listed on B");
        output.WriteLine($"create on A listed on B after {took.TotalMilliseconds:0.0} ms"); // a figure, not a verdict
        Assert.Equal(token, (await FindInstanceAsync(b, "alpha"))!["token"]!.GetValue<string>());

        // The token authenticates a socket on B, which receives B's events for alpha.
        using var ws = await b.ConnectAsync($"/ws/events?token={token}");
        await b.IngestAsync(TestGateway.Event("messages.upsert", "alpha"));
        Assert.Equal("alpha", (await TestGateway.ReceiveJsonAsync(ws))["instance"]!.GetValue<string>());
        await using var socketIO = NodeClient.Start("client.mjs", b.BaseUri + "alpha", TokenAuth(token));
        await socketIO.NextOfTypeAsync("connect");

        // The registry is in Redis, under the documented keys.
        await using var mux = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{redis.Port},password=s3cret/pw");
        var db = mux.GetDatabase();
        Assert.True(await db.SetContainsAsync("evolution-events:instances", "alpha"));
        Assert.Equal(token, (string?)await db.HashGetAsync("evolution-events:instance:alpha", "token"));
    }

    [Fact]
    public async Task SettingsSetOnB_FilterTheFanOutOfA()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var a = await NodeAsync(redis);
        await using var b = await NodeAsync(redis);
        var token = await a.CreateInstanceAsync("beta");
        await EventuallyAsync(async () => await FindInstanceAsync(b, "beta") is not null, Propagation, "beta on B");
        using var ws = await a.ConnectAsync($"/ws/events?token={token}");

        await b.SetSettingsAsync("beta", true, "MESSAGES_UPSERT");
        await EventuallyAsync(async () => (await FindInstanceAsync(a, "beta"))!["websocket"]!["events"]!.AsArray().Count == 1,
            Propagation, "settings on A");
        await a.IngestAsync($"[{TestGateway.Event("connection.update", "beta")},{TestGateway.Event("messages.upsert", "beta")}]");
        Assert.Equal("messages.upsert", (await TestGateway.ReceiveJsonAsync(ws))["event"]!.GetValue<string>());
    }

    [Fact]
    public async Task DeleteOnA_DisconnectsTheInstanceSocketsOnB()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var a = await NodeAsync(redis);
        await using var b = await NodeAsync(redis);
        var token = await a.CreateInstanceAsync("gamma");
        await EventuallyAsync(async () => await FindInstanceAsync(b, "gamma") is not null, Propagation, "gamma on B");
        using var ws = await b.ConnectAsync($"/ws/events?token={token}");
        await using var socketIO = NodeClient.Start("client.mjs", b.BaseUri + "gamma", TokenAuth(token));
        await socketIO.NextOfTypeAsync("connect");

        using var deleted = await a.SendAsync(HttpMethod.Delete, "/instance/delete/gamma");
        Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        Assert.Null(await TestGateway.ReceiveTextAsync(ws)); // closed by B
        await socketIO.NextOfTypeAsync("disconnect");
        Assert.Null(await FindInstanceAsync(b, "gamma"));
        await TestGateway.AssertErrorAsync(await b.RawUpgradeAsync($"/ws/events?token={token}"), 401);
    }

    [Fact]
    public async Task ConcurrentCreatesOfOneName_OnTwoNodes_ExactlyOneWins()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var a = await NodeAsync(redis);
        await using var b = await NodeAsync(redis);
        for (var i = 0; i < 10; i++)
        {
            AssertOneWins(await Task.WhenAll(CreateAnswerAsync(a, $"race{i}"), CreateAnswerAsync(b, $"race{i}")), "already exists");
            // Two names, one token: the token stays unique across nodes.
            AssertOneWins(await Task.WhenAll(CreateAnswerAsync(a, $"ta{i}", $"tok{i}"), CreateAnswerAsync(b, $"tb{i}", $"tok{i}")), "token");
        }
        await EventuallyAsync(async () => (await TestGateway.ReadJsonAsync(await a.SendAsync(HttpMethod.Get, "/instance/fetchInstances")))!
            .AsArray().Count == 20, Propagation, "20 instances on A");
        // B learns A's creations by notification: eventually too (a loaded machine delivers one late)
        await EventuallyAsync(async () => (await TestGateway.ReadJsonAsync(await b.SendAsync(HttpMethod.Get, "/instance/fetchInstances")))!
            .AsArray().Count == 20, Propagation, "20 instances on B");
    }

    [Fact]
    public async Task RedisDown_ReadsAndSocketsKeepWorking_WritesAndReadyAre503_ThenRecoverWithoutRestart()
    {
        await using var redis = await RedisServer.StartAsync(new RedisServerOptions { AppendOnly = true });
        await using var a = await NodeAsync(redis);
        var token = await a.CreateInstanceAsync("delta");
        using var ws = await a.ConnectAsync($"/ws/events?token={token}");
        var before = await MetricsAsync(a);
        Assert.Equal(1, Sample(before, "evolution_redis_up"));
        Assert.Equal(0, Sample(before, "evolution_redis_outages_total"));

        await redis.StopAsync(graceful: false);
        await EventuallyAsync(async () =>
        {
            using var ready = await a.SendAsync(HttpMethod.Get, "/health/ready", key: null);
            return ready.StatusCode == HttpStatusCode.ServiceUnavailable;
        }, Recovery, "ready 503");
        using (var create = await a.PostAsync("/instance/create", """{"instanceName":"epsilon"}"""))
            await TestGateway.AssertErrorAsync(create, 503, "unreachable");
        using (var set = await a.PostAsync("/websocket/set/delta", """{"websocket":{"enabled":false}}"""))
            await TestGateway.AssertErrorAsync(set, 503, "Redis");
        using (var delete = await a.SendAsync(HttpMethod.Delete, "/instance/delete/delta"))
            await TestGateway.AssertErrorAsync(delete, 503);
        // Ingestion's auto-registration of an unknown instance is a write too.
        using (var unknown = await a.PostAsync("/webhook", TestGateway.Event("call", "unknown-one")))
            await TestGateway.AssertErrorAsync(unknown, 503, "unreachable");
        var metrics = await MetricsAsync(a);
        Assert.Equal(0, Sample(metrics, "evolution_redis_up"));
        Assert.Equal(1, Sample(metrics, "evolution_redis_outages_total"));

        // Reads, socket auth and delivery come from the snapshot.
        Assert.NotNull(await FindInstanceAsync(a, "delta"));
        await a.IngestAsync(TestGateway.Event("messages.upsert", "delta"));
        Assert.Equal("messages.upsert", (await TestGateway.ReceiveJsonAsync(ws))["event"]!.GetValue<string>());
        using var second = await a.ConnectAsync($"/ws/events?token={token}");
        Assert.Equal(WebSocketState.Open, second.State);

        await redis.StartAsync();
        await EventuallyAsync(async () => await CreateStatusAsync(a, "epsilon") == HttpStatusCode.Created, Recovery, "create after restart");
        using (var ready = await a.SendAsync(HttpMethod.Get, "/health/ready", key: null))
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        var after = await MetricsAsync(a);
        Assert.Equal(1, Sample(after, "evolution_redis_up"));
        Assert.Equal(1, Sample(after, "evolution_redis_outages_total"));
        Assert.NotNull(await FindInstanceAsync(a, "delta"));
        await a.IngestAsync(TestGateway.Event("call", "delta"));
        Assert.Equal("call", (await TestGateway.ReceiveJsonAsync(ws))["event"]!.GetValue<string>());
    }

    [Fact]
    public async Task RegistrySurvivesARedisRestart_WithAppendOnly()
    {
        await using var redis = await RedisServer.StartAsync(new RedisServerOptions { AppendOnly = true });
        string token;
        await using (var a = await NodeAsync(redis))
        {
            token = await a.CreateInstanceAsync("zeta");
            await a.CreateInstanceAsync("eta", "eta-token");
            await a.SetSettingsAsync("zeta", true, "QRCODE_UPDATED", "CALL");
        }
        await redis.StopAsync();
        await redis.StartAsync();
        await using var b = await NodeAsync(redis);
        var zeta = (await FindInstanceAsync(b, "zeta"))!;
        Assert.Equal(token, zeta["token"]!.GetValue<string>());
        Assert.Equal(["QRCODE_UPDATED", "CALL"], zeta["websocket"]!["events"]!.AsArray().Select(e => e!.GetValue<string>()));
        Assert.Equal("eta-token", (await FindInstanceAsync(b, "eta"))!["token"]!.GetValue<string>());
        using var ws = await b.ConnectAsync("/ws/events?token=eta-token");
        Assert.Equal(WebSocketState.Open, ws.State);
    }

    [Fact]
    public async Task AMissedNotification_IsRepairedByThePeriodicReload()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var a = await NodeAsync(redis, new() { ["REDIS_RELOAD_INTERVAL_MS"] = "300", ["REDIS_KEY_PREFIX"] = "gw1:" });
        // Written behind the gateway's back: no change notification is published.
        await using var mux = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{redis.Port}");
        var db = mux.GetDatabase();
        await db.HashSetAsync("gw1:instance:theta", [new("token", "theta-token"), new("createdAt", "2026-01-01T00:00:00.0000000+00:00"),
            new("wsEnabled", "1"), new("wsEvents", "[]")]);
        await db.SetAddAsync("gw1:instances", "theta");
        await EventuallyAsync(async () => await FindInstanceAsync(a, "theta") is not null, TimeSpan.FromSeconds(10), "theta reloaded");
        Assert.Equal("theta", (await FindInstanceAsync(a, "theta"))!["instanceName"]!.GetValue<string>());
        // Another prefix is another registry.
        Assert.False(await db.KeyExistsAsync("evolution-events:instances"));
    }

    [Fact]
    public async Task AReconnection_ReloadsTheRegistry()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var a = await NodeAsync(redis); // periodic reload: 30 s, far beyond this test's waits
        await using var mux = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{redis.Port},allowAdmin=true");
        var db = mux.GetDatabase();
        await db.HashSetAsync("evolution-events:instance:kappa", [new("token", "kappa-token"),
            new("createdAt", "2026-01-01T00:00:00.0000000+00:00"), new("wsEnabled", "1"), new("wsEvents", "[]")]);
        await db.SetAddAsync("evolution-events:instances", "kappa");
        Assert.Null(await FindInstanceAsync(a, "kappa")); // no notification: A does not know yet

        // Drop A's subscription connection: notifications may have been missed, so A reloads when it is back.
        await db.ExecuteAsync("CLIENT", "KILL", "TYPE", "pubsub");
        await EventuallyAsync(async () => await FindInstanceAsync(a, "kappa") is not null, TimeSpan.FromSeconds(15), "kappa after reconnect");
        using var ws = await a.ConnectAsync("/ws/events?token=kappa-token");
        Assert.Equal(WebSocketState.Open, ws.State);
    }

    [Fact]
    public async Task SqliteStaysTheDefault_WithoutRedisUri()
    {
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateInstanceAsync("iota");
        Assert.True(File.Exists(Path.Combine(gw.Dir, "gateway.db")));
        var metrics = await MetricsAsync(gw);
        Assert.Null(Sample(metrics, "evolution_redis_up"));
        Assert.Null(Sample(metrics, "evolution_redis_outages_total"));
    }
}

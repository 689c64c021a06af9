using Evolution.Events.Gateway.Options;
using Microsoft.Extensions.Configuration;
using Serilog.Events;

namespace Evolution.Events.Gateway.Tests;

public class OptionsTests
{
    private static GatewayOptions Bind(params (string Key, string Value)[] values) =>
        GatewayOptionsBinder.Bind(new ConfigurationBuilder()
            .AddInMemoryCollection(values.Select(v => KeyValuePair.Create(v.Key, (string?)v.Value)))
            .Build());

    [Fact]
    public void DefaultsMatchTheContract()
    {
        var options = Bind();
        Assert.Equal(8080, options.Port);
        Assert.Equal("http://localhost:8080", options.ServerUrl);
        Assert.True(options.WebSocketEnabled);
        Assert.False(options.WebSocketGlobalEvents);
        Assert.True(options.ApiKeyGenerated);
        Assert.True(options.ApiKey.Length >= 32);
        Assert.Equal(["*"], options.CorsOrigins);
        Assert.EndsWith(Path.Combine("data", "gateway.db"), options.DatabaseFile);
        Assert.Equal(LogEventLevel.Information, options.LogLevel);
        Assert.Null(options.InboundWebhookUrl);
        Assert.Equal(100_000, options.MaxConnections);
        Assert.Equal(1_000_000, options.MaxPayload);
        Assert.Equal(0, options.ConnectRatePerMinute);
        Assert.Equal(10_485_760, options.WebhookMaxBody);
        Assert.Empty(options.TrustedProxies);
        Assert.True(options.WebSocketReplayLastState);
        Assert.Equal(120, options.RecoverySeconds);
        Assert.Equal(1000, options.MaxPendingConnections);
        Assert.Equal(TimeSpan.FromSeconds(5), options.ConnectTimeout);
        Assert.True(options.HttpCompression);
        Assert.Equal(1024, options.HttpCompressionThreshold);
        Assert.Null(options.PerMessageDeflate); // off, as socket.io's perMessageDeflate
    }

    [Fact]
    public void PerMessageDeflateIsOnWithItsThreshold()
    {
        Assert.Equal(1024, Bind(("WEBSOCKET_PER_MESSAGE_DEFLATE", "true")).PerMessageDeflate!.Threshold);
        var options = Bind(("WEBSOCKET_PER_MESSAGE_DEFLATE", "true"), ("WEBSOCKET_PER_MESSAGE_DEFLATE_THRESHOLD", "0"));
        Assert.Equal(0, options.PerMessageDeflate!.Threshold);
        Assert.Null(Bind(("WEBSOCKET_PER_MESSAGE_DEFLATE", "false"), ("WEBSOCKET_PER_MESSAGE_DEFLATE_THRESHOLD", "10")).PerMessageDeflate);
    }

    [Fact]
    public void ReadsEveryVariable()
    {
        var options = Bind(("SERVER_PORT", "9000"), ("SERVER_URL", "https://gw.example.com/"),
            ("WEBSOCKET_ENABLED", "false"), ("WEBSOCKET_GLOBAL_EVENTS", "TRUE"), ("AUTHENTICATION_API_KEY", "k"),
            ("CORS_ORIGIN", "https://a.example, http://b.example:3000"), ("DATABASE_PATH", "/tmp/x/y.db"),
            ("LOG_LEVEL", "debug"), ("INBOUND_WEBHOOK_URL", "http://127.0.0.1:9/in"),
            ("WEBSOCKET_MAX_CONNECTIONS", "5"), ("WEBSOCKET_MAX_PAYLOAD", "100"), ("WEBSOCKET_CONNECT_RATE", "7"),
            ("WEBHOOK_MAX_BODY", "2048"), ("TRUSTED_PROXIES", "10.0.0.1, 192.168.0.0/16"),
            ("WEBSOCKET_REPLAY_LAST_STATE", "off"), ("WEBSOCKET_RECOVERY_SECONDS", "0"),
            ("WEBSOCKET_MAX_PENDING", "9"), ("WEBSOCKET_CONNECT_TIMEOUT_MS", "2500"),
            ("WEBSOCKET_HTTP_COMPRESSION", "false"), ("WEBSOCKET_HTTP_COMPRESSION_THRESHOLD", "0"));
        Assert.Equal(9000, options.Port);
        Assert.Equal("https://gw.example.com", options.ServerUrl);
        Assert.False(options.WebSocketEnabled);
        Assert.True(options.WebSocketGlobalEvents);
        Assert.Equal("k", options.ApiKey);
        Assert.False(options.ApiKeyGenerated);
        Assert.Equal(["https://a.example", "http://b.example:3000"], options.CorsOrigins);
        Assert.Equal("/tmp/x/y.db", options.DatabaseFile);
        Assert.Equal(LogEventLevel.Debug, options.LogLevel);
        Assert.Equal("http://127.0.0.1:9/in", options.InboundWebhookUrl!.ToString());
        Assert.Equal(5, options.MaxConnections);
        Assert.Equal(100, options.MaxPayload);
        Assert.Equal(7, options.ConnectRatePerMinute);
        Assert.Equal(2048, options.WebhookMaxBody);
        Assert.Equal(2, options.TrustedProxies.Count);
        Assert.False(options.WebSocketReplayLastState);
        Assert.Equal(0, options.RecoverySeconds);
        Assert.Equal(9, options.MaxPendingConnections);
        Assert.Equal(TimeSpan.FromMilliseconds(2500), options.ConnectTimeout);
        Assert.False(options.HttpCompression);
        Assert.Equal(0, options.HttpCompressionThreshold);
    }

    [Theory]
    [InlineData("SERVER_PORT", "abc")]
    [InlineData("SERVER_PORT", "70000")]
    [InlineData("SERVER_URL", "not a url")]
    [InlineData("WEBSOCKET_ENABLED", "maybe")]
    [InlineData("WEBSOCKET_GLOBAL_EVENTS", "2")]
    [InlineData("WEBSOCKET_PER_MESSAGE_DEFLATE", "yes please")]
    [InlineData("WEBSOCKET_PER_MESSAGE_DEFLATE_THRESHOLD", "-1")]
    [InlineData("CORS_ORIGIN", "ftp://x")]
    [InlineData("LOG_LEVEL", "chatty")]
    [InlineData("INBOUND_WEBHOOK_URL", "/relative")]
    [InlineData("WEBSOCKET_MAX_CONNECTIONS", "0")]
    [InlineData("WEBSOCKET_MAX_PAYLOAD", "-1")]
    [InlineData("WEBSOCKET_CONNECT_RATE", "fast")]
    [InlineData("WEBSOCKET_MAX_PENDING", "0")]
    [InlineData("WEBSOCKET_CONNECT_TIMEOUT_MS", "50")]
    [InlineData("WEBHOOK_MAX_BODY", "1e6")]
    [InlineData("TRUSTED_PROXIES", "proxy.local")]
    [InlineData("WEBSOCKET_REPLAY_LAST_STATE", "sometimes")]
    [InlineData("WEBSOCKET_RECOVERY_SECONDS", "-1")]
    [InlineData("WEBSOCKET_RECOVERY_SECONDS", "86401")]
    [InlineData("WEBSOCKET_RECOVERY_SECONDS", "2m")]
    [InlineData("WEBSOCKET_PARSER", "json")]
    [InlineData("REDIS_URI", "http://127.0.0.1:6379")]
    [InlineData("REDIS_URI", "redis://127.0.0.1:6379/db1")]
    [InlineData("REDIS_URI", "redis://127.0.0.1:99999")]
    [InlineData("REDIS_URI", "redis:///0")]
    [InlineData("REDIS_KEY_PREFIX", "a b")]
    [InlineData("REDIS_RELOAD_INTERVAL_MS", "10")]
    [InlineData("REDIS_ADAPTER", "kafka")]
    [InlineData("REDIS_STREAM_MAXLEN", "5")]
    [InlineData("NODE_ID", "a b")]
    [InlineData("NODE_HEARTBEAT_MS", "99")]
    [InlineData("WEBSOCKET_HTTP_COMPRESSION", "gzip")]
    [InlineData("WEBSOCKET_HTTP_COMPRESSION_THRESHOLD", "-1")]
    [InlineData("WEBSOCKET_HTTP_COMPRESSION_THRESHOLD", "1k")]
    public void InvalidValueFailsWithOneLineNamingTheVariable(string name, string value)
    {
        var ex = Assert.Throws<GatewayConfigurationException>(() => Bind((name, value)));
        Assert.StartsWith($"Invalid configuration: {name} ", ex.Message);
        Assert.Contains(value, ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public void BuildFailsWithTheSameLine()
    {
        var ex = Assert.Throws<GatewayConfigurationException>(() =>
            GatewayApp.Build([], new Dictionary<string, string?> { ["SERVER_PORT"] = "abc" }));
        Assert.Equal("Invalid configuration: SERVER_PORT must be an integer 1-65535 (got \"abc\")", ex.Message);
    }

    [Theory]
    [InlineData("redis://127.0.0.1:6379/0", "127.0.0.1", 6379, null, null, 0, false)]
    [InlineData("redis://cache", "cache", 6379, null, null, 0, false)]
    [InlineData("redis://:p%40ss@cache:6380/2", "cache", 6380, null, "p@ss", 2, false)]
    [InlineData("rediss://app:pw@redis.example.com/5", "redis.example.com", 6379, "app", "pw", 5, true)]
    [InlineData("redis://[::1]:7000", "::1", 7000, null, null, 0, false)]
    public void RedisUriForms(string uri, string host, int port, string? user, string? password, int db, bool tls)
    {
        var redis = Bind(("REDIS_URI", uri)).Redis!;
        Assert.Equal((host, port, user, password, db, tls), (redis.Host, redis.Port, redis.User, redis.Password, redis.Database, redis.UseTls));
        if (password is not null)
            Assert.DoesNotContain(password, redis.Display, StringComparison.Ordinal);
    }

    [Fact]
    public void RedisDefaults()
    {
        var options = Bind();
        Assert.Null(options.Redis);
        Assert.Equal("evolution-events:", options.RedisKeyPrefix);
        Assert.Equal(TimeSpan.FromSeconds(30), options.RedisReloadInterval);
        Assert.Equal(RedisAdapterMode.Streams, options.RedisAdapter);
        Assert.Equal(100_000, options.RedisStreamMaxLength);
        Assert.Null(options.NodeId);
        Assert.Equal(TimeSpan.FromSeconds(2), options.NodeHeartbeat);
        Assert.Equal(RedisAdapterMode.PubSub, Bind(("REDIS_ADAPTER", "PubSub")).RedisAdapter);
    }

    [Fact]
    public void ABadRedisUri_NeverPrintsItsPassword()
    {
        var ex = Assert.Throws<GatewayConfigurationException>(() => Bind(("REDIS_URI", "redis://:hunter2@host:port/0")));
        Assert.StartsWith("Invalid configuration: REDIS_URI ", ex.Message);
        Assert.DoesNotContain("hunter2", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ABadRedisUri_ExitsWith2AndOneLine()
    {
        var info = new System.Diagnostics.ProcessStartInfo("dotnet");
        info.ArgumentList.Add(typeof(GatewayApp).Assembly.Location);
        info.Environment["REDIS_URI"] = "mongodb://localhost";
        info.Environment["SERVER_PORT"] = "1";
        // bounded: a gateway that does not exit is killed (with its tree) and the test fails with its output
        var result = await Evolution.Events.Testing.BoundedProcess.RunAsync(info, TimeSpan.FromSeconds(60));
        Assert.Equal(2, result.ExitCode);
        Assert.Equal($"Invalid configuration: REDIS_URI {RedisSettings.Rule} (got \"mongodb://localhost\")", result.Stderr.TrimEnd());
    }

    [Fact]
    public void GuardVariablesHaveDefaultsAndAreRead()
    {
        var defaults = Bind();
        Assert.Equal(8L * 1024 * 1024, defaults.SendQueueBytes);
        Assert.Equal(8L * 1024 * 1024 - 1024, defaults.MaxEnvelopeBytes);
        Assert.Equal(256, defaults.InboundWebhookMaxInFlight);
        Assert.Equal(16L * 1024 * 1024, defaults.InboundWebhookMaxInFlightBytes);
        Assert.Equal(10_000, defaults.LogQueueSize);
        Assert.False(defaults.MetricsPublic);
        Assert.Null(defaults.MetricsApiKey);

        var options = Bind(("WEBSOCKET_SEND_QUEUE_BYTES", "65536"), ("INBOUND_WEBHOOK_MAX_IN_FLIGHT", "3"),
            ("INBOUND_WEBHOOK_MAX_IN_FLIGHT_BYTES", "4096"), ("LOG_QUEUE_SIZE", "5"), ("METRICS_PUBLIC", "yes"),
            ("METRICS_API_KEY", "scrape"));
        Assert.Equal(65536, options.SendQueueBytes);
        Assert.Equal(65536 - 1024, options.MaxEnvelopeBytes);
        Assert.Equal(3, options.InboundWebhookMaxInFlight);
        Assert.Equal(4096, options.InboundWebhookMaxInFlightBytes);
        Assert.Equal(5, options.LogQueueSize);
        Assert.True(options.MetricsPublic);
        Assert.Equal("scrape", options.MetricsApiKey);
        Assert.Equal(long.MaxValue, Bind(("WEBSOCKET_ENABLED", "false")).MaxEnvelopeBytes);
    }

    [Theory]
    [InlineData("WEBSOCKET_SEND_QUEUE_BYTES", "65535")]
    [InlineData("INBOUND_WEBHOOK_MAX_IN_FLIGHT", "0")]
    [InlineData("INBOUND_WEBHOOK_MAX_IN_FLIGHT_BYTES", "1023")]
    [InlineData("LOG_QUEUE_SIZE", "0")]
    [InlineData("METRICS_PUBLIC", "sometimes")]
    public void InvalidGuardValueFailsNamingTheVariable(string name, string value)
    {
        var ex = Assert.Throws<GatewayConfigurationException>(() => Bind((name, value)));
        Assert.StartsWith($"Invalid configuration: {name} ", ex.Message);
    }

    [Fact]
    public void ServerUrlDefaultsToThePort() => Assert.Equal("http://localhost:9001", Bind(("SERVER_PORT", "9001")).ServerUrl);
}

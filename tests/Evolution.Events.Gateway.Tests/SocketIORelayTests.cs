using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Evolution.Events.Gateway.Tests;

/// <summary>Client → server: events a Node socket.io-client emits with an ack, relayed to INBOUND_WEBHOOK_URL.</summary>
public class SocketIORelayTests
{
    [Fact]
    public async Task WithoutUpstreamTheAckGetsAnError()
    {
        await using var gw = await TestGateway.StartAsync();
        var token = await gw.CreateInstanceAsync("sales");
        await using var client = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(token), "websocket");
        // seed 001/002/004: socket.emit('send.message', { message: 'Hello, World!' }), here with an ack
        var ack = await EmitAsync(client, "send.message", new JsonObject { ["message"] = "Hello, World!" });
        var answer = ack["args"]![0]!.AsObject();
        Assert.Contains("INBOUND_WEBHOOK_URL", (string?)answer["error"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task AckGetsTheUpstreamsJsonAndTheUpstreamSeesTheRelayShape()
    {
        await using var upstream = await Upstream.StartAsync();
        await using var gw = await TestGateway.StartAsync(new() { ["INBOUND_WEBHOOK_URL"] = upstream.Url("/ok") });
        var token = await gw.CreateInstanceAsync("sales");
        await using var main = await SocketIOEventTests.ConnectAsync(gw, "/", SocketIOEventTests.Auth(TestGateway.Key));
        await using var client = NodeClient.Start("client.mjs", gw.BaseUri + "sales", SocketIOEventTests.Auth(token).ToJsonString());
        var socketId = (string?)(await client.NextOfTypeAsync("connect"))["id"];

        // only instance namespaces relay: this one goes nowhere
        await main.SendAsync(new JsonObject { ["cmd"] = "emit", ["event"] = "send_message", ["args"] = new JsonArray("from main") });
        var ack = await EmitAsync(client, "send_message", new JsonObject { ["message"] = "Hello, World!" });
        var answer = ack["args"]![0]!.AsObject();
        Assert.True((bool)answer["ok"]!);
        Assert.Equal("Hello, World!", (string?)answer["echo"]!["message"]);

        var seen = await upstream.Requests.ReadAsync();
        Assert.Equal(["data", "date_time", "event", "instance", "socket_id"], seen.Select(p => p.Key).Order());
        Assert.Equal("send_message", (string?)seen["event"]);
        Assert.Equal("sales", (string?)seen["instance"]);
        Assert.Equal("Hello, World!", (string?)seen["data"]!["message"]);
        Assert.Equal(socketId, (string?)seen["socket_id"]);
        Assert.True(DateTimeOffset.TryParse((string?)seen["date_time"], out _));

        // several arguments arrive as an array, none as null
        var many = await EmitAsync(client, "multi", 1, "two");
        Assert.Equal(1, (int)many["args"]![0]!["echo"]![0]!);
        Assert.Equal(new JsonArray(1, "two").ToJsonString(), (await upstream.Requests.ReadAsync())["data"]!.ToJsonString());
        await EmitAsync(client, "none");
        Assert.Null((await upstream.Requests.ReadAsync())["data"]);
        Assert.False(upstream.Requests.TryRead(out var extra), $"relayed from the main namespace: {extra?.ToJsonString()}");
    }

    [Fact]
    public async Task FailingUpstreamGivesErrorWithItsStatus()
    {
        await using var upstream = await Upstream.StartAsync();
        await using var gw = await TestGateway.StartAsync(new() { ["INBOUND_WEBHOOK_URL"] = upstream.Url("/fail") });
        await using var client = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(TestGateway.Key), "polling");
        var answer = (await EmitAsync(client, "send.message", new JsonObject { ["message"] = "x" }))["args"]![0]!.AsObject();
        Assert.Equal(500, (int)answer["status"]!);
        Assert.Equal("upstream answered 500", (string?)answer["error"]);
        // an emit without an ack is relayed too, and the socket keeps working
        await client.SendAsync(new JsonObject { ["cmd"] = "emit", ["event"] = "fire.and.forget", ["args"] = new JsonArray(1) });
        Assert.Equal("send.message", (string?)(await upstream.Requests.ReadAsync())["event"]);
        Assert.Equal("fire.and.forget", (string?)(await upstream.Requests.ReadAsync())["event"]);
        await gw.IngestAsync(TestGateway.Event("call", "sales"));
        Assert.Equal("call", (string?)(await client.NextEventAsync())["event"]);
    }

    /// <summary>
    /// The three documented upstream failures, each seen by a real socket.io-client through its ack: the ack is
    /// exactly <c>{ "error": … }</c> (plus <c>status</c> for a non-2xx answer) and never names the upstream.
    /// </summary>
    [Theory]
    [InlineData("answers500", "upstream answered 500", 500)]
    [InlineData("timesOut", "upstream timed out", null)]
    [InlineData("unreachable", "upstream unreachable", null)]
    public async Task UpstreamFailureReachesTheClientsAckAsTheDocumentedError(string failure, string error, int? status)
    {
        await using var upstream = await Upstream.StartAsync();
        var url = failure switch
        {
            "answers500" => upstream.Url("/fail"),
            "timesOut" => upstream.Url("/slow"),
            _ => $"http://127.0.0.1:{ClosedPort()}/unreachable",
        };
        await using var gw = await TestGateway.StartAsync(new()
        {
            ["INBOUND_WEBHOOK_URL"] = url,
            ["INBOUND_WEBHOOK_TIMEOUT_MS"] = "1000",
        });
        var token = await gw.CreateInstanceAsync("sales");
        await using var client = await SocketIOEventTests.ConnectAsync(gw, "/sales", SocketIOEventTests.Auth(token), "websocket");

        var answer = (await EmitAsync(client, "send.message", new JsonObject { ["message"] = "x" }))["args"]![0]!.AsObject();
        var expected = new JsonObject { ["error"] = error };
        if (status is not null)
            expected["status"] = status;
        Assert.Equal(expected.ToJsonString(), answer.ToJsonString());
        var uri = new Uri(url);
        Assert.DoesNotContain(uri.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), answer.ToJsonString(), StringComparison.Ordinal);
        Assert.DoesNotContain(uri.AbsolutePath, answer.ToJsonString(), StringComparison.Ordinal);
        Assert.DoesNotContain("127.0.0.1", answer.ToJsonString(), StringComparison.Ordinal);
        if (failure != "unreachable")
            Assert.Equal("send.message", (string?)(await upstream.Requests.ReadAsync())["event"]);

        // the socket keeps working both ways
        await gw.IngestAsync(TestGateway.Event("call", "sales"));
        Assert.Equal("call", (string?)(await client.NextEventAsync())["event"]);
    }

    /// <summary>A loopback port nothing listens on: bound by the OS, then released.</summary>
    private static int ClosedPort()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private static int _ackIds;

    /// <summary>Emits with an ack through client.mjs and returns the ack line (<c>{"type":"ack","args":[…]}</c>).</summary>
    internal static async Task<JsonObject> EmitAsync(NodeClient client, string eventName, params JsonNode?[] args)
    {
        var id = Interlocked.Increment(ref _ackIds);
        await client.SendAsync(new JsonObject
        {
            ["cmd"] = "emit",
            ["event"] = eventName,
            ["args"] = new JsonArray(args),
            ["ack"] = true,
            ["id"] = id,
        });
        var ack = await client.NextAsync(l => (string?)l["type"] == "ack" && (int?)l["id"] == id);
        Assert.Null(ack["error"]);
        return ack;
    }

    /// <summary>A tiny upstream on 127.0.0.1:0: /ok echoes the data as JSON, /fail answers 500, /slow does not answer for 60 s; every body is recorded.</summary>
    internal sealed class Upstream : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly Channel<JsonObject> _requests = Channel.CreateUnbounded<JsonObject>();

        private Upstream(WebApplication app) => _app = app;

        public ChannelReader<JsonObject> Requests => _requests.Reader;

        public static async Task<Upstream> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Logging.ClearProviders();
            var app = builder.Build();
            var upstream = new Upstream(app);
            app.Run(async context =>
            {
                var body = (await JsonNode.ParseAsync(context.Request.Body))!.AsObject();
                upstream._requests.Writer.TryWrite(body);
                if (context.Request.Path == "/slow")
                {
                    // answers long after the gateway's timeout, or when the gateway gives up
                    await Task.Delay(TimeSpan.FromSeconds(60), context.RequestAborted).ContinueWith(_ => { }, TaskScheduler.Default);
                    return;
                }
                if (context.Request.Path == "/ok")
                {
                    await context.Response.WriteAsJsonAsync(new JsonObject { ["ok"] = true, ["echo"] = body["data"]?.DeepClone() });
                }
                else
                {
                    context.Response.StatusCode = 500;
                    await context.Response.WriteAsync("boom");
                }
            });
            await app.StartAsync();
            return upstream;
        }

        public string Url(string path) => GatewayApp.BoundAddress(_app).ToString().TrimEnd('/') + path;

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}

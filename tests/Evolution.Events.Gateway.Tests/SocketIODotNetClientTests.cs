using System.Text.Json;
using System.Threading.Channels;
using SocketIOClient;
using SocketIOClient.Transport;

namespace Evolution.Events.Gateway.Tests;

/// <summary>The .NET SocketIOClient 3.0.6 package against the gateway: auth, events, emit with ack (relay).</summary>
public class SocketIODotNetClientTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData(TransportProtocol.WebSocket)]
    [InlineData(TransportProtocol.Polling)]
    public async Task InstanceTokenReceivesEventsAndRelaysWithAck(TransportProtocol transport)
    {
        await using var upstream = await SocketIORelayTests.Upstream.StartAsync();
        await using var gw = await TestGateway.StartAsync(new() { ["INBOUND_WEBHOOK_URL"] = upstream.Url("/ok") });
        var token = await gw.CreateInstanceAsync("sales");
        await gw.SetSettingsAsync("sales", true, "QRCODE_UPDATED", "CONNECTION_UPDATE");
        using var client = NewClient(gw, "/sales", transport, new { apikey = token });
        var events = Channel.CreateUnbounded<(string Name, JsonElement Envelope)>();
        foreach (var name in new[] { "qrcode.updated", "connection.update", "messages.upsert" })
            client.On(name, r => events.Writer.TryWrite((name, r.GetValue<JsonElement>())));
        await ConnectAsync(client);

        await gw.IngestAsync($"[{TestGateway.Event("qrcode.updated", "sales", """{"qrcode":{"base64":"data:image/png;base64,AAA"}}""")},"
            + $"{TestGateway.Event("messages.upsert", "sales")},{TestGateway.Event("connection.update", "sales", """{"state":"open"}""")}]");
        var qr = await ReadAsync(events.Reader);
        Assert.Equal("qrcode.updated", qr.Name);
        Assert.Equal("data:image/png;base64,AAA", qr.Envelope.GetProperty("data").GetProperty("qrcode").GetProperty("base64").GetString());
        Assert.Equal("sales", qr.Envelope.GetProperty("instance").GetString());
        Assert.Equal(6, qr.Envelope.EnumerateObject().Count());
        var open = await ReadAsync(events.Reader);
        Assert.Equal("connection.update", open.Name);
        Assert.Equal("open", open.Envelope.GetProperty("data").GetProperty("state").GetString());

        var ack = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        await client.EmitAsync("send.message", r => ack.TrySetResult(r.GetValue<JsonElement>()), new { message = "Hello, World!" });
        var answer = await ack.Task.WaitAsync(Timeout);
        Assert.True(answer.GetProperty("ok").GetBoolean());
        Assert.Equal("Hello, World!", answer.GetProperty("echo").GetProperty("message").GetString());
        var relayed = await upstream.Requests.ReadAsync().AsTask().WaitAsync(Timeout);
        Assert.Equal("send.message", (string?)relayed["event"]);
        Assert.Equal("sales", (string?)relayed["instance"]);
        Assert.Equal(client.Id, (string?)relayed["socket_id"]);
        await client.DisconnectAsync();
    }

    [Fact]
    public async Task WithoutUpstreamTheAckCarriesTheError()
    {
        await using var gw = await TestGateway.StartAsync();
        using var client = NewClient(gw, "/sales", TransportProtocol.WebSocket, new { token = TestGateway.Key });
        await ConnectAsync(client);
        var ack = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        await client.EmitAsync("send_message", r => ack.TrySetResult(r.GetValue<JsonElement>()), new { message = "Hello, World!" });
        Assert.Contains("INBOUND_WEBHOOK_URL", (await ack.Task.WaitAsync(Timeout)).GetProperty("error").GetString(), StringComparison.Ordinal);
        await client.DisconnectAsync();
    }

    [Fact]
    public async Task ForeignNamespaceIsRefusedWithItsReason()
    {
        await using var gw = await TestGateway.StartAsync();
        var token = await gw.CreateInstanceAsync("sales");
        using var client = NewClient(gw, "/support", TransportProtocol.WebSocket, new { apikey = token });
        var error = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.OnError += (_, message) => error.TrySetResult(message);
        await client.ConnectAsync().WaitAsync(Timeout);
        Assert.Contains("Forbidden namespace", await error.Task.WaitAsync(Timeout), StringComparison.Ordinal);
        Assert.False(client.Connected);
    }

    private static SocketIOClient.SocketIO NewClient(TestGateway gw, string nsp, TransportProtocol transport, object auth) =>
        new(new Uri(gw.BaseUri, nsp), new SocketIOOptions
        {
            Transport = transport,
            AutoUpgrade = false,
            Auth = auth,
            Reconnection = false,
            ConnectionTimeout = Timeout,
        });

    /// <summary>Connects and waits for the CONNECT ack (3.0.6's ConnectAsync can return before it over polling).</summary>
    private static async Task ConnectAsync(SocketIOClient.SocketIO client)
    {
        var connected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var error = "";
        client.OnConnected += (_, _) => connected.TrySetResult();
        client.OnError += (_, message) => error = message;
        await client.ConnectAsync().WaitAsync(Timeout);
        await connected.Task.WaitAsync(Timeout).ContinueWith(_ => { }, TaskScheduler.Default);
        Assert.True(client.Connected, $"not connected: {error}");
    }

    private static async Task<T> ReadAsync<T>(ChannelReader<T> reader) => await reader.ReadAsync().AsTask().WaitAsync(Timeout);
}

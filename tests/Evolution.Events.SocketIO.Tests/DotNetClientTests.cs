using System.Text.Json;
using SocketIOClient;
using SocketIOClient.Transport;

namespace Evolution.Events.SocketIO.Tests;

/// <summary>The .NET SocketIOClient 3.0.6 package against the server, on each transport.</summary>
public class DotNetClientTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private static readonly int[] Nested = [1, 2];

    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private readonly TestServer _server = fixture.Server;

    private SocketIOClient.SocketIO Client(string nsp, TransportProtocol transport, object auth) =>
        new(_server.Url + nsp, new SocketIOClient.SocketIOOptions
        {
            Path = "/socket.io",
            EIO = 4,
            Transport = transport,
            AutoUpgrade = false,
            Reconnection = false,
            ConnectionTimeout = Wait,
            Auth = auth,
        });

    /// <summary>Connects and waits for the namespace CONNECT (OnConnected), not just the transport.</summary>
    private static async Task ConnectAsync(SocketIOClient.SocketIO client)
    {
        var connected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.OnConnected += (_, _) => connected.TrySetResult();
        await client.ConnectAsync().WaitAsync(Wait);
        await connected.Task.WaitAsync(Wait);
        Assert.True(client.Connected);
    }

    [Theory]
    [InlineData(TransportProtocol.WebSocket, "websocket")]
    [InlineData(TransportProtocol.Polling, "polling")]
    public async Task Connects_emits_receives_and_acks(TransportProtocol transport, string name)
    {
        var tag = "dotnet-" + name;
        using var client = Client("", transport, new { tag });
        var echoed = new TaskCompletionSource<(string, int)>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.On("echo", r => echoed.TrySetResult((r.GetValue<string>(0), r.GetValue<int>(1))));
        await ConnectAsync(client);
        Assert.False(string.IsNullOrEmpty(client.Id));
        Assert.Equal(name, (await _server.WaitForAsync(o => o.Tag == tag && o.Kind == "connect")).Value);

        // client -> server with an ack
        var acked = new TaskCompletionSource<SocketIOResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
        await client.EmitAsync("echo", r => acked.TrySetResult(r), "hello", 42, new { nested = Nested });
        var ack = await acked.Task.WaitAsync(Wait);
        Assert.Equal("hello", ack.GetValue<string>(0));
        Assert.Equal(42, ack.GetValue<int>(1));
        Assert.Equal("[1,2]", ack.GetValue<JsonElement>(2).GetProperty("nested").GetRawText());

        // client -> server without ack, server -> client event
        await client.EmitAsync("echo", "plain", 7);
        Assert.Equal(("plain", 7), await echoed.Task.WaitAsync(Wait));

        // server -> client with an ack
        var answered = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.On("question", async r => await r.CallbackAsync(new { doubled = r.GetValue<int>(0) * 2 }));
        client.On("answer", r => answered.TrySetResult(r.GetValue<JsonElement>(0)));
        await client.EmitAsync("ask", 21);
        Assert.Equal(42, (await answered.Task.WaitAsync(Wait)).GetProperty("doubled").GetInt32());

        await client.DisconnectAsync();
        var left = await _server.WaitForAsync(o => o.Tag == tag && o.Kind == "disconnect");
        Assert.Equal(DisconnectReason.ClientNamespaceDisconnect, left.Value);
    }

    [Theory]
    [InlineData(TransportProtocol.WebSocket)]
    [InlineData(TransportProtocol.Polling)]
    public async Task Joins_the_admin_namespace_with_the_token(TransportProtocol transport)
    {
        var tag = "dotnet-admin-" + transport;
        using var client = Client("/admin", transport, new { tag, token = "secret" });
        var welcome = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.On("welcome", r => welcome.TrySetResult(r.GetValue<string>(0)));
        await ConnectAsync(client);
        Assert.Equal("/admin", await welcome.Task.WaitAsync(Wait));

        var who = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        await client.EmitAsync("who", r => who.TrySetResult(r.GetValue<JsonElement>(0)));
        var value = await who.Task.WaitAsync(Wait);
        Assert.Equal("/admin", value.GetProperty("nsp").GetString());
        Assert.Equal("secret", value.GetProperty("auth").GetProperty("token").GetString());
        Assert.Equal("/admin", (await _server.WaitForAsync(o => o.Tag == tag && o.Kind == "connect")).Namespace);
        await client.DisconnectAsync();
    }

    [Fact]
    public async Task The_admin_namespace_refuses_a_wrong_token()
    {
        using var client = Client("/admin", TransportProtocol.WebSocket, new { tag = "dotnet-refused", token = "nope" });
        var error = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.OnError += (_, message) => error.TrySetResult(message);
        _ = client.ConnectAsync();
        Assert.Contains("not allowed", await error.Task.WaitAsync(Wait));
        Assert.False(client.Connected);
        await Task.Delay(100);
        Assert.DoesNotContain(_server.Observations, o => o.Tag == "dotnet-refused" && o.Kind == "connect");
    }

    [Theory]
    [InlineData(TransportProtocol.WebSocket)]
    [InlineData(TransportProtocol.Polling)]
    public async Task Binary_arrives_as_bytes_both_ways(TransportProtocol transport)
    {
        using var client = Client("", transport, new { tag = "dotnet-binary-" + transport });
        var binary = new TaskCompletionSource<SocketIOResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.On("binary", r => binary.TrySetResult(r));
        await ConnectAsync(client);

        var sizes = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        await client.EmitAsync("binary-info", r => sizes.TrySetResult(r.GetValue<JsonElement>(0)), new byte[1000], "text");
        Assert.Equal("[1000,-1]", (await sizes.Task.WaitAsync(Wait)).GetRawText());

        await client.EmitAsync("send-binary");
        var received = await binary.Task.WaitAsync(Wait);
        var all = received.GetValue<byte[]>(0);
        Assert.Equal(256, all.Length);
        Assert.Equal(255, all[255]);
        await client.DisconnectAsync();
    }
}

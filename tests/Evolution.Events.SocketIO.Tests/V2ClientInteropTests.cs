namespace Evolution.Events.SocketIO.Tests;

/// <summary>A server with <c>Engine.AllowEIO3</c>: Socket.IO 2.x clients (Engine.IO 3) are served beside 4.x ones.</summary>
public sealed class Eio3ServerFixture : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await TestServer.StartAsync(o => o.Engine.AllowEIO3 = true);

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>socket.io-client 2.5 (npm alias <c>socket.io-client-v2</c>, tests/interop/v2.mjs) against our server.</summary>
public class V2ClientInteropTests(Eio3ServerFixture fixture) : IClassFixture<Eio3ServerFixture>
{
    private readonly TestServer _server = fixture.Server;

    [Theory]
    [InlineData("polling", "binary")]
    [InlineData("polling", "base64")]
    [InlineData("websocket", "binary")]
    [InlineData("websocket", "base64")]
    public async Task Socket_io_2_client_connects_acks_binary_rooms_namespaces_and_disconnects(string transport, string encoding)
    {
        var tag = $"v2-{transport}-{encoding}";
        var result = await NodeRunner.RunAsync("v2.mjs", _server.Url, transport, tag, encoding);

        // joined to "/" without sending a CONNECT; its id is the Engine.IO id, as socket.io 4 gives a 2.x client
        var connect = result.Single("connect");
        Assert.Equal(transport, (string?)connect["transport"]);
        Assert.Equal((string?)connect["engineId"], (string?)connect["id"]);

        Json.Equal("[\"hello\",42,{\"a\":[1,2],\"s\":\"é€😀\"},null,true]", result.Single("ack")["args"]);
        var who = result.Single("who")["value"]!;
        Assert.Equal("/", (string?)who["nsp"]);
        Assert.Equal(transport, (string?)who["transport"]);
        Assert.Equal("q", (string?)who["query"]);
        Json.Equal("[\"ready?!\"]", result.Single("server-ack")["args"]);

        var echo = result.Single("binary-echo");
        Assert.True((bool)echo["same"]!, result.Output);
        Assert.Equal("file", (string?)echo["objName"]);
        Json.Equal("[7,8,9]", echo["objData"]);
        Json.Equal("[1000,-1,2]", result.Single("binary-info")["value"]);
        var binary = result.Single("server-binary");
        Assert.Equal(256, (int)binary["length"]!);
        Assert.Equal(255, (int)binary["last"]!);
        Json.Equal("[1,2,3]", binary["data"]);
        Json.Equal("[9]", binary["nested"]);

        var rooms = result.Single("rooms");
        Assert.Contains("v2-room", Json.Strings(rooms["rooms"]));
        Assert.Equal("to the room", (string?)rooms["message"]![0]);

        // "/admin?token=secret": the namespace's query is its auth; its id is "/admin#<engine id>"
        var admin = result.Single("admin");
        Assert.StartsWith("/admin#", (string?)admin["id"]);
        Json.Equal("[\"/admin\"]", admin["welcome"]);
        Assert.Equal("secret", (string?)admin["who"]!["auth"]!["token"]);
        Assert.Equal((string?)admin["id"], (string?)admin["who"]!["id"]);

        // a refusal carries the error's data alone (socket.io 4: err.data || err.message), as a 2.x client reads it
        Json.Equal("{\"reason\":\"bad token\"}", result.Single("admin-refused")["error"]);

        Assert.Equal("io client disconnect", (string?)result.Single("disconnect")["reason"]);
        var disconnect = await _server.WaitForAsync(o => o.Tag == tag && o.Kind == "disconnect" && o.Namespace == "/");
        Assert.Equal(DisconnectReason.ClientNamespaceDisconnect, disconnect.Value);
    }
}

/// <summary>Without AllowEIO3 (the default) a Socket.IO 2.x client is refused with a clear answer.</summary>
public class V2ClientRefusedTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly TestServer _server = fixture.Server;

    [Fact]
    public async Task Socket_io_2_client_is_refused_with_unsupported_protocol_version()
    {
        var result = await NodeRunner.RunAsync("v2.mjs", _server.Url, "refused", "v2-refused");

        var refused = result.Single("refused");
        Assert.Equal("xhr poll error", (string?)refused["clientError"]);
        Assert.Equal(400, (int)refused["description"]!);
        Assert.Equal(400, (int)refused["status"]!);
        Json.Equal("{\"code\":5,\"message\":\"Unsupported protocol version\"}", refused["body"]);
        Assert.Empty(_server.For("v2-refused"));
    }
}

using System.Text.Json.Nodes;

namespace Evolution.Events.SocketIO.Tests;

/// <summary>One real Socket.IO server per test class (its own port), so classes run in parallel.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

internal static class Json
{
    public static string Of(JsonNode? node) => node?.ToJsonString() ?? "null";

    /// <summary>Structural JSON equality (escaping and number formatting do not matter).</summary>
    public static void Equal(string expected, JsonNode? actual) =>
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), actual), $"expected {expected}, got {Of(actual)}");

    public static List<int> Ints(JsonNode? node) => node!.AsArray().Select(n => n!.GetValue<int>()).ToList();

    public static List<string> Strings(JsonNode? node) => node!.AsArray().Select(n => n!.GetValue<string>()).ToList();
}

/// <summary>socket.io-client 4.8 (Node) on each transport, and across the polling → WebSocket upgrade.</summary>
public class NodeTransportTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly TestServer _server = fixture.Server;

    [Theory]
    [InlineData("websocket")]
    [InlineData("polling")]
    public async Task One_transport_only_connect_acks_emits_burst_and_large_message(string transport)
    {
        var tag = "node-" + transport;
        var result = await NodeRunner.RunAsync("transport.mjs", _server.Url, transport, tag);

        Assert.Equal(transport, (string?)result.Single("connect")["transport"]);
        Json.Equal("[\"hello\",42,{\"a\":[1,2],\"s\":\"é€😀\"},null,true]", (result.Single("ack")["args"]));
        Json.Equal("[\"no-ack\",1.5]", (result.Single("echo")["args"]));
        Assert.Equal(Enumerable.Range(0, 50), Json.Ints(result.Single("burst")["values"]));
        var big = result.Single("big");
        Assert.Equal(200_000, (int)big["length"]!);
        Assert.True((bool)big["same"]!);
        var who = result.Single("who")["value"]!;
        Assert.Equal(transport, (string?)who["transport"]);
        Assert.Equal("/", (string?)who["nsp"]);
        Assert.Equal(tag, (string?)who["auth"]!["tag"]);
        Assert.Equal(transport, (string?)result.Single("final")["transport"]);

        // the server saw the same: the transport, then the client's namespace disconnect
        Assert.Equal(transport, (await _server.WaitForAsync(o => o.Tag == tag && o.Kind == "connect")).Value);
        var disconnect = await _server.WaitForAsync(o => o.Tag == tag && o.Kind == "disconnect");
        Assert.Equal(DisconnectReason.ClientNamespaceDisconnect, disconnect.Value);
    }

    [Fact]
    public async Task Polling_then_upgrade_ends_on_websocket_without_losing_or_duplicating_a_message()
    {
        var result = await NodeRunner.RunAsync("upgrade.mjs", _server.Url, "node-upgrade");

        Assert.Equal("polling", (string?)result.Single("open")["transport"]);
        Assert.Equal("polling", (string?)result.Single("connect")["transport"]);
        Assert.Equal("websocket", (string?)result.Single("upgrade")["transport"]);
        var end = result.Single("end");
        var sent = (int)end["sent"]!;
        var received = Json.Ints(end["received"]);
        Assert.Equal(Enumerable.Range(0, sent), received); // every number once, in order
        Assert.Equal("websocket", (string?)end["transport"]);

        // the stream straddled the upgrade: numbers came by polling, then the rest by WebSocket
        var polling = (int)end["byTransport"]!["polling"]!;
        var websocket = (int)end["byTransport"]!["websocket"]!;
        Assert.True(polling >= 20 && websocket >= 20, $"polling {polling}, websocket {websocket}\n{result.Output}");
        Assert.Equal(sent, polling + websocket);
        Assert.Equal(polling, (int)end["upgradedAt"]!);
        Assert.Equal("polling", (await _server.WaitForAsync(o => o.Tag == "node-upgrade" && o.Kind == "connect")).Value);
        Assert.Equal(sent.ToString(), (await _server.WaitForAsync(o => o.Tag == "node-upgrade" && o.Kind == "streamed")).Value);
    }
}

/// <summary>Namespaces: multiplexing, a middleware refusal, dynamic namespaces.</summary>
public class NodeNamespaceTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly TestServer _server = fixture.Server;

    [Fact]
    public async Task Main_and_admin_namespaces_share_one_connection()
    {
        var result = await NodeRunner.RunAsync("namespaces.mjs", _server.Url, "multiplex", "node-mux");

        var connect = result.Single("connect");
        Assert.True((bool)connect["sameManager"]!);
        Assert.NotEqual((string?)connect["main"], (string?)connect["admin"]);
        Json.Equal("[\"/admin\"]", (result.Single("welcome")["args"]));
        var acks = result.All("ack").ToList();
        Assert.Equal("/admin", (string?)acks[0]["value"]!["nsp"]);
        Assert.Equal("secret", (string?)acks[0]["value"]!["auth"]!["token"]);
        Assert.Equal("/", (string?)acks[1]["value"]!["nsp"]);
        var after = result.Single("after-admin-disconnect");
        Assert.True((bool)after["mainConnected"]!);
        Assert.Equal("still", (string?)after["value"]);

        var left = await _server.WaitForAsync(o => o.Tag == "node-mux" && o.Kind == "disconnect" && o.Namespace == "/admin");
        Assert.Equal(DisconnectReason.ClientNamespaceDisconnect, left.Value);
    }

    [Fact]
    public async Task Admin_without_the_token_is_refused_with_the_middleware_message_and_data()
    {
        var result = await NodeRunner.RunAsync("namespaces.mjs", _server.Url, "refused", "node-refused");

        var errors = result.All("connect_error").ToList();
        Assert.Equal(2, errors.Count);
        Assert.All(errors, e =>
        {
            Assert.Equal("/admin", (string?)e["nsp"]);
            Assert.Equal("not allowed", (string?)e["message"]);
            Json.Equal("{\"reason\":\"bad token\"}", (e["data"]));
            Assert.False((bool)e["active"]!); // a middleware refusal is final: no retry
        });
        Assert.Empty(result.All("unexpected-connect"));
        Assert.Equal("/admin", (string?)result.Single("connect")["nsp"]);
        await _server.WaitForAsync(o => o.Tag == "node-refused" && o.Kind == "connect");
        Assert.Single(_server.For("node-refused"), o => o.Kind == "connect");
    }

    [Fact]
    public async Task A_dynamic_namespace_admits_matching_names_and_refuses_others()
    {
        var result = await NodeRunner.RunAsync("namespaces.mjs", _server.Url, "dynamic", "node-dyn");

        Json.Equal("[\"/dyn-room42\"]", (result.Single("welcome")["args"]));
        Assert.Equal("dyn", (string?)result.Single("ack")["value"]);
        var errors = result.All("connect_error").ToList();
        Assert.Equal(["/dyn-", "/dyn-a.b", "/unknown"], errors.Select(e => (string?)e["nsp"]));
        Assert.All(errors, e => Assert.Equal("Invalid namespace", (string?)e["message"]));
        Assert.Equal("/dyn-room42", (await _server.WaitForAsync(o => o.Tag == "node-dyn" && o.Kind == "connect")).Namespace);

        // the child namespace goes away with its last socket; refused names never made one
        await _server.WaitForAsync(o => o.Tag == "node-dyn" && o.Kind == "disconnect");
        Assert.False(_server.Io.TryGetNamespace("/dyn-room42", out _));
        Assert.False(_server.Io.TryGetNamespace("/unknown", out _));
        Assert.False(_server.Io.TryGetNamespace("/dyn-a.b", out _));
    }
}

/// <summary>Acknowledgements, binary and rooms.</summary>
public class NodeMessagingTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly TestServer _server = fixture.Server;

    [Fact]
    public async Task Acks_work_both_ways()
    {
        var result = await NodeRunner.RunAsync("acks.mjs", _server.Url, "node-acks");

        Json.Equal("[\"a\",1,{\"b\":[true,null]}]", (result.Single("client-ack")["args"]));
        Json.Equal("[]", (result.Single("empty-ack")["args"]));
        Json.Equal("[{\"doubled\":42},\"second\"]", (result.Single("server-ack")["args"]));
        Assert.True((bool)result.Single("many")["ok"]!);
        Assert.Equal("{\"doubled\":42}", (await _server.WaitForAsync(o => o.Tag == "node-acks" && o.Kind == "answer")).Value);
    }

    [Theory]
    [InlineData("websocket")]
    [InlineData("polling")]
    public async Task Binary_buffers_travel_both_ways(string transport)
    {
        var result = await NodeRunner.RunAsync("binary.mjs", _server.Url, transport, "node-bin-" + transport);

        var echo = result.Single("echo");
        Assert.True((bool)echo["same"]!, result.Output);
        Assert.Equal(256, (int)echo["length"]!);
        Assert.Equal([0, 1, 2, 3], Json.Ints(echo["first"]));
        Assert.Equal("file", (string?)echo["objName"]);
        Assert.Equal([7, 8, 9], Json.Ints(echo["objData"]));
        Assert.Equal(0, (int)echo["emptyLength"]!);

        // the server got real bytes (not base64 strings): 1000 bytes, a string, 2 bytes
        Assert.Equal([1000, -1, 2], Json.Ints(result.Single("sizes")["value"]));

        var fromServer = result.Single("server-binary");
        Assert.True((bool)fromServer["isBuffer"]!);
        Assert.Equal(256, (int)fromServer["length"]!);
        Assert.Equal(255, (int)fromServer["last"]!);
        Assert.Equal("blob", (string?)fromServer["name"]);
        Assert.Equal([1, 2, 3], Json.Ints(fromServer["data"]));
        Assert.Equal([9], Json.Ints(fromServer["nested"]));
    }

    [Fact]
    public async Task Rooms_scope_broadcasts()
    {
        var result = await NodeRunner.RunAsync("rooms.mjs", _server.Url, "node-rooms");

        var joined = result.Single("joined");
        Assert.Contains("r1", Json.Strings(joined["a"]));
        Assert.Equal(2, Json.Strings(joined["a"]).Count); // its own id room and r1
        var received = result.Single("received");
        Assert.Equal(["m1<node-rooms-c", "m3<node-rooms-c"], Json.Strings(received["a"]));
        Assert.Equal(["m1<node-rooms-c", "m2<node-rooms-a", "all:m4<node-rooms-a"], Json.Strings(received["b"]));
        Assert.Equal(["all:m4<node-rooms-a"], Json.Strings(received["c"]));
    }
}

/// <summary>Reconnection: after a transport close the client comes back; after a server disconnect it does not.</summary>
public class NodeReconnectTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly TestServer _server = fixture.Server;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Reconnects_after_a_transport_close_but_not_after_a_server_disconnect(bool kickClosesConnection)
    {
        var tag = "node-reconnect-" + kickClosesConnection;
        var result = await NodeRunner.RunAsync("reconnect.mjs", _server.Url, kickClosesConnection ? "true" : "false", tag);

        var disconnects = result.All("disconnect").ToList();
        Assert.Equal(2, disconnects.Count);
        Assert.Equal("transport close", (string?)disconnects[0]["reason"]);
        Assert.True((bool)disconnects[0]["active"]!);
        Assert.Equal("io server disconnect", (string?)disconnects[1]["reason"]);
        Assert.False((bool)disconnects[1]["active"]!);
        Assert.Single(result.All("reconnect"));
        Assert.True((bool)result.Single("reconnected")["newId"]!);
        var final = result.Single("final");
        Assert.Equal(2, (int)final["connects"]!);
        Assert.False((bool)final["connected"]!);
        Assert.False((bool)final["active"]!);

        // server side: the first socket left with the forced close of its connection, the second was kicked
        await _server.WaitForAsync(o => o.Tag == tag && o.Kind == "disconnect" && o.Value == DisconnectReason.ServerNamespaceDisconnect);
        Assert.Equal(
            [DisconnectReason.ForcedServerClose, DisconnectReason.ServerNamespaceDisconnect],
            _server.For(tag).Where(o => o.Kind == "disconnect").Select(o => o.Value));
        Assert.Equal(2, _server.For(tag).Count(o => o.Kind == "connect"));
    }
}

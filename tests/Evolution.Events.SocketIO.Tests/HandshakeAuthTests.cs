using System.Text.Json;
using System.Text.Json.Nodes;
using Evolution.Events.SocketIO.Protocol;

namespace Evolution.Events.SocketIO.Tests;

/// <summary>
/// A socket keeps its CONNECT's auth for its lifetime: the auth owns its values instead of reading them from the
/// packet's parsed document, which would stay alive with it (issue 11: bytes per idle socket).
/// </summary>
public sealed class HandshakeAuthTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_sockets_auth_holds_its_own_values_not_the_packets_document()
    {
        var nsp = _server.Io.Of("/owned-auth");
        var auths = new TaskCompletionSource<JsonObject>(TaskCreationOptions.RunContinuationsAsynchronously);
        nsp.OnConnection(socket => auths.TrySetResult(socket.Handshake.Auth));

        await using var client = await WsSocketIOClient.OpenAsync(_server.BaseUri);
        var sent = new JsonObject { ["apikey"] = "k-1", ["n"] = 7, ["deep"] = new JsonArray(1.5m, true, null, "x", new JsonObject(), new JsonArray()), ["e"] = new JsonObject() };
        Assert.True((await client.ConnectAsync("/owned-auth", sent)).Ok);

        var auth = await auths.Task.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(sent.ToJsonString(), auth.ToJsonString());
        Assert.False(IsDocumentBacked(auth["apikey"]));
        Assert.False(IsDocumentBacked(auth["n"]));
        Assert.False(IsDocumentBacked(auth["deep"]![0]));
        Assert.False(IsDocumentBacked(auth["deep"]![3]));
    }

    [Fact]
    public void A_copy_keeps_every_value_as_written_and_owns_them()
    {
        var parsed = JsonNode.Parse("""{"s":"a\"b","i":-12,"m":1.50,"big":1e400,"t":true,"f":false,"z":null,"o":{"a":[1,{"b":"c"},{},[]]},"e":{},"ea":[]}""")!.AsObject();
        Assert.True(IsDocumentBacked(parsed["s"])); // what a parsed packet holds

        var copy = JsonOwned.Copy(parsed);
        Assert.Equal(parsed.ToJsonString(), copy.ToJsonString());
        foreach (var name in new[] { "s", "i", "m", "t", "f" })
        {
            Assert.False(IsDocumentBacked(copy[name]), name);
        }

        Assert.False(IsDocumentBacked(copy["o"]!["a"]![1]!["b"]));
        Assert.Same(JsonOwned.Copy([]).GetType(), typeof(JsonObject));
    }

    private static bool IsDocumentBacked(JsonNode? node) => node is JsonValue value && value.TryGetValue<JsonElement>(out _);
}

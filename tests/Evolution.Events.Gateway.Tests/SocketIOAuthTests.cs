using System.Text.Json.Nodes;

namespace Evolution.Events.Gateway.Tests;

/// <summary>Who may open which namespace, with the Node socket.io-client 4.x (tests/interop/gateway/connect-matrix.mjs).</summary>
public class SocketIOAuthTests
{
    [Fact]
    public async Task GlobalKeyOpensAnyValidNamespaceAndTokenOnlyItsOwn()
    {
        await using var gw = await TestGateway.StartAsync();
        var sales = await gw.CreateInstanceAsync("sales");
        await gw.CreateInstanceAsync("support");
        var key = new JsonObject { ["auth"] = new JsonObject { ["apikey"] = TestGateway.Key } };
        var token = new JsonObject { ["auth"] = new JsonObject { ["apikey"] = sales } };
        var results = await ConnectAllAsync(gw,
            ("global-sales", "/sales", key),
            ("global-unregistered", "/not-yet.created_1", key),
            ("global-main", "/", key),
            ("global-64-chars", "/" + new string('a', 64), key),
            ("token-own", "/sales", token),
            ("token-other", "/support", token),
            ("token-main", "/", token),
            ("token-unregistered", "/nobody", token),
            ("wrong-key", "/sales", new JsonObject { ["auth"] = new JsonObject { ["apikey"] = "wrong" } }),
            ("wrong-key-main", "/", new JsonObject { ["query"] = new JsonObject { ["apikey"] = "wrong" } }),
            ("no-key", "/sales", []),
            ("no-key-main", "/", []),
            ("bad-name", "/bad name!", key),
            ("65-chars", "/" + new string('a', 65), key),
            ("slash-in-name", "/sales/x", key));

        AssertConnected(results, "global-sales", "global-unregistered", "global-main", "global-64-chars", "token-own");
        AssertRefused(results, "Forbidden namespace", "token-other", "token-main", "token-unregistered");
        AssertRefused(results, "Invalid API key", "wrong-key", "wrong-key-main", "no-key", "no-key-main");
        AssertRefused(results, "Invalid namespace", "bad-name", "65-chars", "slash-in-name");
    }

    [Fact]
    public async Task KeyIsReadFromAuthQueryAndHeaderOnEveryTransport()
    {
        await using var gw = await TestGateway.StartAsync();
        var sales = await gw.CreateInstanceAsync("sales");
        var specs = new List<(string, string, JsonObject)>();
        foreach (var transport in new[] { "polling", "websocket" })
        {
            JsonObject With(string name, JsonNode value) => new()
            {
                [name] = value,
                ["transports"] = new JsonArray(transport),
            };
            specs.Add(($"auth-apikey-{transport}", "/sales", With("auth", new JsonObject { ["apikey"] = sales })));
            specs.Add(($"auth-token-{transport}", "/sales", With("auth", new JsonObject { ["token"] = sales })));
            specs.Add(($"query-apikey-{transport}", "/sales", With("query", new JsonObject { ["apikey"] = sales })));
            specs.Add(($"query-token-{transport}", "/sales", With("query", new JsonObject { ["token"] = sales })));
            specs.Add(($"header-apikey-{transport}", "/sales", With("extraHeaders", new JsonObject { ["apikey"] = sales })));
            specs.Add(($"global-header-main-{transport}", "/", With("extraHeaders", new JsonObject { ["apikey"] = TestGateway.Key })));
            specs.Add(($"header-wrong-{transport}", "/sales", With("extraHeaders", new JsonObject { ["apikey"] = "nope" })));
        }
        var results = await ConnectAllAsync(gw, [.. specs]);

        foreach (var transport in new[] { "polling", "websocket" })
        {
            AssertConnected(results, $"auth-apikey-{transport}", $"auth-token-{transport}", $"query-apikey-{transport}",
                $"query-token-{transport}", $"header-apikey-{transport}", $"global-header-main-{transport}");
            AssertRefused(results, "Invalid API key", $"header-wrong-{transport}");
            Assert.Equal(transport, (string?)results[$"auth-apikey-{transport}"]["transport"]);
        }
    }

    [Fact]
    public async Task ADeletedInstancesTokenNoLongerOpensItsNamespace()
    {
        await using var gw = await TestGateway.StartAsync();
        var sales = await gw.CreateInstanceAsync("sales");
        Assert.Equal(200, (int)(await gw.SendAsync(HttpMethod.Delete, "/instance/delete/sales")).StatusCode);
        var results = await ConnectAllAsync(gw, ("deleted-token", "/sales", new JsonObject { ["auth"] = new JsonObject { ["token"] = sales } }));
        AssertRefused(results, "Invalid API key", "deleted-token");
    }

    /// <summary>Runs connect-matrix.mjs: every attempt at once, one result line each, keyed by label.</summary>
    internal static async Task<Dictionary<string, JsonObject>> ConnectAllAsync(TestGateway gw, params (string Label, string Nsp, JsonObject Options)[] specs)
    {
        var json = new JsonArray([.. specs.Select(s => new JsonObject { ["label"] = s.Label, ["nsp"] = s.Nsp, ["options"] = s.Options.DeepClone() })]);
        var lines = await NodeClient.RunAsync("connect-matrix.mjs", gw.BaseUri.ToString(), json.ToJsonString());
        var results = lines.ToDictionary(l => (string)l["label"]!);
        Assert.Equal(specs.Length, results.Count);
        return results;
    }

    private static void AssertConnected(Dictionary<string, JsonObject> results, params string[] labels)
    {
        foreach (var label in labels)
            Assert.True((bool)results[label]["ok"]!, $"{label} should connect: {results[label].ToJsonString()}");
    }

    private static void AssertRefused(Dictionary<string, JsonObject> results, string message, params string[] labels)
    {
        foreach (var label in labels)
        {
            Assert.False((bool)results[label]["ok"]!, $"{label} should be refused: {results[label].ToJsonString()}");
            Assert.Equal(message, (string?)results[label]["message"]);
        }
    }
}

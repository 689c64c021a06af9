using System.Text.Json.Nodes;

namespace Evolution.Events.Gateway.Tests;

public class InstanceApiTests
{
    [Fact]
    public async Task CreateFetchDeleteRoundTrip()
    {
        await using var gw = await TestGateway.StartAsync();
        using var created = await gw.PostAsync("/instance/create", """{"instanceName":"sales","qrcode":true}""");
        Assert.Equal(201, (int)created.StatusCode);
        var body = (await TestGateway.ReadJsonAsync(created))!;
        Assert.Equal("sales", body["instanceName"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(body["token"]!.GetValue<string>()));
        Assert.True(body["websocket"]!["enabled"]!.GetValue<bool>());
        Assert.Empty(body["websocket"]!["events"]!.AsArray());

        await gw.CreateInstanceAsync("support", "my-token");
        using var list = await gw.SendAsync(HttpMethod.Get, "/instance/fetchInstances");
        Assert.Equal(200, (int)list.StatusCode);
        var names = (await TestGateway.ReadJsonAsync(list))!.AsArray().Select(i => i!["instanceName"]!.GetValue<string>());
        Assert.Equal(["sales", "support"], names.Order());

        using var deleted = await gw.SendAsync(HttpMethod.Delete, "/instance/delete/support");
        Assert.Equal(200, (int)deleted.StatusCode);
        Assert.Equal("my-token", (await TestGateway.ReadJsonAsync(deleted))!["token"]!.GetValue<string>());
        await TestGateway.AssertErrorAsync(await gw.SendAsync(HttpMethod.Delete, "/instance/delete/support"), 404, "support");
        await TestGateway.AssertErrorAsync(await gw.SendAsync(HttpMethod.Get, "/websocket/find/support"), 404, "support");
    }

    [Fact]
    public async Task CreateRefusals()
    {
        await using var gw = await TestGateway.StartAsync();
        var token = await gw.CreateInstanceAsync("sales", "sales-token");
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/instance/create", """{"instanceName":"x"}""", key: null), 401);
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/instance/create", """{"instanceName":"x"}""", key: "wrong"), 401);
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/instance/create", """{"instanceName":"x"}""", key: token), 403);
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/instance/create", """{"instanceName":"sales"}"""), 409, "already exists");
        await TestGateway.AssertErrorAsync(
            await gw.PostAsync("/instance/create", """{"instanceName":"other","token":"sales-token"}"""), 409, "token");
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/instance/create", """{"instanceName":"bad name!"}"""), 400, "instanceName");
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/instance/create", """{"instanceName":"%s"}""".Replace("%s", new string('a', 65))), 400, "instanceName");
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/instance/create", """{"instanceName":5,"token":7}"""), 400, "token: must be a string");
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/instance/create", """{"instanceName":"""), 400, "malformed JSON");
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/instance/create", """[1]"""), 400, "JSON object");
    }

    [Fact]
    public async Task InstanceTokenMayNotListOrDeleteAndOnlyReachesItsOwnSettings()
    {
        await using var gw = await TestGateway.StartAsync();
        var sales = await gw.CreateInstanceAsync("sales");
        await gw.CreateInstanceAsync("support");
        await TestGateway.AssertErrorAsync(await gw.SendAsync(HttpMethod.Get, "/instance/fetchInstances", key: sales), 403);
        await TestGateway.AssertErrorAsync(await gw.SendAsync(HttpMethod.Get, "/instance/fetchInstances", key: "nope"), 401);
        await TestGateway.AssertErrorAsync(await gw.SendAsync(HttpMethod.Delete, "/instance/delete/sales", key: sales), 403);
        await TestGateway.AssertErrorAsync(await gw.SendAsync(HttpMethod.Delete, "/instance/delete/sales", key: null), 401);
        await TestGateway.AssertErrorAsync(await gw.SendAsync(HttpMethod.Get, "/websocket/find/support", key: sales), 403);
        await TestGateway.AssertErrorAsync(
            await gw.PostAsync("/websocket/set/support", """{"websocket":{"enabled":true}}""", key: sales), 403);
        await TestGateway.AssertErrorAsync(await gw.SendAsync(HttpMethod.Get, "/websocket/find/sales", key: "bad"), 401);

        using var own = await gw.PostAsync("/websocket/set/sales", """{"websocket":{"enabled":true,"events":["qrcode.updated"]}}""", key: sales);
        Assert.Equal(201, (int)own.StatusCode);
        using var found = await gw.SendAsync(HttpMethod.Get, "/websocket/find/sales", key: sales);
        Assert.Equal(200, (int)found.StatusCode);
        Assert.Equal("QRCODE_UPDATED", (await TestGateway.ReadJsonAsync(found))!["websocket"]!["events"]![0]!.GetValue<string>());
    }

    [Fact]
    public async Task SettingsAreStoredInConstantCaseAndValidatedPerField()
    {
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateInstanceAsync("sales");
        using var set = await gw.PostAsync("/websocket/set/sales",
            """{"websocket":{"enabled":false,"events":["messages.upsert","QRCODE_UPDATED","group-update","connection-update"]}}""");
        Assert.Equal(201, (int)set.StatusCode);
        var stored = (await TestGateway.ReadJsonAsync(set))!["websocket"]!;
        Assert.False(stored["enabled"]!.GetValue<bool>());
        Assert.Equal(["MESSAGES_UPSERT", "QRCODE_UPDATED", "GROUPS_UPDATE", "CONNECTION_UPDATE"],
            stored["events"]!.AsArray().Select(e => e!.GetValue<string>()));

        using var omitted = await gw.PostAsync("/websocket/set/sales", """{"websocket":{"enabled":true}}""");
        Assert.Equal(201, (int)omitted.StatusCode);
        Assert.Empty((await TestGateway.ReadJsonAsync(omitted))!["websocket"]!["events"]!.AsArray());

        using var bad = await gw.PostAsync("/websocket/set/sales", """{"websocket":{"enabled":"yes","events":["QRCODE_UPDATED",3,"FOO"]}}""");
        Assert.Equal(400, (int)bad.StatusCode);
        var messages = (await TestGateway.ReadJsonAsync(bad))!["messages"]!.AsArray().Select(m => m!.GetValue<string>()).ToList();
        Assert.Equal(3, messages.Count);
        Assert.Contains(messages, m => m.StartsWith("websocket.enabled:", StringComparison.Ordinal));
        Assert.Contains("websocket.events[1]: must be a string (got a number)", messages);
        Assert.Contains("websocket.events[2]: unknown event name 'FOO'", messages);

        await TestGateway.AssertErrorAsync(await gw.PostAsync("/websocket/set/sales", """{"websocket":{"events":[]}}"""), 400, "websocket.enabled: required");
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/websocket/set/sales", """{}"""), 400, "websocket: required");
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/websocket/set/sales", """{"websocket":{"enabled":true,"events":"ALL"}}"""), 400, "websocket.events: must be an array");
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/websocket/set/sales", "{oops"), 400, "malformed JSON");
        await TestGateway.AssertErrorAsync(await gw.PostAsync("/websocket/set/nobody", """{"websocket":{"enabled":true}}"""), 404, "nobody");

        using var find = await gw.SendAsync(HttpMethod.Get, "/websocket/find/sales");
        var current = (await TestGateway.ReadJsonAsync(find))!["websocket"]!;
        Assert.True(current["enabled"]!.GetValue<bool>());
    }

    [Fact]
    public async Task SettingsSurviveARestart()
    {
        var dir = Path.Combine(Path.GetTempPath(), "gw-tests-" + Guid.NewGuid().ToString("N"));
        string token;
        var first = await TestGateway.StartAsync(dir: dir);
        try
        {
            token = await first.CreateInstanceAsync("sales");
            await first.SetSettingsAsync("sales", false, "MESSAGES_UPSERT", "call");
        }
        finally
        {
            await first.StopAsync();
        }
        await using var second = await TestGateway.StartAsync(dir: dir);
        using var found = await second.SendAsync(HttpMethod.Get, "/websocket/find/sales", key: token);
        Assert.Equal(200, (int)found.StatusCode);
        var ws = (await TestGateway.ReadJsonAsync(found))!["websocket"]!;
        Assert.False(ws["enabled"]!.GetValue<bool>());
        Assert.Equal(["MESSAGES_UPSERT", "CALL"], ws["events"]!.AsArray().Select(e => e!.GetValue<string>()));
    }

    [Fact]
    public async Task CorsAllowsTheConfiguredOrigin()
    {
        await using var gw = await TestGateway.StartAsync(new() { ["CORS_ORIGIN"] = "https://app.example" });
        var request = new HttpRequestMessage(HttpMethod.Options, "/instance/fetchInstances");
        request.Headers.Add("Origin", "https://app.example");
        request.Headers.Add("Access-Control-Request-Method", "GET");
        request.Headers.Add("Access-Control-Request-Headers", "apikey");
        using var response = await gw.Http.SendAsync(request);
        Assert.Equal("https://app.example", response.Headers.GetValues("Access-Control-Allow-Origin").Single());
        var other = new HttpRequestMessage(HttpMethod.Get, "/instance/fetchInstances");
        other.Headers.Add("Origin", "https://evil.example");
        other.Headers.Add("apikey", TestGateway.Key);
        using var refused = await gw.Http.SendAsync(other);
        Assert.False(refused.Headers.Contains("Access-Control-Allow-Origin"));
    }
}

using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace Evolution.Events.Gateway.Tests;

/// <summary>
/// A namespace login is authorised with what that login carries (its CONNECT auth, or the query/header of the
/// request that carried the CONNECT), never with a key remembered from the Engine.IO handshake: the session id
/// is in every polling URL (proxy logs), and a stranger who learns it must not open namespaces with its key.
/// </summary>
public class HandshakeKeyTests
{
    [Fact]
    public async Task AStrangerWithTheSessionIdCannotOpenNamespacesWithTheHandshakesKey()
    {
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateInstanceAsync("sales");
        using var owner = new HttpClient { BaseAddress = gw.BaseUri, Timeout = TimeSpan.FromSeconds(20) };
        using var stranger = new HttpClient { BaseAddress = gw.BaseUri, Timeout = TimeSpan.FromSeconds(20) };

        // the owner's handshake carries the global key in the query
        var open = await owner.GetStringAsync($"/socket.io/?EIO=4&transport=polling&apikey={TestGateway.Key}");
        Assert.StartsWith("0", open, StringComparison.Ordinal);
        var sid = (string)JsonNode.Parse(open[1..])!["sid"]!;

        // the stranger, without a key, POSTs CONNECTs for / and /sales on that session
        Assert.Equal("ok", await PostAsync(stranger, $"/socket.io/?EIO=4&transport=polling&sid={sid}", "40\u001e40/sales,"));
        var answers = await PollUntilAsync(stranger, sid, 2);
        Assert.Contains("44{\"message\":\"Invalid API key\"}", answers);
        Assert.Contains("44/sales,{\"message\":\"Invalid API key\"}", answers);

        // the owner's own CONNECT, whose request carries the key as socket.io-client sends it, still opens /
        Assert.Equal("ok", await PostAsync(owner, $"/socket.io/?EIO=4&transport=polling&sid={sid}&apikey={TestGateway.Key}", "40"));
        var connected = await PollUntilAsync(owner, sid, 1);
        Assert.StartsWith("40{\"sid\":", Assert.Single(connected), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AStrangerCannotUseTheSessionsKeyThroughAWebSocketUpgradeEither()
    {
        await using var gw = await TestGateway.StartAsync();
        using var owner = new HttpClient { BaseAddress = gw.BaseUri, Timeout = TimeSpan.FromSeconds(20) };
        var open = await owner.GetStringAsync($"/socket.io/?EIO=4&transport=polling&apikey={TestGateway.Key}");
        var sid = (string)JsonNode.Parse(open[1..])!["sid"]!;

        // the stranger upgrades the session to its own WebSocket (no key) and sends a CONNECT there
        using var ws = await gw.ConnectAsync($"/socket.io/?EIO=4&transport=websocket&sid={sid}");
        await SendTextAsync(ws, "2probe");
        Assert.Equal("3probe", await TestGateway.ReceiveTextAsync(ws));
        await SendTextAsync(ws, "5");
        await SendTextAsync(ws, "40");
        string? answer;
        do
        {
            answer = await TestGateway.ReceiveTextAsync(ws);
        }
        while (answer is "6" or "2");
        Assert.Equal("44{\"message\":\"Invalid API key\"}", answer);
    }

    private static async Task<string> PostAsync(HttpClient client, string path, string body)
    {
        using var content = new StringContent(body, Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("text/plain") { CharSet = "UTF-8" };
        using var response = await client.PostAsync(path, content);
        return await response.Content.ReadAsStringAsync();
    }

    /// <summary>Polls until <paramref name="count"/> Socket.IO packets (type 4) arrived; pings are answered.</summary>
    private static async Task<List<string>> PollUntilAsync(HttpClient client, string sid, int count)
    {
        var packets = new List<string>();
        for (var i = 0; i < 10 && packets.Count < count; i++)
        {
            var payload = await client.GetStringAsync($"/socket.io/?EIO=4&transport=polling&sid={sid}");
            foreach (var packet in payload.Split('\u001e'))
            {
                if (packet.StartsWith('4'))
                    packets.Add(packet);
                else if (packet == "2")
                    await PostAsync(client, $"/socket.io/?EIO=4&transport=polling&sid={sid}", "3");
            }
        }
        Assert.True(packets.Count >= count, $"got {string.Join(" | ", packets)}");
        return packets;
    }

    private static Task SendTextAsync(System.Net.WebSockets.ClientWebSocket ws, string text) =>
        ws.SendAsync(Encoding.UTF8.GetBytes(text), System.Net.WebSockets.WebSocketMessageType.Text, true, CancellationToken.None);
}

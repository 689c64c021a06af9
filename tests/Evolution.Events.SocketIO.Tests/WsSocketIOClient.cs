using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace Evolution.Events.SocketIO.Tests;

/// <summary>
/// A minimal Socket.IO client over <see cref="ClientWebSocket"/> that shows the raw packets: it answers
/// pings, queues every Socket.IO packet it gets (text without the Engine.IO <c>4</c>; binary frames as
/// <c>&lt;binary N&gt;</c>), and can <see cref="Drop"/> its connection abruptly, as a network cut would.
/// </summary>
public sealed class WsSocketIOClient : IAsyncDisposable
{
    private readonly ClientWebSocket _ws = new();
    private readonly Channel<string> _packets = Channel.CreateUnbounded<string>();
    private readonly SemaphoreSlim _send = new(1, 1);
    private Task _reader = Task.CompletedTask;

    public static async Task<WsSocketIOClient> OpenAsync(Uri baseUri)
    {
        var client = new WsSocketIOClient();
        var uri = new UriBuilder(baseUri) { Scheme = "ws", Path = "/socket.io/", Query = "EIO=4&transport=websocket" }.Uri;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await client._ws.ConnectAsync(uri, cts.Token);
        client._reader = client.ReadAsync();
        return client;
    }

    /// <summary>Sends CONNECT for <paramref name="nsp"/> and returns the answer: <c>(true, {sid, pid})</c> or <c>(false, {message, data})</c>.</summary>
    public async Task<(bool Ok, JsonObject Payload)> ConnectAsync(string nsp, JsonObject? auth = null)
    {
        await SendAsync("0" + (nsp == "/" ? "" : nsp + ",") + (auth ?? []).ToJsonString());
        var prefix0 = nsp == "/" ? "0" : "0" + nsp + ",";
        var prefix4 = nsp == "/" ? "4" : "4" + nsp + ",";
        while (true)
        {
            var packet = await NextAsync();
            if (packet.StartsWith(prefix0, StringComparison.Ordinal))
            {
                return (true, JsonNode.Parse(packet[prefix0.Length..])!.AsObject());
            }

            if (packet.StartsWith(prefix4, StringComparison.Ordinal))
            {
                return (false, JsonNode.Parse(packet[prefix4.Length..])!.AsObject());
            }
        }
    }

    /// <summary>Sends a Socket.IO packet (text without the Engine.IO <c>4</c>).</summary>
    public async Task SendAsync(string socketPacket)
    {
        await _send.WaitAsync();
        try
        {
            await _ws.SendAsync(Encoding.UTF8.GetBytes("4" + socketPacket), WebSocketMessageType.Text, true, CancellationToken.None);
        }
        finally
        {
            _send.Release();
        }
    }

    /// <summary>The next Socket.IO packet; throws after the timeout (5 s by default).</summary>
    public async Task<string> NextAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(5));
        try
        {
            return await _packets.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException("no Socket.IO packet came");
        }
        catch (ChannelClosedException)
        {
            throw new InvalidOperationException("the connection closed");
        }
    }

    /// <summary>The next EVENT packet's arguments (event name first), skipping nothing else: fails on another packet.</summary>
    public async Task<JsonArray> NextEventAsync(string nsp = "/", TimeSpan? timeout = null)
    {
        var packet = await NextAsync(timeout);
        var prefix = nsp == "/" ? "2" : "2" + nsp + ",";
        Assert.StartsWith(prefix, packet);
        return JsonNode.Parse(packet[prefix.Length..])!.AsArray();
    }

    /// <summary>True when no packet comes within <paramref name="wait"/>.</summary>
    public async Task<bool> IsQuietAsync(TimeSpan wait)
    {
        using var cts = new CancellationTokenSource(wait);
        try
        {
            await _packets.Reader.WaitToReadAsync(cts.Token);
            return false;
        }
        catch (OperationCanceledException)
        {
            return true;
        }
    }

    /// <summary>Cuts the connection without a close handshake (the server sees a transport close).</summary>
    public void Drop() => _ws.Abort();

    public async ValueTask DisposeAsync()
    {
        _ws.Abort();
        try
        {
            await _reader;
        }
        catch (Exception)
        {
            // aborted
        }

        _ws.Dispose();
        _send.Dispose();
    }

    private async Task ReadAsync()
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                using var message = new MemoryStream();
                WebSocketReceiveResult result;
                do
                {
                    result = await _ws.ReceiveAsync(buffer, CancellationToken.None);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        return;
                    }

                    message.Write(buffer, 0, result.Count);
                }
                while (!result.EndOfMessage);

                if (result.MessageType == WebSocketMessageType.Binary)
                {
                    await _packets.Writer.WriteAsync($"<binary {message.Length}>");
                    continue;
                }

                var text = Encoding.UTF8.GetString(message.GetBuffer(), 0, (int)message.Length);
                if (text == "2")
                {
                    await _send.WaitAsync();
                    try
                    {
                        await _ws.SendAsync("3"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
                    }
                    finally
                    {
                        _send.Release();
                    }
                }
                else if (text.StartsWith('4'))
                {
                    await _packets.Writer.WriteAsync(text[1..]);
                }
            }
        }
        catch (Exception) when (_ws.State is WebSocketState.Aborted or WebSocketState.Closed)
        {
            // dropped
        }
        finally
        {
            _packets.Writer.TryComplete();
        }
    }
}

using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using Evolution.Events.EngineIO;
using Evolution.Events.SocketIO.Protocol;
using Microsoft.Extensions.Logging;

namespace Evolution.Events.SocketIO.Tests;

/// <summary>Tests that measure this process's managed memory: nothing else may run meanwhile.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AttackCollection
{
    public const string Name = "Socket.IO attacks (not parallel: they measure memory)";
}

/// <summary>
/// What a stranger can send must cost little and briefly, and bad input is a clean refusal. Each
/// test is the attack, done by a real client on loopback in bounded loops.
/// </summary>
[Collection(AttackCollection.Name)]
public class AttackTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int MiB = 1024 * 1024;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task A_packet_for_a_namespace_not_joined_closes_the_connection_before_any_attachment_is_read()
    {
        // socket.io's client.ts closes the connection on a packet for a namespace it has not joined; so do we,
        // on the header: the announced 63 attachments of 900 KB are never read, let alone kept
        await using var server = await TestServer.StartAsync(o => o.ConnectTimeout = 60_000);
        const int sessions = 10;
        var clients = new List<ClientWebSocket>();
        try
        {
            for (var i = 0; i < sessions; i++)
            {
                clients.Add(await OpenWebSocketAsync(server));
            }

            Assert.Equal(sessions, server.Io.PendingConnectionCount);
            var header = "4" + BinaryEventHeader(63);
            foreach (var ws in clients)
            {
                await ws.SendAsync(Encoding.UTF8.GetBytes(header), WebSocketMessageType.Text, true, CancellationToken.None);
            }

            foreach (var ws in clients)
            {
                Assert.True(await ReceiveUntilClosedAsync(ws));
            }

            await WaitUntilAsync(() => server.Io.PendingConnectionCount == 0 && server.Io.Engine.SessionCount == 0);
        }
        finally
        {
            foreach (var ws in clients)
            {
                ws.Dispose();
            }
        }
    }

    [Theory]
    [InlineData("42/other,[\"hello\"]")] // an event for a namespace never joined
    [InlineData("41/other,")] // a DISCONNECT for it
    [InlineData("40")] // a second CONNECT to "/", already joined
    public async Task A_packet_in_an_invalid_namespace_state_closes_the_connection_as_socket_io_does(string packet)
    {
        await using var server = await TestServer.StartAsync();
        using var ws = await OpenWebSocketAsync(server);
        await ws.SendAsync("40"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.StartsWith("40{", await ReceiveTextAsync(ws));
        await ws.SendAsync(Encoding.UTF8.GetBytes(packet), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.True(await ReceiveUntilClosedAsync(ws));
    }

    [Fact]
    public async Task A_joined_socket_cannot_reassemble_more_than_MaxAttachmentBytes()
    {
        await using var server = await TestServer.StartAsync(o => o.MaxAttachmentBytes = 4 * MiB);
        using var ws = await OpenWebSocketAsync(server);
        await ws.SendAsync("40"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.StartsWith("40{", await ReceiveTextAsync(ws));

        // a first binary packet warms the buffer pools up (a complete packet with one 900 KB attachment)
        var attachment = new byte[900_000];
        await ws.SendAsync(Encoding.UTF8.GetBytes("4" + BinaryEventHeader(1)), WebSocketMessageType.Text, true, CancellationToken.None);
        await ws.SendAsync(attachment, WebSocketMessageType.Binary, true, CancellationToken.None);
        await Task.Delay(500);
        var before = GC.GetTotalMemory(forceFullCollection: true);
        await ws.SendAsync(Encoding.UTF8.GetBytes("4" + BinaryEventHeader(63)), WebSocketMessageType.Text, true, CancellationToken.None);
        var sent = 0;
        try
        {
            for (; sent < 62; sent++)
            {
                await ws.SendAsync(attachment, WebSocketMessageType.Binary, true, CancellationToken.None);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or IOException)
        {
            // the server closed the connection
        }

        // the server closes it once the attachments pass 4 MiB (the fifth of 900 KB)
        var closed = await ReceiveUntilClosedAsync(ws);
        Assert.True(closed, "the connection stayed open");
        var growth = await WorstGrowthAsync(before);
        output.WriteLine($"joined socket, 4 MiB attachment bound: closed after {sent} attachments, managed memory +{growth / (double)MiB:F1} MiB");
        Assert.True(growth < 20 * MiB, $"managed memory grew by {growth / (double)MiB:F1} MiB");
        await WaitUntilAsync(() => server.Io.Engine.SessionCount == 0);
    }

    [Fact]
    public async Task Duplicate_keys_in_a_CONNECT_are_one_protocol_error_never_an_internal_error()
    {
        var logs = new CapturingLoggerProvider();
        await using var server = await TestServer.StartAsync(logs: logs);
        using var http = new HttpClient { BaseAddress = server.BaseUri, Timeout = Wait };
        var sid = await PollingHandshakeAsync(http);

        // 32 of them in one POST: one session, one log line, no stack trace
        var payload = string.Join('\u001e', Enumerable.Repeat("40{\"a\":1,\"a\":2}", 32));
        using var post = await http.PostAsync(PollPath(sid), new StringContent(payload));
        Assert.Equal(HttpStatusCode.OK, post.StatusCode);
        Assert.False(server.Io.Engine.TryGetSession(sid, out _)); // closed at the first of them
        Assert.Contains("Session ID unknown", await PollTextAsync(http, sid), StringComparison.Ordinal);
        Assert.Empty(server.Observations);
        AssertOneCleanProtocolError(logs, sid);
    }

    [Fact]
    public async Task Duplicate_keys_in_a_binary_packet_over_polling_are_a_protocol_error_not_a_500()
    {
        var logs = new CapturingLoggerProvider();
        await using var server = await TestServer.StartAsync(logs: logs);
        using var http = new HttpClient { BaseAddress = server.BaseUri, Timeout = Wait };
        var sid = await PollingHandshakeAsync(http);
        using (var connect = await http.PostAsync(PollPath(sid), new StringContent("40")))
        {
            Assert.Equal(HttpStatusCode.OK, connect.StatusCode);
        }

        Assert.StartsWith("40{", await PollTextAsync(http, sid));
        var payload = "451-[\"echo\",{\"_placeholder\":true,\"num\":0},{\"a\":1,\"a\":2}]\u001ebAQID";
        using var post = await http.PostAsync(PollPath(sid), new StringContent(payload));
        Assert.Equal(HttpStatusCode.OK, post.StatusCode);
        await WaitUntilAsync(() => !server.Io.Engine.TryGetSession(sid, out var s) || s.ReadyState != EngineReadyState.Open);
        AssertOneCleanProtocolError(logs, sid);
    }

    [Fact]
    public void The_decoder_refuses_duplicate_keys_anywhere()
    {
        Assert.False(SocketPacketDecoder.TryDecode("0{\"a\":1,\"a\":2}", out _, out var error));
        Assert.Equal("invalid JSON payload", error);
        Assert.False(SocketPacketDecoder.TryDecode("2[\"e\",{\"x\":{\"k\":1,\"k\":1}}]", out _, out _));
        Assert.True(SocketPacketDecoder.TryDecode("2[\"e\",{\"x\":{\"k\":1},\"y\":{\"k\":1}}]", out _, out _));
    }

    [Fact]
    public async Task Client_text_in_the_log_is_escaped_and_bounded()
    {
        var logs = new CapturingLoggerProvider();
        await using var server = await TestServer.StartAsync(logs: logs);
        using var ws = await OpenWebSocketAsync(server);
        var nsp = "/evil\r\n2026-01-01 FAKE LOG LINE\u001b[31m" + new string('z', 200);
        await ws.SendAsync(Encoding.UTF8.GetBytes("40" + nsp + ","), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.StartsWith("44/evil", await ReceiveTextAsync(ws)); // CONNECT_ERROR "Invalid namespace"
        await WaitUntilAsync(() => logs.Entries.Any(e => e.Message.Contains("Invalid namespace", StringComparison.Ordinal)));
        var line = logs.Entries.First(e => e.Message.Contains("Invalid namespace", StringComparison.Ordinal)).Message;
        Assert.DoesNotContain('\n', line);
        Assert.DoesNotContain('\r', line);
        Assert.DoesNotContain('\u001b', line);
        Assert.Contains("\\r\\n2026-01-01 FAKE LOG LINE\\u001B", line, StringComparison.Ordinal);
        Assert.True(line.Length < 400, $"log line of {line.Length} characters");
        Assert.Contains("…(+", line, StringComparison.Ordinal); // cut to LogText.DefaultMaxLength
    }

    [Fact]
    public async Task Connections_that_join_nothing_are_bounded_the_oldest_going_first()
    {
        await using var server = await TestServer.StartAsync(o =>
        {
            o.MaxPendingConnections = 3;
            o.ConnectTimeout = 60_000;
        });
        using var http = new HttpClient { BaseAddress = server.BaseUri, Timeout = Wait };
        var sids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            sids.Add(await PollingHandshakeAsync(http));
        }

        Assert.Equal(3, server.Io.PendingConnectionCount);
        Assert.Equal("1", await PollTextAsync(http, sids[0])); // the two oldest were closed
        Assert.Equal("1", await PollTextAsync(http, sids[1]));
        Assert.True(server.Io.Engine.TryGetSession(sids[4], out var newest));
        Assert.Equal(EngineReadyState.Open, newest.ReadyState);

        // joining takes a connection out of the pending ones
        using (var connect = await http.PostAsync(PollPath(sids[4]), new StringContent("40")))
        {
            Assert.Equal(HttpStatusCode.OK, connect.StatusCode);
        }

        Assert.StartsWith("40{", await PollTextAsync(http, sids[4]));
        await WaitUntilAsync(() => server.Io.PendingConnectionCount == 2);
    }

    [Fact]
    public async Task A_connection_that_joins_nothing_is_closed_at_the_connect_timeout()
    {
        await using var server = await TestServer.StartAsync(o => o.ConnectTimeout = 1000);
        using var http = new HttpClient { BaseAddress = server.BaseUri, Timeout = Wait };
        var sid = await PollingHandshakeAsync(http);
        var watch = Stopwatch.StartNew();
        Assert.Equal("1", await PollTextAsync(http, sid)); // a waiting poll ends with the close packet
        Assert.InRange(watch.Elapsed, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(5));
        Assert.Equal(0, server.Io.PendingConnectionCount);
    }

    internal static string BinaryEventHeader(int attachments) =>
        $"5{attachments}-[\"up\"," + string.Join(',', Enumerable.Range(0, attachments).Select(i => $"{{\"_placeholder\":true,\"num\":{i}}}")) + "]";

    private static void AssertOneCleanProtocolError(CapturingLoggerProvider logs, string sid)
    {
        var errors = logs.Entries.Where(e => e.EventId == 2004 && e.Message.Contains(sid, StringComparison.Ordinal)).ToList();
        Assert.Single(errors);
        Assert.Contains("invalid JSON payload", errors[0].Message, StringComparison.Ordinal);
        Assert.DoesNotContain(logs.Entries, e => e.Exception is not null);
        Assert.DoesNotContain(logs.Entries, e => e.Message.Contains("Internal server error", StringComparison.Ordinal));
    }

    internal static string PollPath(string sid) => "/socket.io/?EIO=4&transport=polling&sid=" + Uri.EscapeDataString(sid);

    internal static async Task<string> PollingHandshakeAsync(HttpClient http)
    {
        var body = await http.GetStringAsync("/socket.io/?EIO=4&transport=polling");
        Assert.StartsWith("0{", body);
        return JsonNode.Parse(body[1..])!["sid"]!.GetValue<string>();
    }

    internal static async Task<string> PollTextAsync(HttpClient http, string sid)
    {
        using var response = await http.GetAsync(PollPath(sid));
        return await response.Content.ReadAsStringAsync();
    }

    internal static async Task<ClientWebSocket> OpenWebSocketAsync(TestServer server)
    {
        var ws = new ClientWebSocket();
        await ws.ConnectAsync(new Uri($"ws://{server.BaseUri.Authority}/socket.io/?EIO=4&transport=websocket"), CancellationToken.None);
        Assert.StartsWith("0{", await ReceiveTextAsync(ws));
        return ws;
    }

    internal static async Task<string> ReceiveTextAsync(ClientWebSocket ws)
    {
        using var timeout = new CancellationTokenSource(Wait);
        var buffer = new byte[64 * 1024];
        using var text = new MemoryStream();
        while (true)
        {
            var result = await ws.ReceiveAsync(buffer, timeout.Token);
            Assert.NotEqual(WebSocketMessageType.Close, result.MessageType);
            text.Write(buffer, 0, result.Count);
            if (result.EndOfMessage)
            {
                var message = Encoding.UTF8.GetString(text.ToArray());
                if (message == "2")
                {
                    await ws.SendAsync("3"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
                    text.SetLength(0);
                    continue;
                }

                return message;
            }
        }
    }

    private static async Task<bool> ReceiveUntilClosedAsync(ClientWebSocket ws)
    {
        using var timeout = new CancellationTokenSource(Wait);
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var result = await ws.ReceiveAsync(buffer, timeout.Token);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return true;
                }
            }
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        catch (Exception ex) when (ex is WebSocketException or IOException)
        {
            return true;
        }
    }

    /// <summary>The server reads as the bytes arrive: the worst growth over a few measurements.</summary>
    internal static async Task<long> WorstGrowthAsync(long before)
    {
        var growth = 0L;
        for (var round = 0; round < 3; round++)
        {
            await Task.Delay(700);
            growth = Math.Max(growth, GC.GetTotalMemory(forceFullCollection: true) - before);
        }

        return growth;
    }

    internal static async Task WaitUntilAsync(Func<bool> condition)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            if (watch.Elapsed > Wait)
            {
                throw new TimeoutException("condition not met in time");
            }

            await Task.Delay(20);
        }
    }
}

/// <summary>Keeps every log entry (formatted), for tests about what the server logs.</summary>
public sealed class CapturingLoggerProvider : ILoggerProvider
{
    public sealed record Entry(string Category, int EventId, LogLevel Level, string Message, Exception? Exception);

    public ConcurrentQueue<Entry> Entries { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Capturer(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Capturer(CapturingLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner.Entries.Enqueue(new Entry(category, eventId.Id, logLevel, formatter(state, exception), exception));
    }
}

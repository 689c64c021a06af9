// The ceiling of the fan-out benchmark: the same URL shapes as the gateway, none of its features.
// Two ways to serve the WebSocket (CEILING_UPGRADE):
//   raw (default): a Kestrel connection middleware (ListenOptions.Use) peeks at the request head on the raw
//     transport; `GET /socket.io/?…transport=websocket` with `Upgrade: websocket` is answered there (101, frames
//     read from and written into the connection's own pipes, flushes of at most 64 KiB), so no HTTP request,
//     headers or HttpContext stay alive for the socket's life. Anything else (the producer's POSTs, polling GETs)
//     is handed to Kestrel's HTTP/1.1 untouched.
//   http: the standard upgrade (IHttpUpgradeFeature) of an HTTP request, writing into the upgraded stream.
// Both send a fake Engine.IO open packet, answer `40/ns,…` with `40/ns,{"sid":"x"}` and put the socket into that
// namespace. POST /instance/create -> 201. POST /webhook pre-encodes one `42/ns,["event",{envelope}]` WebSocket frame
// per event and hands each socket of the namespace all of its frames of that POST at once; a per-socket writer
// copies whatever is queued (up to 64 KiB) into one write. No auth, no heartbeats, no limits.
//
// Env: SERVER_PORT (8091), CEILING_UPGRADE (raw | http), CEILING_INLINE=0 turns off Kestrel's inline scheduling
// of socket continuations.
using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;

var port = int.Parse(Environment.GetEnvironmentVariable("SERVER_PORT") ?? "8091", System.Globalization.CultureInfo.InvariantCulture);
var inline = Environment.GetEnvironmentVariable("CEILING_INLINE") != "0";
var mode = (Environment.GetEnvironmentVariable("CEILING_UPGRADE") ?? "raw").Trim().ToLowerInvariant();
if (mode is not ("raw" or "http"))
{
    Console.Error.WriteLine($"CEILING_UPGRADE must be raw or http (got '{mode}')");
    return 2;
}
var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
var hub = new Hub();
builder.WebHost.ConfigureKestrel(k =>
{
    k.Limits.MaxRequestBodySize = 64 * 1024 * 1024;
    k.Limits.MaxConcurrentConnections = null;
    k.Limits.MaxConcurrentUpgradedConnections = null;
    k.ListenAnyIP(port, lo =>
    {
        if (mode == "raw") lo.Use(next => conn => hub.RawConnectionAsync(conn, next));
    });
});
builder.Services.Configure<SocketTransportOptions>(s => s.UnsafePreferInlineScheduling = inline);
var app = builder.Build();

app.MapPost("/instance/create", () => Results.StatusCode(201));
app.MapPost("/webhook", (Delegate)hub.WebhookAsync);
app.MapPost("/webhook/{evt}", (Delegate)hub.WebhookAsync);
app.MapGet("/socket.io/", hub.SocketAsync);
Console.WriteLine($"ceiling listening on 0.0.0.0:{port} (upgrade {mode}, inline scheduling {inline})");
app.Run();
return 0;

internal sealed class Hub
{
    private static readonly byte[] Open = Frame(Encoding.UTF8.GetBytes("0{\"sid\":\"x\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}"));
    private readonly ConcurrentDictionary<string, Group> _groups = new(StringComparer.Ordinal);

    private sealed class Group
    {
        private readonly Lock _gate = new();
        public IClient[] Members = [];
        public void Add(IClient c) { lock (_gate) Members = [.. Members, c]; }
        public void Remove(IClient c) { lock (_gate) Members = Members.Where(m => m != c).ToArray(); }
    }

    /// <summary>Server frame: FIN + text, unmasked.</summary>
    private static byte[] Frame(ReadOnlySpan<byte> payload)
    {
        var h = payload.Length < 126 ? 2 : payload.Length <= ushort.MaxValue ? 4 : 10;
        var f = new byte[h + payload.Length];
        f[0] = 0x81;
        if (h == 2) f[1] = (byte)payload.Length;
        else if (h == 4) { f[1] = 126; f[2] = (byte)(payload.Length >> 8); f[3] = (byte)payload.Length; }
        else { f[1] = 127; System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(f.AsSpan(2), (ulong)payload.Length); }
        payload.CopyTo(f.AsSpan(h));
        return f;
    }

    public async Task WebhookAsync(HttpContext ctx)
    {
        using var doc = await JsonDocument.ParseAsync(ctx.Request.Body);
        var items = doc.RootElement.ValueKind == JsonValueKind.Array ? doc.RootElement.EnumerateArray().ToList() : [doc.RootElement];
        var byNs = new Dictionary<string, List<byte[]>>(StringComparer.Ordinal);
        var buf = new ArrayBufferWriter<byte>(1024);
        foreach (var it in items)
        {
            var evt = it.GetProperty("event").GetString()!.ToLowerInvariant().Replace('_', '.');
            var inst = it.GetProperty("instance").GetString()!;
            buf.ResetWrittenCount();
            buf.Write(Encoding.UTF8.GetBytes($"42/{inst},[\"{evt}\","));
            using (var w = new Utf8JsonWriter(buf))
            {
                w.WriteStartObject();
                w.WriteString("event", evt);
                w.WriteString("instance", inst);
                w.WritePropertyName("data");
                if (it.TryGetProperty("data", out var data)) data.WriteTo(w); else w.WriteNullValue();
                Copy(w, it, "server_url");
                Copy(w, it, "date_time");
                Copy(w, it, "sender");
                w.WriteEndObject();
            }
            buf.Write("]"u8);
            if (!byNs.TryGetValue(inst, out var list)) byNs[inst] = list = [];
            list.Add(Frame(buf.WrittenSpan));
        }
        foreach (var (ns, frames) in byNs)
        {
            if (!_groups.TryGetValue(ns, out var g)) continue;
            foreach (var c in g.Members) c.Enqueue(frames);
        }
        ctx.Response.StatusCode = 202;
    }

    private static void Copy(Utf8JsonWriter w, JsonElement it, string name)
    {
        w.WritePropertyName(name);
        if (it.TryGetProperty(name, out var v)) v.WriteTo(w); else w.WriteNullValue();
    }

    /// <summary>
    /// Connection middleware: a WebSocket upgrade of /socket.io/ is served here on the raw transport; any other
    /// request goes to HTTP untouched (nothing consumed).
    /// </summary>
    public async Task RawConnectionAsync(ConnectionContext conn, ConnectionDelegate next)
    {
        var input = conn.Transport.Input;
        string? key = null;
        long headLength = 0;
        for (var guard = 0; guard < 1000; guard++)
        {
            var r = await input.ReadAsync(conn.ConnectionClosed);
            var buf = r.Buffer;
            var verdict = PeekHead(buf, out key, out headLength);
            if (verdict == Head.Incomplete && !r.IsCompleted && buf.Length < 16 * 1024)
            {
                input.AdvanceTo(buf.Start, buf.End); // nothing consumed, all examined: wait for more
                continue;
            }
            if (verdict != Head.WebSocket)
            {
                input.AdvanceTo(buf.Start); // nothing consumed or examined: HTTP reads the same bytes again
                await next(conn);
                return;
            }
            input.AdvanceTo(buf.GetPosition(headLength));
            break;
        }
        if (key is null) return;
        var output = conn.Transport.Output;
        output.Write(Encoding.ASCII.GetBytes("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " + Accept(key) + "\r\n\r\n"));
        output.Write(Open);
        await output.FlushAsync();
        var client = new RawClient(output);
        Group? group = null;
        try
        {
            for (var guard = 0L; guard < long.MaxValue; guard++)
            {
                var r = await input.ReadAsync(conn.ConnectionClosed);
                var buf = r.Buffer;
                var closed = false;
                for (var n = 0; n < 10_000 && TryFrame(ref buf, out var op, out var payload); n++)
                {
                    if (op == 0x8) { closed = true; break; }
                    if (op == 0x1 && group is null) group = Join(payload, client);
                }
                input.AdvanceTo(buf.Start, buf.End);
                if (closed || r.IsCompleted) break;
            }
        }
        catch (IOException) { }
        catch (OperationCanceledException) { }
        finally
        {
            group?.Remove(client);
            await client.CloseAsync();
        }
    }

    private enum Head { Incomplete, WebSocket, Other }

    /// <summary>The request head: a WebSocket upgrade of /socket.io/ (with its key), something else, or not all there yet.</summary>
    private static Head PeekHead(ReadOnlySequence<byte> buf, out string? key, out long headLength)
    {
        key = null;
        headLength = 0;
        var first = buf.Slice(0, Math.Min(buf.Length, 15));
        if (!SequenceStartsWith(first, "GET /socket.io/"u8)) return first.Length < 15 && IsPrefix(first, "GET /socket.io/"u8) ? Head.Incomplete : Head.Other;
        var end = IndexOf(buf, "\r\n\r\n"u8);
        if (end < 0) return Head.Incomplete;
        headLength = end + 4;
        var head = Encoding.ASCII.GetString(buf.Slice(0, end));
        var lines = head.Split("\r\n");
        if (!lines[0].Contains("transport=websocket", StringComparison.Ordinal)) return Head.Other;
        var upgrade = false;
        foreach (var line in lines.AsSpan(1))
        {
            var colon = line.IndexOf(':');
            if (colon <= 0) continue;
            var name = line.AsSpan(0, colon).Trim();
            var value = line.AsSpan(colon + 1).Trim();
            if (name.Equals("Upgrade", StringComparison.OrdinalIgnoreCase) && value.Equals("websocket", StringComparison.OrdinalIgnoreCase)) upgrade = true;
            else if (name.Equals("Sec-WebSocket-Key", StringComparison.OrdinalIgnoreCase)) key = value.ToString();
        }
        return upgrade && key is not null ? Head.WebSocket : Head.Other;
    }

    private static bool SequenceStartsWith(ReadOnlySequence<byte> s, ReadOnlySpan<byte> prefix) => s.Length >= prefix.Length && IsPrefix(s.Slice(0, prefix.Length), prefix);
    private static bool IsPrefix(ReadOnlySequence<byte> s, ReadOnlySpan<byte> of)
    {
        Span<byte> tmp = stackalloc byte[(int)s.Length];
        s.CopyTo(tmp);
        return of.StartsWith(tmp);
    }

    private static long IndexOf(ReadOnlySequence<byte> s, ReadOnlySpan<byte> what)
    {
        var reader = new SequenceReader<byte>(s);
        return reader.TryReadTo(out ReadOnlySequence<byte> before, what, advancePastDelimiter: false) ? before.Length : -1;
    }

    /// <summary>One client frame (masked) off the front of the buffer.</summary>
    private static bool TryFrame(ref ReadOnlySequence<byte> buf, out int op, out byte[] payload)
    {
        op = 0;
        payload = [];
        if (buf.Length < 2) return false;
        Span<byte> h = stackalloc byte[14];
        var hn = (int)Math.Min(buf.Length, 14);
        buf.Slice(0, hn).CopyTo(h);
        long len = h[1] & 0x7F;
        var hl = 2;
        if (len == 126) { if (hn < 4) return false; len = (h[2] << 8) | h[3]; hl = 4; }
        else if (len == 127) { op = 0x8; buf = buf.Slice(buf.End); return true; } // nothing this big is expected from a client
        var masked = (h[1] & 0x80) != 0;
        var mh = hl + (masked ? 4 : 0);
        if (buf.Length < mh + len) return false;
        if (hn < mh) return false;
        payload = buf.Slice(mh, len).ToArray();
        if (masked)
            for (var i = 0; i < payload.Length; i++) payload[i] ^= h[hl + (i & 3)];
        op = h[0] & 0x0F;
        buf = buf.Slice(mh + len);
        return true;
    }

    /// <summary>"40/ns,{…}" -> joins ns and answers; anything else (pongs): null.</summary>
    private Group? Join(byte[] msg, IClient client)
    {
        if (msg.Length < 2 || msg[0] != '4' || msg[1] != '0') return null;
        var s = Encoding.UTF8.GetString(msg);
        var ns = s.Length > 2 && s[2] == '/' ? s[3..(s.IndexOf(',') is var i and > 0 ? i : s.Length)] : "";
        var group = _groups.GetOrAdd(ns, _ => new Group());
        group.Add(client);
        client.Enqueue([Frame(Encoding.UTF8.GetBytes(ns.Length > 0 ? $"40/{ns},{{\"sid\":\"x\"}}" : "40{\"sid\":\"x\"}"))]);
        return group;
    }

    private static string Accept(string key)
    {
#pragma warning disable CA5350 // SHA-1 is what RFC 6455 prescribes for Sec-WebSocket-Accept
        return Convert.ToBase64String(System.Security.Cryptography.SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC11B85")));
#pragma warning restore CA5350
    }

    public async Task SocketAsync(HttpContext ctx)
    {
        var upgrade = ctx.Features.Get<IHttpUpgradeFeature>();
        if (upgrade is null || !upgrade.IsUpgradableRequest || ctx.Request.Query["transport"] != "websocket")
        {
            ctx.Response.StatusCode = 400;
            return;
        }
        var accept = Accept(ctx.Request.Headers["Sec-WebSocket-Key"].ToString());
        ctx.Response.Headers.Connection = "Upgrade";
        ctx.Response.Headers.Upgrade = "websocket";
        ctx.Response.Headers["Sec-WebSocket-Accept"] = accept;
        var stream = await upgrade.UpgradeAsync();
        var client = new Client(stream);
        client.Enqueue([Open]);
        Group? group = null;
        try
        {
            await foreach (var msg in client.ReadMessagesAsync(ctx.RequestAborted))
            {
                if (group is null) group = Join(msg, client);
            }
        }
        catch (IOException) { }
        catch (OperationCanceledException) { }
        finally
        {
            group?.Remove(client);
            client.Close();
        }
    }
}

internal interface IClient
{
    void Enqueue(List<byte[]> frames);
}

/// <summary>
/// A socket served on the raw transport: a frame queue and one writer at a time that copies it into the
/// connection's output pipe, flushing every 64 KiB and at the end.
/// </summary>
internal sealed class RawClient(PipeWriter output) : IClient
{
    private const int Chunk = 64 * 1024;
    private readonly Lock _gate = new();
    private List<byte[]> _queue = [];
    private List<byte[]> _spare = [];
    private bool _writing, _closed;
    private Task _loop = Task.CompletedTask;

    public void Enqueue(List<byte[]> frames)
    {
        lock (_gate)
        {
            if (_closed) return;
            _queue.AddRange(frames);
            if (_writing) return;
            _writing = true;
        }
        var loop = WriteLoopAsync(); // runs here until a flush has to wait (a full socket buffer)
        lock (_gate) _loop = loop;
    }

    private async Task WriteLoopAsync()
    {
        for (var iter = 0; iter < int.MaxValue; iter++)
        {
            List<byte[]> batch;
            lock (_gate)
            {
                if (_queue.Count == 0 || _closed) { _writing = false; return; }
                batch = _queue;
                _queue = _spare;
                _spare = batch;
            }
            try
            {
                var unflushed = 0;
                foreach (var f in batch)
                {
                    output.Write(f);
                    unflushed += f.Length;
                    if (unflushed >= Chunk)
                    {
                        var fr = await output.FlushAsync();
                        unflushed = 0;
                        if (fr.IsCompleted || fr.IsCanceled) throw new IOException("connection closed");
                    }
                }
                if (unflushed > 0)
                {
                    var fr = await output.FlushAsync();
                    if (fr.IsCompleted || fr.IsCanceled) throw new IOException("connection closed");
                }
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
            {
                lock (_gate) { _closed = true; _writing = false; }
                return;
            }
            finally
            {
                batch.Clear();
            }
        }
    }

    /// <summary>No more writes; waits for the one in progress (the pipe is completed after the middleware returns).</summary>
    public async Task CloseAsync()
    {
        Task loop;
        lock (_gate) { _closed = true; loop = _loop; }
        try { await loop; }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException) { }
    }
}

/// <summary>One upgraded socket: a frame queue and one writer at a time that coalesces it into ≤64 KiB writes.</summary>
internal sealed class Client(Stream stream) : IClient
{
    private const int Chunk = 64 * 1024;
    private readonly Lock _gate = new();
    private List<byte[]> _queue = [];
    private List<byte[]> _spare = [];
    private bool _writing, _closed;

    public void Enqueue(List<byte[]> frames)
    {
        lock (_gate)
        {
            if (_closed) return;
            _queue.AddRange(frames);
            if (_writing) return;
            _writing = true;
        }
        _ = WriteLoopAsync();
    }

    private async Task WriteLoopAsync()
    {
        for (var iter = 0; iter < int.MaxValue; iter++)
        {
            List<byte[]> batch;
            lock (_gate)
            {
                if (_queue.Count == 0 || _closed) { _writing = false; return; }
                batch = _queue;
                _queue = _spare;
                _spare = batch;
            }
            var buf = ArrayPool<byte>.Shared.Rent(Chunk);
            try
            {
                var n = 0;
                foreach (var f in batch)
                {
                    if (n + f.Length > Chunk && n > 0) { await stream.WriteAsync(buf.AsMemory(0, n)); n = 0; }
                    if (f.Length > Chunk) { await stream.WriteAsync(f); continue; }
                    f.CopyTo(buf, n);
                    n += f.Length;
                }
                if (n > 0) await stream.WriteAsync(buf.AsMemory(0, n));
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
            {
                lock (_gate) { _closed = true; _writing = false; }
                return;
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buf);
                batch.Clear();
            }
        }
    }

    /// <summary>Client frames (masked); a buffer is rented only while there is something to read.</summary>
    public async IAsyncEnumerable<byte[]> ReadMessagesAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        var pending = new List<byte>();
        for (var iter = 0; iter < int.MaxValue; iter++)
        {
            _ = await stream.ReadAsync(Memory<byte>.Empty, ct); // zero-byte read: wait for data without a buffer
            var buf = ArrayPool<byte>.Shared.Rent(4096);
            int n;
            try
            {
                n = await stream.ReadAsync(buf, ct);
                if (n == 0) yield break;
                pending.AddRange(buf.AsSpan(0, n));
            }
            finally { ArrayPool<byte>.Shared.Return(buf); }
            for (var guard = 0; guard < 10_000; guard++)
            {
                if (pending.Count < 2) break;
                var b1 = pending[1];
                long len = b1 & 0x7F;
                var h = 2;
                if (len == 126) { if (pending.Count < 4) break; len = (pending[2] << 8) | pending[3]; h = 4; }
                else if (len == 127) yield break; // nothing this big is expected from a client
                var masked = (b1 & 0x80) != 0;
                var mh = h + (masked ? 4 : 0);
                if (pending.Count < mh + len) break;
                var payload = new byte[len];
                for (var i = 0; i < len; i++) payload[i] = (byte)(pending[mh + i] ^ (masked ? pending[h + (i & 3)] : 0));
                var op = pending[0] & 0x0F;
                pending.RemoveRange(0, mh + (int)len);
                if (op == 0x8) yield break;
                if (op == 0x1) yield return payload;
            }
        }
    }

    public void Close()
    {
        lock (_gate) _closed = true;
    }
}

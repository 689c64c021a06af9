// The ceiling of the fan-out benchmark: the same URL shapes as the gateway, none of its features.
// GET /socket.io/?EIO=4&transport=websocket upgrades (raw, through IHttpUpgradeFeature), sends a fake Engine.IO
// open packet, answers `40/ns,…` with `40/ns,{"sid":"x"}` and puts the socket into that namespace.
// POST /instance/create -> 201. POST /webhook pre-encodes one `42/ns,["event",{envelope}]` WebSocket frame per
// event and hands each socket of the namespace all of its frames of that POST at once; a per-socket writer
// copies whatever is queued (up to 64 KiB) into one write. No auth, no heartbeats, no limits.
//
// Env: SERVER_PORT (8091). CEILING_INLINE=0 turns off Kestrel's inline scheduling of socket continuations.
using System.Buffers;
using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;

var port = int.Parse(Environment.GetEnvironmentVariable("SERVER_PORT") ?? "8091", System.Globalization.CultureInfo.InvariantCulture);
var inline = Environment.GetEnvironmentVariable("CEILING_INLINE") != "0";
var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
builder.WebHost.UseUrls($"http://0.0.0.0:{port}");
builder.WebHost.ConfigureKestrel(k => { k.Limits.MaxRequestBodySize = 64 * 1024 * 1024; k.Limits.MaxConcurrentConnections = null; k.Limits.MaxConcurrentUpgradedConnections = null; });
builder.Services.Configure<SocketTransportOptions>(s => s.UnsafePreferInlineScheduling = inline);
var app = builder.Build();
var hub = new Hub();

app.MapPost("/instance/create", () => Results.StatusCode(201));
app.MapPost("/webhook", (Delegate)hub.WebhookAsync);
app.MapPost("/webhook/{evt}", (Delegate)hub.WebhookAsync);
app.MapGet("/socket.io/", hub.SocketAsync);
Console.WriteLine($"ceiling listening on 0.0.0.0:{port} (inline scheduling {inline})");
app.Run();

internal sealed class Hub
{
    private static readonly byte[] Open = Frame(Encoding.UTF8.GetBytes("0{\"sid\":\"x\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}"));
    private readonly ConcurrentDictionary<string, Group> _groups = new(StringComparer.Ordinal);

    private sealed class Group
    {
        private readonly Lock _gate = new();
        public Client[] Members = [];
        public void Add(Client c) { lock (_gate) Members = [.. Members, c]; }
        public void Remove(Client c) { lock (_gate) Members = Members.Where(m => m != c).ToArray(); }
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

    public async Task SocketAsync(HttpContext ctx)
    {
        var upgrade = ctx.Features.Get<IHttpUpgradeFeature>();
        if (upgrade is null || !upgrade.IsUpgradableRequest || ctx.Request.Query["transport"] != "websocket")
        {
            ctx.Response.StatusCode = 400;
            return;
        }
        var key = ctx.Request.Headers["Sec-WebSocket-Key"].ToString();
#pragma warning disable CA5350 // SHA-1 is what RFC 6455 prescribes for Sec-WebSocket-Accept
        var accept = Convert.ToBase64String(System.Security.Cryptography.SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC11B85")));
#pragma warning restore CA5350
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
                // "40/ns,{…}" -> join ns; "3" (pong) and anything else: ignored.
                if (msg.Length >= 2 && msg[0] == '4' && msg[1] == '0' && group is null)
                {
                    var s = Encoding.UTF8.GetString(msg);
                    var ns = s.Length > 2 && s[2] == '/' ? s[3..(s.IndexOf(',') is var i and > 0 ? i : s.Length)] : "";
                    group = _groups.GetOrAdd(ns, _ => new Group());
                    group.Add(client);
                    client.Enqueue([Frame(Encoding.UTF8.GetBytes(ns.Length > 0 ? $"40/{ns},{{\"sid\":\"x\"}}" : "40{\"sid\":\"x\"}"))]);
                }
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

/// <summary>One upgraded socket: a frame queue and one writer at a time that coalesces it into ≤64 KiB writes.</summary>
internal sealed class Client(Stream stream)
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

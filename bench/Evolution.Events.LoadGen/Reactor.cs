using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;

namespace Evolution.Events.LoadGen;

internal enum ConnState : byte { Idle, Connecting, Upgrading, AwaitOpen, NsConnecting, Ready, Failed, Closed }

/// <summary>One Socket.IO client: a raw non-blocking TCP socket and its protocol state. Owned by one reactor thread.</summary>
internal sealed class Conn
{
    public int Fd = -1;
    public int Index;
    public int Ns;
    public int Node;          // index into ReactorConfig.Ports
    public uint SrcAddr;
    public ConnState State;
    public byte Attempts;
    public long RetryAt;
    public byte[]? Carry;
    public int CarryLen;
    public byte[]? Msg;       // a fragmented WebSocket message being put together
    public int MsgLen;
    public ulong[]? Seen;     // one bit per namespace-local sequence number
    public int LastSeq = -1;
}

/// <summary>What every reactor shares: the target, the key, the namespaces and their event counts.</summary>
internal sealed class ReactorConfig
{
    public required uint DstAddr { get; init; }
    public required int Port { get; init; }
    public int[] Ports { get; init; } = [];  // a cluster's nodes (same address); empty: Port only
    public required string ApiKey { get; init; }
    public required string[] Namespaces { get; init; }
    public required int[] EventsPerNs { get; init; }
    public required int Phases { get; init; }
    public int MaxPendingHandshakes { get; init; } = 256;
    public int CoalesceMicros { get; init; }
    public int[] ReadyPerNs { get; init; } = [];
    public bool EventLog { get; init; }      // LOADGEN_EVENT_LOG: per-event latency and ping times (see Program)
    public ConcurrentQueue<string> Errors { get; } = new();

    public void Error(string message)
    {
        if (Errors.Count < 20) Errors.Enqueue(message);
    }
}

/// <summary>
/// An epoll loop over many raw sockets (level-triggered). Each wake-up reads up to 256 KiB per ready
/// socket and parses every complete WebSocket frame in it by hand (server frames are unmasked), answers
/// Engine.IO pings, completes the handshake (HTTP upgrade → Engine.IO open → Socket.IO CONNECT) and
/// records every delivered event: its sequence number (losses, duplicates, order) and its latency from the
/// producer's timestamp. Client frames are masked. No allocation per message.
/// </summary>
internal sealed unsafe class Reactor
{
    private static readonly byte[] SeqLit = "\"seq\":"u8.ToArray();
    private static readonly byte[] PhLit = ",\"ph\":"u8.ToArray();
    private static readonly byte[] SentLit = ",\"sentAt\":"u8.ToArray();
    private static readonly byte[] PhAny = "\"ph\":"u8.ToArray();
    private static readonly byte[] SentAny = "\"sentAt\":"u8.ToArray();
    private static readonly long TicksPerMicro = Math.Max(1, Stopwatch.Frequency / 1_000_000);

    private readonly ReactorConfig _cfg;
    private readonly List<Conn> _conns = [];
    private readonly byte[][] _connectPackets;
    private readonly byte[] _upgrade;
    private readonly byte[] _readBuf = GC.AllocateUninitializedArray<byte>(256 * 1024, pinned: true);
    private readonly byte[] _sendBuf = GC.AllocateUninitializedArray<byte>(64 * 1024, pinned: true);
    private readonly Queue<Conn> _retry = new();
    private readonly Thread _thread;
    private readonly int _ep;
    private int _nextToOpen, _pending;
    private volatile int _openLimit;
    private volatile bool _stop;
    private uint _rng;

    // Read by the main thread while the loop runs (single writer each).
    public long Ready, Failed, Closed, Delivered;
    public long Dups, OutOfOrder, Unparsed, PingsAnswered, ShortSends, Reads, Wakeups;
    public long FirstConnectTs, LastReadyTs;
    public readonly long[] DeliveredByPhase;
    public readonly long[] LastDeliveryTs;
    public readonly Histogram[] Latency;

    // with ReactorConfig.EventLog, by event sequence (one namespace's): sent at, deliveries, summed and worst latency (µs);
    // and when each Engine.IO ping came (bounded)
    public readonly long[]? EvSent, EvCount, EvSumMicros, EvMaxMicros;
    public readonly List<long>? PingTs;

    public Reactor(ReactorConfig cfg, int id)
    {
        _cfg = cfg;
        _rng = (uint)(0x9E3779B9 * (id + 1)) | 1;
        _connectPackets = cfg.Namespaces.Select(ns => Encoding.UTF8.GetBytes($"40/{ns},{{\"apikey\":\"{cfg.ApiKey}\"}}")).ToArray();
        _upgrade = Encoding.ASCII.GetBytes(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n" +
            $"Host: 127.0.0.1:{cfg.Port}\r\n" +
            "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
        DeliveredByPhase = new long[cfg.Phases];
        LastDeliveryTs = new long[cfg.Phases];
        Latency = Enumerable.Range(0, cfg.Phases).Select(_ => new Histogram()).ToArray();
        if (cfg.EventLog)
        {
            var n = cfg.EventsPerNs.Max() + 1;
            (EvSent, EvCount, EvSumMicros, EvMaxMicros, PingTs) = (new long[n], new long[n], new long[n], new long[n], new List<long>());
        }
        _ep = Native.epoll_create1(Native.EPOLL_CLOEXEC);
        if (_ep < 0) throw new InvalidOperationException($"epoll_create1 failed: errno {Native.Errno}");
        _thread = new Thread(Loop) { IsBackground = true, Name = $"reactor-{id}" };
    }

    public int Assigned => _conns.Count;

    public void Add(int ns, uint srcAddr, int node = 0) =>
        _conns.Add(new Conn { Index = _conns.Count, Ns = ns, Node = node, SrcAddr = srcAddr, Seen = new ulong[(_cfg.EventsPerNs[ns] + 63) / 64 + 1] });

    public void Start() => _thread.Start();

    /// <summary>Opens (in the loop thread, at most MaxPendingHandshakes at a time) the first <paramref name="count"/> clients.</summary>
    public void OpenUpTo(int count) => _openLimit = Math.Min(count, _conns.Count);

    public void Stop()
    {
        _stop = true;
        _thread.Join();
        var linger = new Native.Linger { OnOff = 1, Seconds = 0 }; // RST on close: no TIME_WAIT left behind
        foreach (var c in _conns)
        {
            if (c.Fd < 0) continue;
            Native.setsockopt(c.Fd, Native.SOL_SOCKET, Native.SO_LINGER, &linger, (uint)sizeof(Native.Linger));
            Native.close(c.Fd);
            c.Fd = -1;
        }
        Native.close(_ep);
    }

    private void Loop()
    {
        const int MaxEvents = 512;
        var events = stackalloc Native.EpollEvent[MaxEvents];
        for (long iter = 0; !_stop && iter < long.MaxValue; iter++)
        {
            OpenMore();
            var n = Native.epoll_wait(_ep, events, MaxEvents, _pending > 0 || _retry.Count > 0 ? 5 : 20);
            if (n < 0)
            {
                if (Native.Errno == Native.EINTR) continue;
                _cfg.Error($"epoll_wait failed: errno {Native.Errno}");
                return;
            }
            Wakeups++;
            for (var i = 0; i < n; i++)
            {
                var c = _conns[(int)events[i].Data];
                var ev = events[i].Events;
                if (c.State == ConnState.Connecting)
                {
                    if ((ev & (Native.EPOLLOUT | Native.EPOLLERR | Native.EPOLLHUP)) != 0) OnConnected(c);
                    continue;
                }
                if ((ev & (Native.EPOLLIN | Native.EPOLLERR | Native.EPOLLHUP | Native.EPOLLRDHUP)) != 0) OnReadable(c);
            }
            // Interrupt coalescing: after a wake-up that found little, let frames pile up so that the next
            // reads drain several at once (fewer recv/epoll calls and ACKs per message; adds at most this much latency).
            if (_cfg.CoalesceMicros > 0 && n > 0 && n < MaxEvents / 2) _ = Native.usleep((uint)_cfg.CoalesceMicros);
        }
    }

    private void OpenMore()
    {
        var now = Stopwatch.GetTimestamp();
        while (_pending < _cfg.MaxPendingHandshakes && _retry.Count > 0 && _retry.Peek().RetryAt <= now)
            Open(_retry.Dequeue());
        while (_pending < _cfg.MaxPendingHandshakes && _nextToOpen < _openLimit)
        {
            Open(_conns[_nextToOpen]);
            _nextToOpen++;
        }
    }

    private void Open(Conn c)
    {
        if (FirstConnectTs == 0) FirstConnectTs = Stopwatch.GetTimestamp();
        var fd = Native.socket(Native.AF_INET, Native.SOCK_STREAM | Native.SOCK_NONBLOCK | Native.SOCK_CLOEXEC, 0);
        if (fd < 0) { Fail(c, $"socket() failed: errno {Native.Errno} (file descriptor limit? raise ulimit -n)", counted: false); return; }
        c.Fd = fd;
        var one = 1;
        Native.setsockopt(fd, Native.SOL_IP, Native.IP_BIND_ADDRESS_NO_PORT, &one, 4);
        Native.setsockopt(fd, Native.IPPROTO_TCP, Native.TCP_NODELAY, &one, 4);
        var src = new Native.SockAddrIn { Family = Native.AF_INET, Addr = c.SrcAddr };
        if (Native.bind(fd, &src, 16) != 0) { Fail(c, $"bind() to a 127.0.0.x source failed: errno {Native.Errno}", counted: false); return; }
        var port = _cfg.Ports.Length > 0 ? _cfg.Ports[c.Node] : _cfg.Port;
        var dst = new Native.SockAddrIn { Family = Native.AF_INET, Addr = _cfg.DstAddr, Port = Native.PortNetworkOrder(port) };
        if (Native.connect(fd, &dst, 16) != 0 && Native.Errno != Native.EINPROGRESS)
        {
            Fail(c, $"connect() failed: errno {Native.Errno}", counted: false);
            return;
        }
        c.State = ConnState.Connecting;
        _pending++;
        var ev = new Native.EpollEvent { Events = Native.EPOLLOUT | Native.EPOLLIN | Native.EPOLLRDHUP, Data = (ulong)c.Index };
        Native.epoll_ctl(_ep, Native.EPOLL_CTL_ADD, fd, &ev);
    }

    private void OnConnected(Conn c)
    {
        int err = 0;
        uint len = 4;
        Native.getsockopt(c.Fd, Native.SOL_SOCKET, Native.SO_ERROR, &err, &len);
        if (err != 0) { Fail(c, $"connect failed: errno {err}", counted: true); return; }
        fixed (byte* p = _upgrade)
        {
            var sent = Native.send(c.Fd, p, _upgrade.Length, Native.MSG_NOSIGNAL);
            if (sent != _upgrade.Length) { Fail(c, $"sending the upgrade request failed: errno {Native.Errno}", counted: true); return; }
        }
        c.State = ConnState.Upgrading;
        var ev = new Native.EpollEvent { Events = Native.EPOLLIN | Native.EPOLLRDHUP, Data = (ulong)c.Index };
        Native.epoll_ctl(_ep, Native.EPOLL_CTL_MOD, c.Fd, &ev);
    }

    /// <summary>Closes a client during its handshake; retries refused/reset connects up to 3 times.</summary>
    private void Fail(Conn c, string why, bool counted)
    {
        var wasPending = c.State is ConnState.Connecting or ConnState.Upgrading or ConnState.AwaitOpen or ConnState.NsConnecting;
        if (wasPending) _pending--;
        if (c.Fd >= 0)
        {
            Native.epoll_ctl(_ep, Native.EPOLL_CTL_DEL, c.Fd, null);
            Native.close(c.Fd);
            c.Fd = -1;
        }
        c.CarryLen = 0;
        if (counted && c.Attempts < 3 && c.State != ConnState.NsConnecting)
        {
            c.Attempts++;
            c.State = ConnState.Idle;
            c.RetryAt = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 10 * c.Attempts;
            _retry.Enqueue(c);
            return;
        }
        c.State = ConnState.Failed;
        Failed++;
        _cfg.Error(why);
    }

    private void OnReadable(Conn c)
    {
        fixed (byte* buf = _readBuf)
        {
            var n = Native.recv(c.Fd, buf, _readBuf.Length, 0);
            if (n < 0)
            {
                var e = Native.Errno;
                if (e is Native.EAGAIN or Native.EINTR) return;
                Lost(c, $"recv failed: errno {e}");
                return;
            }
            if (n == 0) { Lost(c, "server closed the connection"); return; }
            Reads++;
            var now = Stopwatch.GetTimestamp();
            if (c.CarryLen > 0)
            {
                EnsureCarry(c, c.CarryLen + (int)n);
                new ReadOnlySpan<byte>(buf, (int)n).CopyTo(c.Carry.AsSpan(c.CarryLen));
                c.CarryLen += (int)n;
                var used = Parse(c, c.Carry.AsSpan(0, c.CarryLen), now);
                if (used < 0) return;
                var left = c.CarryLen - used;
                if (left > 0) Buffer.BlockCopy(c.Carry!, used, c.Carry!, 0, left);
                c.CarryLen = left;
                if (left == 0 && c.Carry!.Length > 64 * 1024) c.Carry = null;
            }
            else
            {
                var span = _readBuf.AsSpan(0, (int)n);
                var used = Parse(c, span, now);
                if (used < 0) return;
                var left = (int)n - used;
                if (left > 0)
                {
                    EnsureCarry(c, left);
                    span[used..].CopyTo(c.Carry);
                    c.CarryLen = left;
                }
            }
        }
    }

    private static void EnsureCarry(Conn c, int size)
    {
        if (c.Carry is null) { c.Carry = new byte[Math.Max(4096, size * 2)]; return; }
        if (c.Carry.Length >= size) return;
        var bigger = new byte[Math.Max(c.Carry.Length * 2, size)];
        Buffer.BlockCopy(c.Carry, 0, bigger, 0, c.CarryLen);
        c.Carry = bigger;
    }

    /// <summary>A connection lost after its handshake (or during it, which counts as a failure).</summary>
    private void Lost(Conn c, string why)
    {
        if (c.State != ConnState.Ready) { Fail(c, why, counted: c.State is ConnState.Upgrading); return; }
        Native.epoll_ctl(_ep, Native.EPOLL_CTL_DEL, c.Fd, null);
        Native.close(c.Fd);
        c.Fd = -1;
        c.State = ConnState.Closed;
        Closed++;
        _cfg.Error($"connection lost: {why}");
    }

    /// <summary>Consumes complete frames; returns the bytes used, or -1 when the connection was closed.</summary>
    private int Parse(Conn c, Span<byte> data, long now)
    {
        var pos = 0;
        if (c.State == ConnState.Upgrading)
        {
            var end = data.IndexOf("\r\n\r\n"u8);
            if (end < 0)
            {
                if (data.Length > 16 * 1024) { Fail(c, "upgrade response too long", counted: false); return -1; }
                return 0;
            }
            if (!data.StartsWith("HTTP/1.1 101"u8))
            {
                var line = Encoding.ASCII.GetString(data[..Math.Min(data.Length, end)]);
                Fail(c, $"upgrade refused: {line.Split('\r')[0]} {ResponseBody(data, end)}", counted: false);
                return -1;
            }
            pos = end + 4;
            c.State = ConnState.AwaitOpen;
        }
        while (data.Length - pos >= 2)
        {
            var b0 = data[pos];
            var b1 = data[pos + 1];
            long len = b1 & 0x7F;
            var hdr = 2;
            if (len == 126)
            {
                if (data.Length - pos < 4) break;
                len = (data[pos + 2] << 8) | data[pos + 3];
                hdr = 4;
            }
            else if (len == 127)
            {
                if (data.Length - pos < 10) break;
                len = (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(data.Slice(pos + 2, 8));
                hdr = 10;
            }
            var masked = (b1 & 0x80) != 0;
            if (masked) hdr += 4;
            if (data.Length - pos < hdr + len) break;
            var payload = data.Slice(pos + hdr, (int)len);
            if (masked)
            {
                var mask = data.Slice(pos + hdr - 4, 4);
                for (var i = 0; i < payload.Length; i++) payload[i] ^= mask[i & 3];
            }
            pos += hdr + (int)len;
            var fin = (b0 & 0x80) != 0;
            var op = b0 & 0x0F;
            switch (op)
            {
                case 0x1 or 0x2 when fin:
                    if (!OnMessage(c, payload, now)) return -1;
                    break;
                case 0x1 or 0x2 or 0x0:
                    if (op != 0) c.MsgLen = 0;
                    if (c.Msg is null || c.Msg.Length < c.MsgLen + payload.Length)
                    {
                        var bigger = new byte[Math.Max(4096, (c.MsgLen + payload.Length) * 2)];
                        if (c.Msg is not null) Buffer.BlockCopy(c.Msg, 0, bigger, 0, c.MsgLen);
                        c.Msg = bigger;
                    }
                    payload.CopyTo(c.Msg.AsSpan(c.MsgLen));
                    c.MsgLen += payload.Length;
                    if (fin)
                    {
                        var whole = c.Msg.AsSpan(0, c.MsgLen);
                        c.MsgLen = 0;
                        if (!OnMessage(c, whole, now)) return -1;
                    }
                    break;
                case 0x8:
                    Lost(c, "server sent a WebSocket close frame");
                    return -1;
                case 0x9:
                    SendFrame(c, 0xA, payload);
                    PingsAnswered++;
                    break;
            }
        }
        return pos;
    }

    private static string ResponseBody(Span<byte> data, int headerEnd)
    {
        var body = data[(headerEnd + 4)..];
        return body.Length == 0 ? "" : Encoding.UTF8.GetString(body[..Math.Min(200, body.Length)]);
    }

    /// <summary>One Engine.IO packet (one WebSocket message). False when the connection was closed.</summary>
    private bool OnMessage(Conn c, Span<byte> p, long now)
    {
        if (p.Length == 0) return true;
        switch (p[0])
        {
            case (byte)'4':
                if (p.Length < 2) return true;
                switch (p[1])
                {
                    case (byte)'2':
                        OnEvent(c, p, now);
                        return true;
                    case (byte)'0':
                        if (c.State == ConnState.NsConnecting)
                        {
                            c.State = ConnState.Ready;
                            _pending--;
                            Ready++;
                            Interlocked.Increment(ref _cfg.ReadyPerNs[c.Ns]);
                            LastReadyTs = now;
                        }
                        return true;
                    case (byte)'4':
                        Fail(c, "CONNECT_ERROR " + Encoding.UTF8.GetString(p[2..]), counted: false);
                        return false;
                    case (byte)'1':
                        Lost(c, "server sent a Socket.IO DISCONNECT");
                        return false;
                    default:
                        return true;
                }
            case (byte)'2':
                SendFrame(c, 0x1, "3"u8);
                PingsAnswered++;
                if (PingTs is { Count: < 1_000_000 }) PingTs.Add(Stopwatch.GetTimestamp());
                return true;
            case (byte)'0':
                if (c.State == ConnState.AwaitOpen)
                {
                    SendFrame(c, 0x1, _connectPackets[c.Ns]);
                    c.State = ConnState.NsConnecting;
                }
                return true;
            case (byte)'1':
                Lost(c, "server sent an Engine.IO close");
                return false;
            default:
                return true;
        }
    }

    private void OnEvent(Conn c, Span<byte> p, long now)
    {
        var i = p.IndexOf(SeqLit);
        if (i < 0) { Unparsed++; return; }
        i += SeqLit.Length;
        var seq = (int)ReadLong(p, ref i);
        long ph, sentAt;
        if (p[i..].StartsWith(PhLit))
        {
            i += PhLit.Length;
            ph = ReadLong(p, ref i);
            if (p[i..].StartsWith(SentLit)) { i += SentLit.Length; sentAt = ReadLong(p, ref i); }
            else sentAt = Find(p, SentAny);
        }
        else
        {
            // Keys reordered by the server: look each one up.
            ph = Find(p, PhAny);
            sentAt = Find(p, SentAny);
        }
        if (ph < 0 || ph >= DeliveredByPhase.Length || seq < 0 || sentAt < 0) { Unparsed++; return; }
        var seen = c.Seen;
        if (seen is null || (seq >> 6) >= seen.Length) { Unparsed++; return; }
        var bit = 1UL << (seq & 63);
        if ((seen[seq >> 6] & bit) != 0) { Dups++; return; }
        seen[seq >> 6] |= bit;
        if (seq < c.LastSeq) OutOfOrder++;
        else c.LastSeq = seq;
        DeliveredByPhase[ph]++;
        LastDeliveryTs[ph] = now;
        var micros = (now - sentAt) / TicksPerMicro;
        Latency[ph].Record(micros);
        Delivered++;
        if (EvCount is not null && seq < EvCount.Length)
        {
            EvSent![seq] = sentAt;
            EvCount[seq]++;
            EvSumMicros![seq] += micros;
            if (micros > EvMaxMicros![seq]) EvMaxMicros[seq] = micros;
        }
    }

    private static long Find(Span<byte> p, ReadOnlySpan<byte> key)
    {
        var i = p.IndexOf(key);
        if (i < 0) return -1;
        i += key.Length;
        return ReadLong(p, ref i);
    }

    private static long ReadLong(Span<byte> p, ref int i)
    {
        long v = 0;
        var start = i;
        while (i < p.Length && (uint)(p[i] - '0') <= 9) v = v * 10 + (p[i++] - '0');
        return i == start ? -1 : v;
    }

    /// <summary>Sends one masked client frame in one call (client frames here are a few bytes).</summary>
    private void SendFrame(Conn c, int opcode, ReadOnlySpan<byte> payload)
    {
        if (c.Fd < 0) return;
        var len = payload.Length;
        if (len > _sendBuf.Length - 14) return;
        var b = _sendBuf.AsSpan();
        b[0] = (byte)(0x80 | opcode);
        int h;
        if (len < 126) { b[1] = (byte)(0x80 | len); h = 2; }
        else { b[1] = 0x80 | 126; b[2] = (byte)(len >> 8); b[3] = (byte)len; h = 4; }
        _rng ^= _rng << 13; _rng ^= _rng >> 17; _rng ^= _rng << 5;
        var m = _rng;
        b[h] = (byte)m; b[h + 1] = (byte)(m >> 8); b[h + 2] = (byte)(m >> 16); b[h + 3] = (byte)(m >> 24);
        for (var i = 0; i < len; i++) b[h + 4 + i] = (byte)(payload[i] ^ b[h + (i & 3)]);
        var total = h + 4 + len;
        fixed (byte* p = _sendBuf)
        {
            if (Native.send(c.Fd, p, total, Native.MSG_NOSIGNAL) != total) ShortSends++;
        }
    }

    public int PendingHandshakes => _pending;
}

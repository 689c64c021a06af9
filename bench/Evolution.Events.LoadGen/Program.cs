using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Evolution.Events.LoadGen;

Options o;
try { o = Options.Parse(args); }
catch (ArgumentException e) { Console.Error.WriteLine(e.Message); return 2; }
try { return await new Run(o).ExecuteAsync(); }
catch (HttpRequestException e) { Console.Error.WriteLine($"cannot reach {o.Url}: {e.Message}"); return 3; }

/// <summary>One load-generator run: create instances, connect, post, wait for deliveries, report.</summary>
internal sealed class Run(Options o)
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly HttpClient _http = new(new SocketsHttpHandler
    {
        UseProxy = false,
        MaxConnectionsPerServer = 256,
        PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
    })
    { BaseAddress = new Uri(o.Url), Timeout = TimeSpan.FromSeconds(60) };
    private HttpClient[] _nodes = [];
    private long _posts;
    private readonly List<string> _notes = [];
    private long _postErrors;
    private string? _firstPostError;

    private sealed record Ev(int Ns, int Seq, int Phase);
    private sealed class Phase
    {
        public required string Name { get; init; }
        public int Rate { get; init; }                    // 0 = max rate
        public List<Ev[]> Batches { get; } = [];
        public int Events => Batches.Sum(b => b.Length);
        public long Expected, Delivered, Posts;
        public double StartS, EndS, PostsDoneS, CpuUser, CpuSys, SelfCpu, SelfSys;
        public long T0;
        public Histogram Latency { get; } = new();
    }

    private bool TimeLeft => _clock.Elapsed.TotalSeconds < o.Timeout;

    public async Task<int> ExecuteAsync()
    {
        var uri = new Uri(o.Url);
        var namespaces = Enumerable.Range(0, o.Namespaces).Select(k => $"{o.NsPrefix}-{k}").ToArray();
        _http.DefaultRequestHeaders.Add("apikey", o.ApiKey);
        _nodes = [_http, .. o.Urls.Skip(1).Select(u =>
        {
            var client = new HttpClient(new SocketsHttpHandler { UseProxy = false, MaxConnectionsPerServer = 256 })
            { BaseAddress = new Uri(u), Timeout = TimeSpan.FromSeconds(60) };
            client.DefaultRequestHeaders.Add("apikey", o.ApiKey);
            return client;
        })];

        // The schedule: phase 0 is the warm-up, then one phase per rate (or one max-rate phase).
        var nsSeq = new int[o.Namespaces];
        var phases = new List<Phase>();
        Phase MakePhase(string name, int rate, int events, int batch)
        {
            var ph = new Phase { Name = name, Rate = rate };
            var list = new List<Ev>();
            for (var j = 0; j < events; j++)
            {
                var ns = j % o.Namespaces;
                list.Add(new Ev(ns, nsSeq[ns]++, phases.Count));
                if (list.Count == batch) { ph.Batches.Add(list.ToArray()); list.Clear(); }
            }
            if (list.Count > 0) ph.Batches.Add(list.ToArray());
            phases.Add(ph);
            return ph;
        }
        MakePhase("warmup", 0, o.Warmup, Math.Max(o.Batch, 1));
        if (!o.Idle)
        {
            if (o.Rates.Length == 0) MakePhase("max", 0, o.Events, o.Batch);
            else foreach (var r in o.Rates) MakePhase($"{r}/s", r, (int)Math.Round(r * o.Seconds), 1);
        }

        var cfg = new ReactorConfig
        {
            DstAddr = Native.Ipv4NetworkOrder(uri.Host),
            Port = uri.Port,
            Ports = [.. o.Urls.Select(u => new Uri(u).Port)],
            ApiKey = o.ApiKey,
            Namespaces = namespaces,
            EventsPerNs = nsSeq,
            Phases = phases.Count,
            MaxPendingHandshakes = Math.Max(1, o.MaxPendingHandshakes / o.Readers),
            CoalesceMicros = o.CoalesceMicros,
            ReadyPerNs = new int[o.Namespaces],
            EventLog = EventLogPath is not null,
        };

        // 1. Instances.
        var createSw = Stopwatch.StartNew();
        if (!o.SkipCreate)
        {
            foreach (var ns in namespaces)
            {
                using var res = await _http.PostAsync("/instance/create", Json($"{{\"instanceName\":\"{ns}\"}}"));
                if (!res.IsSuccessStatusCode && res.StatusCode != HttpStatusCode.Conflict)
                {
                    Console.Error.WriteLine($"POST /instance/create {ns}: {(int)res.StatusCode} {await res.Content.ReadAsStringAsync()}");
                    return 3;
                }
            }
        }
        createSw.Stop();
        if (_nodes.Length > 1)
        {
            // every node must know the instances before its clients connect (registry propagation: milliseconds)
            foreach (var node in _nodes.Skip(1))
            {
                for (var attempt = 0; attempt < 100; attempt++)
                {
                    using var res = await node.GetAsync($"/instance/fetchInstances?instanceName={namespaces[^1]}");
                    if (res.IsSuccessStatusCode && (await res.Content.ReadAsStringAsync()).Contains(namespaces[^1])) break;
                    await Task.Delay(50);
                }
            }
        }

        var pid = ProcStat.Alive(o.Pid) ? o.Pid : 0;
        if (o.Pid != 0 && pid == 0) _notes.Add($"server pid {o.Pid} not found: no server CPU/memory");
        var peakReset = pid != 0 && ProcStat.ResetPeak(pid);
        if (pid != 0 && !peakReset) _notes.Add("could not reset VmHWM: peak is since server start");
        var rssBeforeKb = pid != 0 ? ProcStat.StatusKb(pid, "VmRSS") : -1;
        using var sampler = pid != 0 ? new RssSampler(pid) : null;

        // 2. Connect: clients i -> namespace i % K, reactor i % R, source 127.0.0.(1 + i % S).
        var reactors = Enumerable.Range(0, o.Readers).Select(i => new Reactor(cfg, i)).ToArray();
        for (var i = 0; i < o.Clients; i++)
            reactors[i % o.Readers].Add(i % o.Namespaces, Native.Ipv4NetworkOrder($"127.0.0.{1 + i % o.Sources}"), i % o.Urls.Length);
        foreach (var r in reactors) r.Start();
        foreach (var r in reactors) r.OpenUpTo(int.MaxValue);
        long lastProgress = 0;
        var progressAt = _clock.Elapsed.TotalSeconds;
        for (var iter = 0; iter < 10_000_000 && TimeLeft; iter++)
        {
            var done = reactors.Sum(r => Volatile.Read(ref r.Ready) + Volatile.Read(ref r.Failed));
            if (done >= o.Clients) break;
            if (done != lastProgress) { lastProgress = done; progressAt = _clock.Elapsed.TotalSeconds; }
            else if (_clock.Elapsed.TotalSeconds - progressAt > 15) { _notes.Add($"connect stalled at {done}/{o.Clients}"); break; }
            await Task.Delay(5);
        }
        var ready = reactors.Sum(r => Volatile.Read(ref r.Ready));
        var failed = reactors.Sum(r => Volatile.Read(ref r.Failed));
        var firstTs = reactors.Where(r => r.FirstConnectTs != 0).Select(r => r.FirstConnectTs).DefaultIfEmpty(0).Min();
        var lastTs = reactors.Select(r => Volatile.Read(ref r.LastReadyTs)).DefaultIfEmpty(0).Max();
        var connectS = ready > 0 ? (lastTs - firstTs) / (double)Stopwatch.Frequency : double.NaN;
        Console.Error.WriteLine($"[{o.Scenario}] connected {ready}/{o.Clients} in {connectS:F2} s ({failed} failed)");

        long memPerConnBytes = -1, rssAfterKb = -1, closedDuringHold = 0;
        if (ready > 0 && (o.Idle || o.HoldFirst))
        {
            // S4/S6: idle clients; memory per connection after they settle, then hold.
            Thread.Sleep(TimeSpan.FromSeconds(o.Settle));
            if (pid != 0)
            {
                rssAfterKb = ProcStat.StatusKb(pid, "VmRSS");
                memPerConnBytes = (rssAfterKb - rssBeforeKb) * 1024 / ready;
            }
            var closed0 = reactors.Sum(r => Volatile.Read(ref r.Closed));
            var holdEnd = _clock.Elapsed.TotalSeconds + o.Hold;
            for (var i = 0; i < 100_000 && _clock.Elapsed.TotalSeconds < holdEnd && TimeLeft; i++) Thread.Sleep(100);
            closedDuringHold = reactors.Sum(r => Volatile.Read(ref r.Closed)) - closed0;
            Console.Error.WriteLine($"[{o.Scenario}] held {ready} clients for {o.Settle + o.Hold:F0} s: {memPerConnBytes / 1024.0:F1} KB per connection, {closedDuringHold} closed");
        }
        if (ready > 0 && !o.Idle)
        {
            // 3. Warm-up (not measured), then the measured phases.
            for (var p = 0; p < phases.Count && TimeLeft; p++)
            {
                var ph = phases[p];
                if (ph.Batches.Count == 0) continue;
                ph.Expected = ph.Batches.Sum(b => b.Sum(e => (long)Volatile.Read(ref cfg.ReadyPerNs[e.Ns])));
                var cpu0 = pid != 0 ? ClusterCpu(pid) : default;
                var self0 = ProcStat.SelfCpu();
                ph.T0 = Stopwatch.GetTimestamp();
                ph.StartS = _clock.Elapsed.TotalSeconds;
                if (ph.Rate == 0) await PostClosedLoopAsync(ph);
                else await PostOpenLoopAsync(ph);
                ph.PostsDoneS = _clock.Elapsed.TotalSeconds;
                WaitDelivered(reactors, p, ph.Expected);
                var cpu1 = pid != 0 ? ClusterCpu(pid) : default;
                var self1 = ProcStat.SelfCpu();
                ph.CpuUser = cpu1.User - cpu0.User;
                ph.CpuSys = cpu1.Sys - cpu0.Sys;
                ph.SelfCpu = self1.User + self1.Sys - self0.User - self0.Sys;
                ph.SelfSys = self1.Sys - self0.Sys;
                var end = reactors.Max(r => Volatile.Read(ref r.LastDeliveryTs[p]));
                ph.EndS = end > ph.T0 ? (end - ph.T0) / (double)Stopwatch.Frequency : double.NaN;
                ph.Delivered = reactors.Sum(r => Volatile.Read(ref r.DeliveredByPhase[p]));
                Console.Error.WriteLine($"[{o.Scenario}] phase {ph.Name}: {ph.Delivered}/{ph.Expected} delivered in {ph.EndS:F3} s");
                if (p == 0) Thread.Sleep(500); // let tiered JIT settle after the warm-up
            }
        }
        var hwmKb = pid != 0 ? ProcStat.StatusKb(pid, "VmHWM") : -1;
        var peakKb = Math.Max(sampler?.PeakKb ?? -1, hwmKb);
        sampler?.Dispose();
        foreach (var r in reactors) r.Stop();
        for (var p = 0; p < phases.Count; p++)
            foreach (var r in reactors) phases[p].Latency.Add(r.Latency[p]);
        if (EventLogPath is not null) WriteEventLog(EventLogPath, reactors);

        var stats = new
        {
            Dups = reactors.Sum(r => r.Dups),
            OutOfOrder = reactors.Sum(r => r.OutOfOrder),
            Unparsed = reactors.Sum(r => r.Unparsed),
            Closed = reactors.Sum(r => r.Closed),
            Pings = reactors.Sum(r => r.PingsAnswered),
            Reads = reactors.Sum(r => r.Reads),
            Wakeups = reactors.Sum(r => r.Wakeups),
        };
        while (cfg.Errors.TryDequeue(out var err) && _notes.Count < 20) _notes.Add(err);
        if (_postErrors > 0) _notes.Add($"{_postErrors} POSTs failed, first: {_firstPostError}");

        // 4. Report.
        var measured = phases.Skip(1).Where(p => p.Batches.Count > 0).ToList();
        var total = measured.Aggregate((Delivered: 0L, Expected: 0L, User: 0.0, Sys: 0.0, Self: 0.0, SelfSys: 0.0, Time: 0.0),
            (a, p) => (a.Delivered + p.Delivered, a.Expected + p.Expected, a.User + p.CpuUser, a.Sys + p.CpuSys, a.Self + p.SelfCpu, a.SelfSys + p.SelfSys, a.Time + (double.IsNaN(p.EndS) ? 0 : p.EndS)));
        var lat = new Histogram();
        foreach (var p in measured) lat.Add(p.Latency);
        var label = o.Label.Length > 0 ? o.Label : o.Url;

        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"== {o.Scenario} against {label}: {o.Clients} clients over {o.Namespaces} namespaces, {o.Readers} reader thread(s), coalesce {o.CoalesceMicros} µs, {o.Sources} source address(es)");
        void Row(string k, string v) => sb.AppendLine(CultureInfo.InvariantCulture, $"  {k,-34} {v}");
        Row("connected / failed", $"{ready} / {failed}  in {connectS:F2} s ({(ready > 0 ? ready / connectS : 0):F0} conn/s)");
        foreach (var p in measured)
        {
            Row($"phase {p.Name}", $"{p.Events} events in {p.Batches.Count} POSTs; {p.Delivered}/{p.Expected} delivered in {p.EndS:F3} s = {Rate(p.Delivered, p.EndS):F0} msg/s; "
                + $"p50 {Ms(p.Latency.Quantile(.5))} p99 {Ms(p.Latency.Quantile(.99))} max {Ms(p.Latency.Max)} ms; post rate {Rate(p.Events, p.PostsDoneS - p.StartS):F1} ev/s");
        }
        if (measured.Count > 0)
        {
            Row("delivered / expected / lost", $"{total.Delivered} / {total.Expected} / {total.Expected - total.Delivered}  (dups {stats.Dups}, out of order {stats.OutOfOrder}, unparsed {stats.Unparsed})");
            Row("delivered msg/s", $"{Rate(total.Delivered, total.Time):F0}");
            Row("latency p50 / p99 / max (ms)", $"{Ms(lat.Quantile(.5))} / {Ms(lat.Quantile(.99))} / {Ms(lat.Max)}");
            if (pid != 0)
                Row("server CPU (user+sys)", $"{total.User + total.Sys:F2} s ({total.User:F2} + {total.Sys:F2}) = {PerMsg(total.User + total.Sys, total.Delivered):F2} µs/msg");
            Row("load generator CPU (user+sys)", $"{total.Self:F2} s ({total.Self - total.SelfSys:F2} + {total.SelfSys:F2}) = {PerMsg(total.Self, total.Delivered):F2} µs/msg");
        }
        if (pid != 0)
        {
            Row("server RSS before / peak (MiB)", $"{rssBeforeKb / 1024.0:F1} / {peakKb / 1024.0:F1}");
            if (o.Idle || o.HoldFirst) Row("server memory per connection", $"{memPerConnBytes / 1024.0:F1} KB ({rssBeforeKb / 1024.0:F1} -> {rssAfterKb / 1024.0:F1} MiB), closed during hold {closedDuringHold}");
        }
        Row("connections lost / pings answered", $"{stats.Closed} / {stats.Pings}");
        Row("reader: wake-ups / reads / msgs per read", $"{stats.Wakeups} / {stats.Reads} / {(stats.Reads > 0 ? (double)reactors.Sum(r => r.Delivered) / stats.Reads : 0):F2}");
        foreach (var n in _notes) Row("note", n);
        Console.Out.Write(sb.ToString());

        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteString("scenario", o.Scenario);
            w.WriteString("target", label);
            w.WriteNumber("clients", o.Clients);
            w.WriteNumber("namespaces", o.Namespaces);
            w.WriteNumber("events", measured.Sum(p => p.Events));
            w.WriteNumber("batch", o.Batch);
            w.WriteNumber("readers", o.Readers);
            w.WriteNumber("coalesce_us", o.CoalesceMicros);
            w.WriteNumber("connected", ready);
            w.WriteNumber("connect_failed", failed);
            w.WriteNumber("sources", o.Sources);
            Num(w, "connect_s", connectS);
            w.WriteNumber("expected", total.Expected);
            w.WriteNumber("delivered", total.Delivered);
            w.WriteNumber("lost", total.Expected - total.Delivered);
            w.WriteNumber("dups", stats.Dups);
            w.WriteNumber("out_of_order", stats.OutOfOrder);
            w.WriteNumber("connections_lost", stats.Closed);
            Num(w, "duration_s", total.Time);
            Num(w, "msgs_per_s", Rate(total.Delivered, total.Time));
            Num(w, "p50_ms", lat.Quantile(.5) / 1000.0);
            Num(w, "p99_ms", lat.Quantile(.99) / 1000.0);
            Num(w, "max_ms", lat.Max / 1000.0);
            Num(w, "server_cpu_s", pid != 0 ? total.User + total.Sys : double.NaN);
            Num(w, "server_user_s", pid != 0 ? total.User : double.NaN);
            Num(w, "server_sys_s", pid != 0 ? total.Sys : double.NaN);
            Num(w, "server_us_per_msg", pid != 0 ? PerMsg(total.User + total.Sys, total.Delivered) : double.NaN);
            Num(w, "server_rss_before_mb", rssBeforeKb / 1024.0);
            Num(w, "server_rss_peak_mb", peakKb / 1024.0);
            Num(w, "mem_per_conn_kb", memPerConnBytes >= 0 ? memPerConnBytes / 1024.0 : double.NaN);
            w.WriteNumber("closed_during_hold", closedDuringHold);
            Num(w, "msgs_per_read", stats.Reads > 0 ? (double)reactors.Sum(r => r.Delivered) / stats.Reads : double.NaN);
            Num(w, "loadgen_cpu_s", total.Self);
            Num(w, "loadgen_us_per_msg", PerMsg(total.Self, total.Delivered));
            w.WriteStartArray("phases");
            foreach (var p in measured)
            {
                w.WriteStartObject();
                w.WriteString("name", p.Name);
                w.WriteNumber("rate", p.Rate);
                w.WriteNumber("events", p.Events);
                Num(w, "post_rate", Rate(p.Events, p.PostsDoneS - p.StartS));
                w.WriteNumber("expected", p.Expected);
                w.WriteNumber("delivered", p.Delivered);
                Num(w, "duration_s", p.EndS);
                Num(w, "msgs_per_s", Rate(p.Delivered, p.EndS));
                Num(w, "p50_ms", p.Latency.Quantile(.5) / 1000.0);
                Num(w, "p99_ms", p.Latency.Quantile(.99) / 1000.0);
                Num(w, "max_ms", p.Latency.Max / 1000.0);
                Num(w, "server_cpu_s", pid != 0 ? p.CpuUser + p.CpuSys : double.NaN);
                Num(w, "server_us_per_msg", pid != 0 ? PerMsg(p.CpuUser + p.CpuSys, p.Delivered) : double.NaN);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("notes");
            foreach (var n in _notes) w.WriteStringValue(n);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        Console.Out.WriteLine(Encoding.UTF8.GetString(ms.ToArray()));
        return ready > 0 ? 0 : 4;
    }

    private static void Num(Utf8JsonWriter w, string name, double v)
    {
        if (double.IsFinite(v)) w.WriteNumber(name, Math.Round(v, 4));
        else w.WriteNull(name);
    }

    /// <summary>
    /// LOADGEN_EVENT_LOG=&lt;file&gt;: a diagnostic CSV of every event (by sequence; meaningful with one namespace) and
    /// every Engine.IO ping the clients got, times in ms from the first connect: where in a run the slow deliveries were.
    /// </summary>
    private static readonly string? EventLogPath = Environment.GetEnvironmentVariable("LOADGEN_EVENT_LOG") is { Length: > 0 } path ? path : null;

    private static void WriteEventLog(string path, Reactor[] reactors)
    {
        var t0 = reactors.Min(r => r.FirstConnectTs);
        double Ms0(long ts) => (ts - t0) * 1000.0 / Stopwatch.Frequency;
        using var w = new StreamWriter(path);
        w.WriteLine("kind,seq,t_ms,deliveries,mean_ms,max_ms");
        var n = reactors[0].EvCount!.Length;
        for (var seq = 0; seq < n; seq++)
        {
            long count = 0, sum = 0, max = 0, sent = 0;
            foreach (var r in reactors)
            {
                count += r.EvCount![seq];
                sum += r.EvSumMicros![seq];
                max = Math.Max(max, r.EvMaxMicros![seq]);
                sent = Math.Max(sent, r.EvSent![seq]);
            }

            if (count > 0)
                w.WriteLine(string.Create(CultureInfo.InvariantCulture, $"event,{seq},{Ms0(sent):F1},{count},{sum / 1000.0 / count:F2},{max / 1000.0:F2}"));
        }

        foreach (var ts in reactors.SelectMany(r => r.PingTs!).Order())
            w.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ping,,{Ms0(ts):F1},,,"));
    }

    private static double Rate(long n, double s) => s > 0 ? n / s : double.NaN;
    /// <summary>CPU of the server: every node's process summed (a cluster), else the one process.</summary>
    private (double User, double Sys) ClusterCpu(int pid)
    {
        if (o.Pids.Length <= 1)
            return ProcStat.Cpu(pid);
        double user = 0, sys = 0;
        foreach (var p in o.Pids.Where(ProcStat.Alive))
        {
            var (u, s) = ProcStat.Cpu(p);
            user += u;
            sys += s;
        }
        return (user, sys);
    }

    private static double PerMsg(double cpuS, long n) => n > 0 ? cpuS * 1e6 / n : double.NaN;
    private static string Ms(long micros) => (micros / 1000.0).ToString("F2", CultureInfo.InvariantCulture);
    private static StringContent Json(string s) => new(s, Encoding.UTF8, "application/json");

    /// <summary>Waits until a phase's deliveries are all in, or none came for IdleTimeout s (losses), bounded by the run's timeout.</summary>
    private void WaitDelivered(Reactor[] reactors, int p, long expected)
    {
        long last = -1;
        var lastAt = _clock.Elapsed.TotalSeconds;
        for (var i = 0; i < 100_000_000 && TimeLeft; i++)
        {
            var n = reactors.Sum(r => Volatile.Read(ref r.DeliveredByPhase[p]));
            if (n >= expected) return;
            if (n != last) { last = n; lastAt = _clock.Elapsed.TotalSeconds; }
            else if (_clock.Elapsed.TotalSeconds - lastAt > o.IdleTimeout) return;
            Thread.Sleep(1);
        }
    }

    /// <summary>The producer's payload: the producer's send time (Stopwatch ticks, ns on Linux) is in data.sentAt.</summary>
    private ByteArrayContent Payload(Ev[] batch, long sentAt)
    {
        var sb = new StringBuilder(batch.Length * 420);
        sb.Append('[');
        for (var i = 0; i < batch.Length; i++)
        {
            var e = batch[i];
            if (i > 0) sb.Append(',');
            sb.Append(CultureInfo.InvariantCulture,
                $"{{\"event\":\"messages.upsert\",\"instance\":\"{o.NsPrefix}-{e.Ns}\",\"data\":{{\"seq\":{e.Seq},\"ph\":{e.Phase},\"sentAt\":{sentAt},");
            sb.Append(CultureInfo.InvariantCulture, $"\"key\":{{\"remoteJid\":\"5511999990000@s.whatsapp.net\",\"fromMe\":false,\"id\":\"BENCH{e.Ns}X{e.Seq}\"}},");
            sb.Append("\"pushName\":\"bench\",\"message\":{\"conversation\":\"hello from the load generator\"},\"messageType\":\"conversation\",\"messageTimestamp\":1700000000},"
                + "\"date_time\":\"2025-01-01T00:00:00.000Z\",\"sender\":\"5511999990000@s.whatsapp.net\",\"server_url\":\"http://127.0.0.1\",\"apikey\":\"producer-key\"}");
        }
        sb.Append(']');
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes(sb.ToString()));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        return content;
    }

    private async Task PostAsync(Ev[] batch)
    {
        try
        {
            var node = _nodes[(int)((ulong)Interlocked.Increment(ref _posts) % (ulong)_nodes.Length)];
            using var res = await node.PostAsync("/webhook", Payload(batch, Stopwatch.GetTimestamp()));
            if (!res.IsSuccessStatusCode)
            {
                if (Interlocked.Increment(ref _postErrors) == 1)
                    _firstPostError = $"{(int)res.StatusCode} {await res.Content.ReadAsStringAsync()}";
            }
        }
        catch (HttpRequestException e)
        {
            if (Interlocked.Increment(ref _postErrors) == 1) _firstPostError = e.Message;
        }
        catch (TaskCanceledException e)
        {
            if (Interlocked.Increment(ref _postErrors) == 1) _firstPostError = "timeout: " + e.Message;
        }
    }

    /// <summary>Max rate: Inflight workers, each posting the next batch as soon as its previous POST was answered.</summary>
    private async Task PostClosedLoopAsync(Phase ph)
    {
        var next = -1;
        async Task Worker()
        {
            for (var k = 0; k < 10_000_000 && TimeLeft; k++)
            {
                var i = Interlocked.Increment(ref next);
                if (i >= ph.Batches.Count) return;
                await PostAsync(ph.Batches[i]);
                Interlocked.Increment(ref ph.Posts);
            }
        }
        await Task.WhenAll(Enumerable.Range(0, Math.Max(1, o.Inflight)).Select(_ => Task.Run(Worker)));
    }

    /// <summary>Open loop: POST i is sent at start + i / rate whatever the answers (at most 256 outstanding).</summary>
    private async Task PostOpenLoopAsync(Phase ph)
    {
        using var gate = new SemaphoreSlim(256);
        var tasks = new List<Task>(ph.Batches.Count);
        var start = Stopwatch.GetTimestamp();
        var freq = (double)Stopwatch.Frequency;
        for (var i = 0; i < ph.Batches.Count && TimeLeft; i++)
        {
            var due = start + (long)(i * freq / ph.Rate);
            for (var spin = 0; spin < 10_000_000; spin++)
            {
                var left = due - Stopwatch.GetTimestamp();
                if (left <= 0) break;
                if (left > freq / 500) Thread.Sleep(1); else Thread.Yield();
            }
            await gate.WaitAsync();
            var b = ph.Batches[i];
            tasks.Add(Task.Run(async () => { try { await PostAsync(b); } finally { gate.Release(); } }));
            ph.Posts++;
        }
        await Task.WhenAll(tasks);
    }
}

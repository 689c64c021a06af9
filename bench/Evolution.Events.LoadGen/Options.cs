using System.Globalization;

namespace Evolution.Events.LoadGen;

/// <summary>Command line. A scenario (S1–S5) sets the defaults; any flag overrides them.</summary>
internal sealed class Options
{
    public string Url { get; set; } = "http://127.0.0.1:8080";
    public string[] Urls { get; set; } = ["http://127.0.0.1:8080"]; // cluster: clients i -> node i % N, POSTs round-robin
    public string ApiKey { get; set; } = Environment.GetEnvironmentVariable("AUTHENTICATION_API_KEY") ?? "bench-key";
    public string Scenario { get; set; } = "S1";
    public string Label { get; set; } = "";
    public int Clients { get; set; } = 1000;
    public int Namespaces { get; set; } = 1;
    public int Events { get; set; } = 2000;
    public int Batch { get; set; } = 50;
    public int[] Rates { get; set; } = [];          // events/s, open loop; empty = max rate (closed loop)
    public double Seconds { get; set; } = 10;       // per rate
    public int Warmup { get; set; } = 200;          // events before the measured phase (not counted)
    public int Inflight { get; set; } = 4;          // concurrent POSTs at max rate
    public int Readers { get; set; } = 1;           // epoll reactor threads
    public int Sources { get; set; }                // 127.0.0.x source addresses (0 = one per 20,000 clients)
    public int Pid { get; set; }                    // server process for CPU and memory
    public int[] Pids { get; set; } = [];           // cluster: every node's process (CPU summed; memory of the first)
    public bool Idle { get; set; }                  // S4: connect, measure memory, hold
    public bool HoldFirst { get; set; }             // S6: connect, measure memory, hold, then post the events
    public double Settle { get; set; } = 3;         // S4: seconds after the last connect before sampling memory
    public double Hold { get; set; }                // S4: seconds to keep the clients connected afterwards
    public double Timeout { get; set; } = 300;      // hard limit for the whole run
    public double IdleTimeout { get; set; } = 3;    // a phase ends this long after the last delivery when messages are missing
    public string NsPrefix { get; set; } = "bench";
    public int MaxPendingHandshakes { get; set; } = 256;
    public int CoalesceMicros { get; set; } = -1;       // -1: 0 for rate phases (latency), 500 at max rate
    public bool SkipCreate { get; set; }

    public static Options Parse(string[] args)
    {
        var o = new Options();
        var sc = args.SkipWhile(a => a != "--scenario").Skip(1).FirstOrDefault() ?? (args.Length > 0 && !args[0].StartsWith('-') ? args[0] : "S1");
        o.ApplyScenario(sc.ToUpperInvariant());
        for (var i = 0; i < args.Length; i++)
        {
            var a = args[i];
            if (!a.StartsWith("--", StringComparison.Ordinal)) continue;
            string V() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{a} needs a value");
            switch (a)
            {
                case "--scenario": i++; break;
                case "--url":
                    o.Urls = V().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    o.Url = o.Urls[0];
                    break;
                case "--apikey": o.ApiKey = V(); break;
                case "--label": o.Label = V(); break;
                case "--clients": o.Clients = Int(V()); break;
                case "--namespaces": o.Namespaces = Int(V()); break;
                case "--events": o.Events = Int(V()); break;
                case "--batch": o.Batch = Int(V()); break;
                case "--rates": o.Rates = V().Split(',', StringSplitOptions.RemoveEmptyEntries).Select(Int).ToArray(); break;
                case "--seconds": o.Seconds = Dbl(V()); break;
                case "--warmup": o.Warmup = Int(V()); break;
                case "--inflight": o.Inflight = Int(V()); break;
                case "--readers": o.Readers = Int(V()); break;
                case "--sources": o.Sources = Int(V()); break;
                case "--pid":
                    o.Pids = V().Split(',', StringSplitOptions.RemoveEmptyEntries).Select(Int).ToArray();
                    o.Pid = o.Pids.FirstOrDefault();
                    break;
                case "--idle": o.Idle = true; break;
                case "--hold-first": o.HoldFirst = true; break;
                case "--settle": o.Settle = Dbl(V()); break;
                case "--hold": o.Hold = Dbl(V()); break;
                case "--timeout": o.Timeout = Dbl(V()); break;
                case "--idle-timeout": o.IdleTimeout = Dbl(V()); break;
                case "--ns-prefix": o.NsPrefix = V(); break;
                case "--max-pending": o.MaxPendingHandshakes = Int(V()); break;
                case "--skip-create": o.SkipCreate = true; break;
                case "--coalesce-us": o.CoalesceMicros = Int(V()); break;
                case "--help" or "-h": throw new ArgumentException(Usage);
                default: throw new ArgumentException($"unknown option {a}\n{Usage}");
            }
        }
        if (o.Urls.Select(u => new Uri(u).Host).Distinct().Count() > 1)
            throw new ArgumentException("--url: every node must be on the same loopback address (different ports)");
        var host = new Uri(o.Url).Host;
        if (!host.StartsWith("127.", StringComparison.Ordinal))
            throw new ArgumentException($"--url must target a loopback address 127.x.x.x (got {host})");
        if (o.Clients < 1 || o.Clients > 200_000) throw new ArgumentException("--clients must be 1..200000");
        if (o.Namespaces < 1 || o.Namespaces > o.Clients) throw new ArgumentException("--namespaces must be 1..clients");
        if (o.Events < 0 || o.Events > 10_000_000 || o.Batch < 1 || o.Warmup < 0) throw new ArgumentException("bad --events/--batch/--warmup");
        if (o.Rates.Any(r => r < 1 || r > 100_000)) throw new ArgumentException("--rates must be 1..100000 events/s");
        if (o.Timeout is <= 0 or > 3600) throw new ArgumentException("--timeout must be 1..3600 s");
        if (o.CoalesceMicros < 0) o.CoalesceMicros = o.Rates.Length > 0 ? 0 : 500;
        if (o.CoalesceMicros > 100_000) throw new ArgumentException("--coalesce-us must be <= 100000");
        if (o.Sources == 0) o.Sources = Math.Max(1, (o.Clients + 9_999) / 10_000);
        if (o.Sources > 250) throw new ArgumentException("--sources must be <= 250");
        return o;
    }

    private void ApplyScenario(string s)
    {
        Scenario = s;
        switch (s)
        {
            case "S1": Clients = 1000; Namespaces = 1; Events = 2000; Batch = 50; Warmup = 50; break;
            case "S2": Clients = 10_000; Namespaces = 100; Events = 2000; Batch = 50; Warmup = 200; break;
            case "S3": Clients = 1000; Namespaces = 1; Rates = [25, 50, 100, 200]; Seconds = 10; Batch = 1; Warmup = 50; break;
            case "S4": Clients = 10_000; Namespaces = 10; Events = 0; Warmup = 0; Idle = true; break;
            case "S5": Clients = 10_000; Namespaces = 1; Events = 60; Batch = 10; Warmup = 10; break;
            // 18,000 sockets in one process: 4 sources give 4 x 28k ephemeral ports (TIME_WAITs of earlier runs included)
            case "S6": Clients = 18_000; Namespaces = 10; Events = 10; Batch = 10; Warmup = 0; HoldFirst = true; Hold = 5; Sources = 4; break;
            default: throw new ArgumentException($"unknown scenario {s} (S1..S6)\n{Usage}");
        }
    }

    private static int Int(string v) => int.Parse(v, CultureInfo.InvariantCulture);
    private static double Dbl(string v) => double.Parse(v, CultureInfo.InvariantCulture);

    public const string Usage = """
        Evolution.Events.LoadGen [S1|S2|S3|S4|S5|S6] [options]
          --url http://127.0.0.1:8080   target (loopback only)      --apikey KEY    global key
                                        a cluster: --url u1,u2,.. (one host, several ports): client i connects
                                        to node i % N, POSTs go round-robin over the nodes
          --pid PID                     server process: CPU (/proc/PID/stat) and memory (/proc/PID/status);
                                        a cluster: --pid p1,p2,.. (CPU summed over them, memory of the first)
          --clients N --namespaces K    Socket.IO clients spread over K namespaces /{prefix}-{k}
          --events E --batch B          events posted to /webhook, B per POST (max rate, --inflight POSTs at once)
          --rates 25,50,.. --seconds T  open-loop phases: one event per POST at each rate for T s
          --warmup W                    events posted (and awaited) before measuring
          --idle [--settle s --hold s]  connect only; server memory per connection
          --hold-first                  memory per connection after --settle, hold --hold s, then post the events
          --readers R --sources S       reactor threads; 127.0.0.x source addresses (default 1 per 10k clients)
          --coalesce-us U               reader sleeps U µs after a wake-up with few ready sockets (default 500 at
                                        max rate, 0 in rate phases: latency exact, more reader CPU per message)
          --timeout s --idle-timeout s  bounds; --label name; --ns-prefix p; --skip-create
        Scenarios: S1 1 ns x 1,000 clients, 2,000 events / 50; S2 100 ns x 100 clients, 2,000 events / 50;
          S3 1,000 clients at 25/50/100/200 ev/s x 10 s; S4 10,000 idle clients; S5 10,000 clients at max rate;
          S6 18,000 clients over 10 namespaces held idle (memory per connection), then one event to each.
        Prints a table, then one JSON line.
        """;
}

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Evolution.Events.Gateway.Tests;

/// <summary>
/// The built gateway as a child process (<c>dotnet Evolution.Events.Gateway.dll</c>) on a free loopback port with
/// its own database. Its stdout is either collected line by line, or left unread so that the pipe fills up
/// (a stalled log driver). Stderr is always drained.
/// </summary>
internal sealed class GatewayProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _stdout = [];
    private readonly StringBuilder _stderr = new();
    private readonly string _dir;

    private GatewayProcess(Process process, string dir, int port)
    {
        _process = process;
        _dir = dir;
        BaseUri = new Uri($"http://127.0.0.1:{port}/");
    }

    public Uri BaseUri { get; }

    public int Id => _process.Id;

    /// <summary>The process's working directory (a fresh temp folder, deleted on dispose).</summary>
    public string Directory => _dir;

    public static GatewayProcess Start(Dictionary<string, string> environment, bool readStdout, params string[] args)
    {
        var dir = Path.Combine(Path.GetTempPath(), "gw-proc-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(dir);
        var port = FreePort();
        var dll = typeof(GatewayApp).Assembly.Location;
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = dir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(dll);
        foreach (var arg in args)
            info.ArgumentList.Add(arg);
        // hermetic: none of the gateway's settings from the environment running the tests reach the process
        foreach (var name in info.Environment.Keys.Where(IsGatewaySetting).ToList())
            info.Environment.Remove(name);
        info.Environment["SERVER_PORT"] = port.ToString();
        info.Environment["DATABASE_PATH"] = Path.Combine(dir, "gateway.db");
        info.Environment["AUTHENTICATION_API_KEY"] = TestGateway.Key;
        foreach (var (k, v) in environment)
            info.Environment[k] = v.Replace("{port}", port.ToString(), StringComparison.Ordinal); // e.g. ASPNETCORE_URLS=http://127.0.0.1:{port}
        var process = Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start");
        var gateway = new GatewayProcess(process, dir, port);
        if (readStdout)
        {
            process.OutputDataReceived += (_, e) =>
            {
                if (e.Data is not null)
                    lock (gateway._stdout)
                        gateway._stdout.Add(e.Data);
            };
            process.BeginOutputReadLine();
        }
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                lock (gateway._stderr)
                    gateway._stderr.AppendLine(e.Data);
        };
        process.BeginErrorReadLine();
        return gateway;
    }

    /// <summary>The stdout lines read so far.</summary>
    public List<string> StdoutLines()
    {
        lock (_stdout)
            return [.. _stdout];
    }

    public string Stderr()
    {
        lock (_stderr)
            return _stderr.ToString();
    }

    /// <summary>Waits until <c>/health/live</c> answers 200 (30 s at most).</summary>
    public async Task WaitReadyAsync(HttpClient http)
    {
        // a process start (JIT, Redis connection) on a loaded 2-core machine: 30 s was seen to run out at load 35
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (DateTime.UtcNow < deadline)
        {
            Assert.False(_process.HasExited, $"the gateway exited with {(_process.HasExited ? _process.ExitCode : 0)}: {Stderr()}");
            try
            {
                using var response = await http.GetAsync(new Uri(BaseUri, "/health/live"));
                if (response.StatusCode == HttpStatusCode.OK)
                    return;
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(100);
        }
        Assert.Fail($"the gateway did not answer within 90 s: {Stderr()}");
    }

    /// <summary>Sends SIGKILL (a crash, an OOM kill): no shutdown code runs.</summary>
    public async Task KillAsync()
    {
        _process.Kill();
        await Evolution.Events.Testing.BoundedProcess.WaitForExitAsync(_process, TimeSpan.FromSeconds(30), "the killed gateway");
    }

    public bool HasExited => _process.HasExited;

    /// <summary>Sends SIGTERM (what <c>docker stop</c> sends).</summary>
    public async Task TerminateAsync()
    {
        using var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-TERM", _process.Id.ToString() } })!;
        await Evolution.Events.Testing.BoundedProcess.WaitForExitAsync(kill, TimeSpan.FromSeconds(30), "kill -TERM");
        Assert.Equal(0, kill.ExitCode);
    }

    /// <summary>The exit code, or null when the process is still running after <paramref name="timeout"/>.</summary>
    public async Task<int?> WaitForExitAsync(TimeSpan timeout)
    {
        try
        {
            await _process.WaitForExitAsync().WaitAsync(timeout);
            return _process.ExitCode;
        }
        catch (TimeoutException)
        {
            return null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            await Evolution.Events.Testing.BoundedProcess.KillTreeAsync(_process, "the gateway");
        }
        _process.Dispose();
        try
        {
            System.IO.Directory.Delete(_dir, true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>A variable the gateway reads (its settings' prefixes, and ASP.NET Core's own).</summary>
    private static bool IsGatewaySetting(string name) =>
        GatewaySettingPrefixes.Any(prefix => name.StartsWith(prefix, StringComparison.OrdinalIgnoreCase));

    private static readonly string[] GatewaySettingPrefixes =
    [
        "AUTHENTICATION_", "WEBSOCKET_", "SERVER_", "INBOUND_", "REDIS_", "RABBITMQ_", "METRICS_", "LOG_", "WEBHOOK_",
        "TRUSTED_", "DATABASE_", "CORS_", "NODE_", "ASPNETCORE_",
    ];

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

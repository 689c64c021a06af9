using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace Evolution.Events.Testing;

/// <summary>Options of a <see cref="RedisServer"/>.</summary>
public sealed record RedisServerOptions
{
    /// <summary>Runs with <c>--appendonly yes --appendfsync always</c> in <see cref="Directory"/> (data survives a restart).</summary>
    public bool AppendOnly { get; init; }

    /// <summary>The working directory (AOF files); a new temp directory when null. Deleted on dispose only when created here.</summary>
    public string? Directory { get; init; }

    /// <summary><c>--requirepass</c>, or null for none.</summary>
    public string? Password { get; init; }
}

/// <summary>
/// A real <c>redis-server</c> (the Debian package; <c>REDIS_SERVER</c> overrides the binary) on a free
/// 127.0.0.1 port, started and stopped by its process id. <see cref="StopAsync"/> and
/// <see cref="StartAsync()"/> again on the same object simulate Redis going down and coming back on the
/// same port. Every server still running when the test host exits is killed.
/// A missing <c>redis-server</c> fails the test with a message saying how to install it (never a skip).
/// </summary>
public sealed partial class RedisServer : IAsyncDisposable
{
    private static readonly ConcurrentDictionary<RedisServer, byte> Running = new();
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(15);
    private readonly RedisServerOptions _options;
    private readonly bool _ownsDirectory;
    private readonly StringBuilder _output = new();
    private Process? _process;

    static RedisServer() => AppDomain.CurrentDomain.ProcessExit += (_, _) =>
    {
        foreach (var server in Running.Keys)
            server.KillNow();
    };

    private RedisServer(RedisServerOptions options, int port)
    {
        _options = options;
        Port = port;
        _ownsDirectory = options.Directory is null;
        Directory = options.Directory ?? Path.Combine(Path.GetTempPath(), "redis-test-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Directory);
    }

    /// <summary>The TCP port on 127.0.0.1 (the same across restarts).</summary>
    public int Port { get; }

    /// <summary>The server's working directory (where an AOF goes).</summary>
    public string Directory { get; }

    /// <summary>True while the process runs.</summary>
    public bool IsRunning => _process is { HasExited: false };

    /// <summary>The pid of the running process, or null.</summary>
    public int? ProcessId => IsRunning ? _process!.Id : null;

    /// <summary><c>redis://[:password@]127.0.0.1:port/db</c>.</summary>
    public string Uri(int database = 0) =>
        $"redis://{(_options.Password is null ? "" : $":{System.Uri.EscapeDataString(_options.Password)}@")}127.0.0.1:{Port}/{database}";

    /// <summary>Starts a server on a free port and waits until it answers PING.</summary>
    public static async Task<RedisServer> StartAsync(RedisServerOptions? options = null)
    {
        options ??= new RedisServerOptions();
        Exception? last = null;
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var server = new RedisServer(options, FreePort());
            try
            {
                await server.StartAsync();
                return server;
            }
            catch (InvalidOperationException ex) when (!server.IsRunning)
            {
                // Most likely the port was taken between choosing and binding it: try another one.
                last = ex;
                await server.DisposeAsync();
            }
        }
        throw new InvalidOperationException("redis-server did not start in 5 attempts", last);
    }

    /// <summary>(Re)starts the process on <see cref="Port"/> and waits until it answers PING.</summary>
    public async Task StartAsync()
    {
        if (IsRunning)
            return;
        var info = new ProcessStartInfo(FindBinary())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Directory,
        };
        foreach (var arg in new[] { "--port", Port.ToString(), "--bind", "127.0.0.1", "--save", "", "--dir", Directory,
                     "--daemonize", "no", "--logfile", "", "--protected-mode", "no" })
            info.ArgumentList.Add(arg);
        info.ArgumentList.Add("--appendonly");
        info.ArgumentList.Add(_options.AppendOnly ? "yes" : "no");
        if (_options.AppendOnly)
        {
            info.ArgumentList.Add("--appendfsync");
            info.ArgumentList.Add("always");
        }
        if (_options.Password is not null)
        {
            info.ArgumentList.Add("--requirepass");
            info.ArgumentList.Add(_options.Password);
        }
        var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
        Running[this] = 0;
        var deadline = Stopwatch.StartNew();
        while (!await PingAsync())
        {
            if (process.HasExited || deadline.Elapsed > ReadyTimeout)
            {
                KillNow();
                throw new InvalidOperationException(
                    $"redis-server on port {Port} did not answer PING within {ReadyTimeout.TotalSeconds} s. Output:\n{Output}");
            }
            await Task.Delay(20);
        }
    }

    /// <summary>
    /// Stops the process by its pid: SIGTERM (Redis flushes its AOF and exits), or SIGKILL when
    /// <paramref name="graceful"/> is false or it has not exited after 10 s.
    /// </summary>
    public async Task StopAsync(bool graceful = true)
    {
        if (_process is not { } process)
            return;
        if (!process.HasExited)
        {
            if (graceful && NativeMethods.Kill(process.Id, NativeMethods.SigTerm) == 0)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                try
                {
                    await process.WaitForExitAsync(timeout.Token);
                }
                catch (OperationCanceledException)
                {
                    process.Kill(entireProcessTree: true);
                }
            }
            else
            {
                process.Kill(entireProcessTree: true); // with a forked child (an AOF rewrite), which holds the output too
            }
            // bounded: a killed tree is gone in milliseconds; a process that stays is an error, not a hang
            await BoundedProcess.WaitForExitAsync(process, TimeSpan.FromSeconds(30), $"redis-server on port {Port}");
        }
        process.Dispose();
        _process = null;
        Running.TryRemove(this, out _);
    }

    /// <summary>Whether the server answers PING now.</summary>
    public async Task<bool> PingAsync()
    {
        try
        {
            using var client = new TcpClient();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await client.ConnectAsync(IPAddress.Loopback, Port, timeout.Token);
            var stream = client.GetStream();
            var command = _options.Password is null ? "PING\r\n" : $"AUTH {_options.Password}\r\nPING\r\n";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(command), timeout.Token);
            var buffer = new byte[256];
            var text = "";
            while (!text.Contains("+PONG", StringComparison.Ordinal) && !text.Contains('-', StringComparison.Ordinal))
            {
                var read = await stream.ReadAsync(buffer, timeout.Token);
                if (read == 0)
                    return false;
                text += Encoding.ASCII.GetString(buffer, 0, read);
            }
            return text.Contains("+PONG", StringComparison.Ordinal) && !text.Contains("-LOADING", StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>What the server printed (for failure messages).</summary>
    public string Output
    {
        get
        {
            lock (_output)
                return _output.ToString();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(graceful: false);
        if (_ownsDirectory)
        {
            try
            {
                System.IO.Directory.Delete(Directory, true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>The redis-server binary: REDIS_SERVER, else the PATH; a clear failure when there is none.</summary>
    public static string FindBinary()
    {
        if (Environment.GetEnvironmentVariable("REDIS_SERVER") is { Length: > 0 } configured)
            return configured;
        var found = (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin").Split(Path.PathSeparator)
            .Append("/usr/bin").Append("/usr/sbin")
            .Select(dir => Path.Combine(dir, "redis-server"))
            .FirstOrDefault(File.Exists);
        return found ?? throw new InvalidOperationException(
            "redis-server is not installed: run scripts/install-prerequisites.sh (apt-get install redis-server) "
            + "or set REDIS_SERVER to its path");
    }

    private void Append(string? line)
    {
        if (line is null)
            return;
        lock (_output)
        {
            if (_output.Length < 64 * 1024)
                _output.AppendLine(line);
        }
    }

    private void KillNow()
    {
        try
        {
            if (_process is { HasExited: false } process)
                process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
        }
        Running.TryRemove(this, out _);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static partial class NativeMethods
    {
        public const int SigTerm = 15;

        [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
        public static partial int Kill(int pid, int signal);
    }
}

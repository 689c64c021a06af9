using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace Evolution.Events.Testing;

/// <summary>
/// A real RabbitMQ broker (the Debian package <c>rabbitmq-server</c>; <c>RABBITMQ_SERVER</c> overrides the script)
/// run as a private node: a unique node name, free 127.0.0.1 ports (AMQP, distribution, epmd), its own temp
/// directories (database, logs, Erlang cookie), no plugins. Started and stopped by process id;
/// <see cref="StopAsync"/> then <see cref="StartAsync"/> on the same object restarts it with the same data and
/// port (durable queues and their messages survive). The node's <c>epmd</c> daemon outlives the broker: it is
/// found by its environment (its <c>ERL_EPMD_PORT</c>) and stopped by its pid on dispose.
/// A missing rabbitmq-server fails the test with a message saying how to install it (never a skip).
/// </summary>
public sealed partial class RabbitMQServer : IAsyncDisposable
{
    private const string DefaultScript = "/usr/lib/rabbitmq/bin/rabbitmq-server";
    private static readonly ConcurrentDictionary<RabbitMQServer, byte> Running = new();
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(90);
    private readonly StringBuilder _output = new();
    private Process? _process;

    static RabbitMQServer() => AppDomain.CurrentDomain.ProcessExit += (_, _) =>
    {
        foreach (var server in Running.Keys)
            server.KillNow();
    };

    private RabbitMQServer(int port, int distPort, int epmdPort)
    {
        Port = port;
        DistPort = distPort;
        EpmdPort = epmdPort;
        NodeName = $"evt-test-{Guid.NewGuid():N}"[..20] + "@localhost";
        Directory = Path.Combine(Path.GetTempPath(), "rabbitmq-test-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Path.Combine(Directory, "mnesia"));
        System.IO.Directory.CreateDirectory(Path.Combine(Directory, "log"));
        File.WriteAllText(Path.Combine(Directory, "enabled_plugins"), "");
    }

    /// <summary>The AMQP port on 127.0.0.1 (the same across restarts).</summary>
    public int Port { get; }

    /// <summary>The Erlang distribution port.</summary>
    public int DistPort { get; }

    /// <summary>The port of this node's own epmd.</summary>
    public int EpmdPort { get; }

    /// <summary>The unique Erlang node name.</summary>
    public string NodeName { get; }

    /// <summary>The node's temp directory (database, logs, cookie).</summary>
    public string Directory { get; }

    public bool IsRunning => _process is { HasExited: false };

    /// <summary><c>amqp://guest:guest@127.0.0.1:port/</c> (guest may log in from loopback).</summary>
    public string Uri => $"amqp://guest:guest@127.0.0.1:{Port}/";

    /// <summary>Starts a broker on free ports and waits until it speaks AMQP.</summary>
    public static async Task<RabbitMQServer> StartNewAsync()
    {
        FindScript(); // a missing broker fails here, with the message saying how to install it
        Exception? last = null;
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var server = new RabbitMQServer(FreePort(), FreePort(), FreePort());
            try
            {
                await server.StartAsync();
                return server;
            }
            catch (InvalidOperationException ex) when (!server.IsRunning)
            {
                last = ex; // most likely a port taken between choosing and binding it
                await server.DisposeAsync();
            }
        }
        throw new InvalidOperationException("rabbitmq-server did not start in 3 attempts", last);
    }

    /// <summary>(Re)starts the broker on <see cref="Port"/> and waits until it answers the AMQP protocol header.</summary>
    public async Task StartAsync()
    {
        if (IsRunning)
            return;
        var info = new ProcessStartInfo(FindScript())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Directory,
        };
        var env = info.Environment;
        env["HOME"] = Directory; // the Erlang cookie goes there, not into the user's home
        env["RABBITMQ_NODENAME"] = NodeName;
        env["RABBITMQ_NODE_IP_ADDRESS"] = "127.0.0.1";
        env["RABBITMQ_NODE_PORT"] = Port.ToString();
        env["RABBITMQ_DIST_PORT"] = DistPort.ToString();
        env["ERL_EPMD_PORT"] = EpmdPort.ToString();
        env["ERL_EPMD_ADDRESS"] = "127.0.0.1";
        env["RABBITMQ_MNESIA_BASE"] = Path.Combine(Directory, "mnesia");
        env["RABBITMQ_LOG_BASE"] = Path.Combine(Directory, "log");
        env["RABBITMQ_ENABLED_PLUGINS_FILE"] = Path.Combine(Directory, "enabled_plugins");
        // none of the machine's configuration (/etc/rabbitmq) applies to this node
        env["RABBITMQ_CONF_ENV_FILE"] = Path.Combine(Directory, "rabbitmq-env.conf");
        env["RABBITMQ_CONFIG_FILE"] = Path.Combine(Directory, "rabbitmq.conf");
        env["RABBITMQ_ADVANCED_CONFIG_FILE"] = Path.Combine(Directory, "advanced.config");
        env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] = "-kernel inet_dist_use_interface {127,0,0,1}";
        var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
        Running[this] = 0;
        var deadline = Stopwatch.StartNew();
        while (!await SpeaksAmqpAsync())
        {
            if (process.HasExited || deadline.Elapsed > ReadyTimeout)
            {
                KillNow();
                throw new InvalidOperationException(
                    $"rabbitmq-server on port {Port} did not answer within {ReadyTimeout.TotalSeconds} s. Output:\n{Output}");
            }
            await Task.Delay(100);
        }
    }

    /// <summary>
    /// Stops the broker by its pid: SIGTERM (the script stops the node cleanly), or SIGKILL to the Erlang VM and
    /// the script when <paramref name="graceful"/> is false or it has not exited after 30 s. epmd keeps running.
    /// </summary>
    public async Task StopAsync(bool graceful = true)
    {
        if (_process is not { } process)
            return;
        if (!process.HasExited)
        {
            if (graceful && NativeMethods.Kill(process.Id, NativeMethods.SigTerm) == 0)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
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
                process.Kill(entireProcessTree: true);
            }
            // bounded: a killed tree is gone in milliseconds; a process that stays is an error, not a hang
            await BoundedProcess.WaitForExitAsync(process, TimeSpan.FromSeconds(30), $"rabbitmq-server on port {Port}");
        }
        process.Dispose();
        _process = null;
        Running.TryRemove(this, out _);
    }

    /// <summary>Whether the broker answers the AMQP 0-9-1 protocol header with a Connection.Start frame now.</summary>
    public async Task<bool> SpeaksAmqpAsync()
    {
        try
        {
            using var client = new TcpClient();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(3));
            await client.ConnectAsync(IPAddress.Loopback, Port, timeout.Token);
            var stream = client.GetStream();
            await stream.WriteAsync("AMQP\0\0\x09\x01"u8.ToArray(), timeout.Token);
            var buffer = new byte[7];
            var read = await stream.ReadAsync(buffer, timeout.Token);
            return read >= 1 && buffer[0] == 1; // a METHOD frame (Connection.Start)
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>What the broker printed (for failure messages).</summary>
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
        StopEpmd();
        try
        {
            System.IO.Directory.Delete(Directory, true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>The rabbitmq-server script: RABBITMQ_SERVER, else the Debian package's; a clear failure when there is none.</summary>
    public static string FindScript()
    {
        if (Environment.GetEnvironmentVariable("RABBITMQ_SERVER") is { Length: > 0 } configured)
            return configured;
        return File.Exists(DefaultScript)
            ? DefaultScript
            : throw new InvalidOperationException(
                $"rabbitmq-server is not installed ({DefaultScript} is missing): run scripts/install-prerequisites.sh "
                + "(apt-get install -y rabbitmq-server) or set RABBITMQ_SERVER to the rabbitmq-server script");
    }

    /// <summary>Stops this node's epmd: the process named epmd whose environment has our ERL_EPMD_PORT.</summary>
    private void StopEpmd()
    {
        var marker = Encoding.ASCII.GetBytes($"ERL_EPMD_PORT={EpmdPort}\0");
        foreach (var dir in System.IO.Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
                continue;
            try
            {
                if (File.ReadAllText(Path.Combine(dir, "comm")).Trim() != "epmd")
                    continue;
                var environ = File.ReadAllBytes(Path.Combine(dir, "environ"));
                if (environ.AsSpan().IndexOf(marker) >= 0)
                    NativeMethods.Kill(pid, NativeMethods.SigTerm);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // gone meanwhile, or not ours to read
            }
        }
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
        StopEpmd();
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

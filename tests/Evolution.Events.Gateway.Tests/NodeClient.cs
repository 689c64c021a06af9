using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace Evolution.Events.Gateway.Tests;

/// <summary>
/// A Node script of tests/interop/gateway run as a child process: its stdout JSON lines are read
/// as they come, commands go to its stdin. Node and tests/interop/node_modules are required: when
/// either is missing the test fails with a message saying what to install (never skips, CI or not).
/// </summary>
public sealed class NodeClient : IAsyncDisposable
{
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);
    private static readonly Lazy<string> InteropDirectory = new(LocateInterop);
    private readonly Process _process;
    private readonly Channel<JsonObject> _lines = Channel.CreateUnbounded<JsonObject>();
    private readonly StringBuilder _stderr = new();
    private readonly List<string> _seen = [];
    private readonly string _script;

    private NodeClient(Process process, string script)
    {
        _process = process;
        _script = script;
    }

    /// <summary>Starts <c>node tests/interop/gateway/&lt;script&gt; args…</c>.</summary>
    public static NodeClient Start(string script, params string[] args)
    {
        var dir = InteropDirectory.Value;
        var info = new ProcessStartInfo("node")
        {
            WorkingDirectory = dir,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(dir, "gateway", script));
        foreach (var a in args)
            info.ArgumentList.Add(a);
        var process = Process.Start(info) ?? throw new InvalidOperationException("node did not start");
        var client = new NodeClient(process, script);
        process.OutputDataReceived += (_, e) => client.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                lock (client._stderr)
                    client._stderr.AppendLine(e.Data);
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return client;
    }

    /// <summary>Runs a script to its end and returns its JSON lines (fails on a non-zero exit).</summary>
    public static async Task<List<JsonObject>> RunAsync(string script, params string[] args)
    {
        await using var node = Start(script, args);
        var code = await node.WaitForExitAsync();
        var lines = new List<JsonObject>();
        while (node._lines.Reader.TryRead(out var line))
            lines.Add(line);
        Assert.True(code == 0, $"{script} exited with {code}: {node.Describe()}");
        return lines;
    }

    /// <summary>The next line matching <paramref name="match"/> (lines before it are skipped); fails after the timeout.</summary>
    public async Task<JsonObject> NextAsync(Func<JsonObject, bool>? match = null, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        try
        {
            while (true)
            {
                var line = await _lines.Reader.ReadAsync(cts.Token);
                if (match is null || match(line))
                    return line;
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ChannelClosedException)
        {
            Assert.Fail($"{_script}: no matching line within {(timeout ?? DefaultTimeout).TotalSeconds} s. {Describe()}");
            throw;
        }
    }

    /// <summary>The next line whose "type" is <paramref name="type"/>.</summary>
    public Task<JsonObject> NextOfTypeAsync(string type, TimeSpan? timeout = null) =>
        NextAsync(l => (string?)l["type"] == type, timeout);

    /// <summary>The next Socket.IO event line (<c>{"type":"event","event":…,"args":[…]}</c>).</summary>
    public Task<JsonObject> NextEventAsync(TimeSpan? timeout = null) => NextOfTypeAsync("event", timeout);

    /// <summary>Waits <paramref name="quiet"/> and asserts no line of type "event" arrived meanwhile.</summary>
    public async Task AssertNoEventAsync(TimeSpan quiet)
    {
        await Task.Delay(quiet);
        while (_lines.Reader.TryRead(out var line))
            Assert.False((string?)line["type"] == "event", $"unexpected event: {line.ToJsonString()}");
    }

    public async Task SendAsync(JsonObject command)
    {
        await _process.StandardInput.WriteLineAsync(command.ToJsonString());
        await _process.StandardInput.FlushAsync();
    }

    public async Task<int> WaitForExitAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(20));
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"{_script} did not exit in time. {Describe()}");
        }
        // drains the redirected streams, bounded (a child of the script could hold them open)
        await Evolution.Events.Testing.BoundedProcess.WaitForExitAsync(_process, TimeSpan.FromSeconds(10), _script);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.StandardInput.Close();
                using var grace = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
                try
                {
                    await _process.WaitForExitAsync(grace.Token);
                }
                catch (OperationCanceledException)
                {
                    _process.Kill(entireProcessTree: true);
                }
            }
        }
        catch (InvalidOperationException)
        {
        }
        catch (IOException)
        {
        }
        _process.Dispose();
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            _lines.Writer.TryComplete();
            return;
        }
        lock (_seen)
            _seen.Add(line);
        JsonObject? json = null;
        try
        {
            json = JsonNode.Parse(line) as JsonObject;
        }
        catch (System.Text.Json.JsonException)
        {
        }
        _lines.Writer.TryWrite(json ?? new JsonObject { ["type"] = "text", ["text"] = line });
    }

    private string Describe()
    {
        string stdout, stderr;
        lock (_seen)
            stdout = string.Join('\n', _seen.TakeLast(20));
        lock (_stderr)
            stderr = _stderr.ToString();
        return $"stdout so far:\n{stdout}\nstderr:\n{stderr}";
    }

    private static string LocateInterop()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Evolution.Events.sln")))
            dir = dir.Parent;
        if (dir is null)
            throw new InvalidOperationException($"repository root (Evolution.Events.sln) not found above {AppContext.BaseDirectory}");
        var interop = Path.Combine(dir.FullName, "tests", "interop");
        string version;
        try
        {
            // bounded: a node that does not answer is killed and named, never waited on forever
            version = Evolution.Events.Testing.BoundedProcess.RunAsync(new ProcessStartInfo("node", "--version"), TimeSpan.FromSeconds(30))
                .GetAwaiter().GetResult().Stdout.Trim();
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException(
                "These tests need Node.js 20+ on PATH (node was not found: " + ex.Message + "). Install node, then run `npm ci` in tests/interop.", ex);
        }
        foreach (var package in new[] { "socket.io-client", "ws" })
        {
            if (!File.Exists(Path.Combine(interop, "node_modules", package, "package.json")))
                throw new InvalidOperationException(
                    $"tests/interop/node_modules/{package} is missing (node {version}). Run `npm ci` in {interop} before these tests.");
        }
        return interop;
    }
}

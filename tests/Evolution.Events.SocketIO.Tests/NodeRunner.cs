using Evolution.Events.Testing;
using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;

namespace Evolution.Events.SocketIO.Tests;

/// <summary>What a Node scenario printed: one JSON object per stdout line.</summary>
public sealed class NodeResult(IReadOnlyList<JsonObject> lines, string stdout, string stderr)
{
    public IReadOnlyList<JsonObject> Lines { get; } = lines;

    public string Output => "stdout:\n" + stdout + "\nstderr:\n" + stderr;

    public IEnumerable<JsonObject> All(string eventName) => Lines.Where(l => (string?)l["event"] == eventName);

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1720:Identifier contains type name", Justification = "LINQ's name for exactly one.")]
    public JsonObject Single(string eventName)
    {
        var found = All(eventName).ToList();
        Assert.True(found.Count == 1, $"expected one \"{eventName}\" line, got {found.Count}\n{Output}");
        return found[0];
    }
}

/// <summary>
/// Runs a tests/interop scenario with <c>node</c>. A missing node or a missing
/// tests/interop/node_modules FAILS the test (locally and under CI=true): these tests never pass
/// silently without the real client.
/// </summary>
public static class NodeRunner
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(25);
    private static readonly Lazy<(string? Node, string InteropDir, string? Problem)> Setup = new(Locate);

    public static string InteropDir => Setup.Value.InteropDir;

    public static Task<NodeResult> RunAsync(string script, string url, params string[] args) => RunAsync(Timeout, script, url, args);

    /// <summary>Runs a scenario that may take longer than the default 25 s (e.g. one that waits through network cuts).</summary>
    public static Task<NodeResult> RunAsync(TimeSpan timeout, string script, string url, params string[] args) =>
        RunAsync(timeout, null, script, url, args);

    /// <summary>Runs a scenario whose clients use socket.io-msgpack-parser (lib.mjs reads <c>SIO_PARSER=msgpack</c>).</summary>
    public static Task<NodeResult> RunMsgPackAsync(TimeSpan timeout, string script, string url, params string[] args) =>
        RunAsync(timeout, "msgpack", script, url, args);

    public static Task<NodeResult> RunMsgPackAsync(string script, string url, params string[] args) =>
        RunAsync(Timeout, "msgpack", script, url, args);

    private static async Task<NodeResult> RunAsync(TimeSpan timeout, string? parser, string script, string url, string[] args)
    {
        var (node, dir, problem) = Setup.Value;
        if (problem is not null)
        {
            Assert.Fail(problem);
        }

        var start = new ProcessStartInfo(node!)
        {
            WorkingDirectory = dir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
        };
        start.ArgumentList.Add(Path.Combine(dir, script));
        start.ArgumentList.Add(url);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["NODE_NO_WARNINGS"] = "1";
        start.Environment["SIO_PARSER"] = parser ?? "default";
        // bounded: on timeout the node process tree is killed and the test fails with what it printed
        ProcessResult run;
        try
        {
            run = await BoundedProcess.RunAsync(start, timeout);
        }
        catch (TimeoutException ex)
        {
            Assert.Fail($"node {script}: {ex.Message}");
            throw;
        }

        var output = run.Stdout;
        var errors = run.Stderr;
        var lines = new List<JsonObject>();
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (line.StartsWith('{') && JsonNode.Parse(line) is JsonObject obj)
            {
                lines.Add(obj);
            }
        }

        var result = new NodeResult(lines, output, errors);
        Assert.True(run.ExitCode == 0, $"node {script} exited with {run.ExitCode}\n{result.Output}");
        Assert.True(lines.Count > 0 && lines[^1]["done"] is not null, $"node {script} did not report done\n{result.Output}");
        return result;
    }

    private static (string? Node, string InteropDir, string? Problem) Locate()
    {
        var ci = string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);
        var where = ci ? " (CI=true: the Node interop tests are required)" : "";
        var dir = FindInteropDir();
        if (dir is null)
        {
            return (null, "", "tests/interop was not found above " + AppContext.BaseDirectory + where);
        }

        var node = FindOnPath(OperatingSystem.IsWindows() ? "node.exe" : "node");
        if (node is null)
        {
            return (null, dir, "node was not found on PATH: the Socket.IO interop tests need Node.js 18+ " +
                "and `tests/interop/install.sh` (npm ci)" + where);
        }

        if (!File.Exists(Path.Combine(dir, "node_modules", "socket.io-client", "package.json")))
        {
            return (node, dir, $"{Path.Combine(dir, "node_modules")} has no socket.io-client: run tests/interop/install.sh (npm ci) first" + where);
        }

        return (node, dir, null);
    }

    private static string? FindInteropDir()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "interop");
            if (File.Exists(Path.Combine(candidate, "package.json")))
            {
                return candidate;
            }
        }

        return null;
    }

    private static string? FindOnPath(string name)
    {
        foreach (var entry in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(entry, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}

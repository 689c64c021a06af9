using System.Diagnostics;
using System.Text;

namespace Evolution.Events.Testing;

/// <summary>What a finished process printed, and its exit code.</summary>
public sealed record ProcessResult(int ExitCode, string Stdout, string Stderr);

/// <summary>
/// Runs an external tool (esbuild, <c>node --version</c>, a gateway that must exit) with a deadline. A test never
/// waits on a child process, or on its output, without one: on timeout the whole process tree is killed (by pid)
/// and a <see cref="TimeoutException"/> names the command and shows what it printed so far.
/// </summary>
public static class BoundedProcess
{
    /// <summary>How long to wait for a killed process tree to go away before giving up on it.</summary>
    private static readonly TimeSpan KillWait = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Starts <paramref name="info"/> (stdout and stderr redirected, no shell) and waits at most
    /// <paramref name="timeout"/> for it to exit and close its output.
    /// </summary>
    public static async Task<ProcessResult> RunAsync(ProcessStartInfo info, TimeSpan timeout)
    {
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.UseShellExecute = false;
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        using var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => AppendLine(stdout, e.Data);
        process.ErrorDataReceived += (_, e) => AppendLine(stderr, e.Data);
        if (!process.Start())
            throw new InvalidOperationException($"{Describe(info)} did not start");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using (var deadline = new CancellationTokenSource(timeout))
        {
            try
            {
                // with event-based reading this also waits for the end of both streams
                await process.WaitForExitAsync(deadline.Token);
            }
            catch (OperationCanceledException)
            {
                var exited = process.HasExited;
                await KillTreeAsync(process, Describe(info));
                throw new TimeoutException(
                    (exited
                        ? $"{Describe(info)} exited with code {process.ExitCode} but its output stayed open for {timeout.TotalSeconds} s (a child process holds it)"
                        : $"{Describe(info)} (pid {process.Id}) did not finish within {timeout.TotalSeconds} s; its process tree was killed")
                    + $"\nstdout:\n{Text(stdout)}\nstderr:\n{Text(stderr)}");
            }
        }
        return new ProcessResult(process.ExitCode, Text(stdout), Text(stderr));
    }

    /// <summary>
    /// Kills <paramref name="process"/> and its descendants (by pid) and waits at most 10 s for it to exit;
    /// throws when it is still there. Returns at once for an exited process.
    /// </summary>
    public static async Task KillTreeAsync(Process process, string what)
    {
        try
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            return; // exited (or never started) in between
        }
        await WaitForExitAsync(process, KillWait, what);
    }

    /// <summary>
    /// Waits at most <paramref name="timeout"/> for <paramref name="process"/> to exit. Throws a
    /// <see cref="TimeoutException"/> naming <paramref name="what"/> when it has not (the caller decides whether to kill it).
    /// </summary>
    public static async Task WaitForExitAsync(Process process, TimeSpan timeout, string what)
    {
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException) when (process.HasExited)
        {
            // exited, but a child process still holds its redirected output: do not wait for that
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{what} (pid {process.Id}) did not exit within {timeout.TotalSeconds} s");
        }
    }

    private static string Describe(ProcessStartInfo info) =>
        string.Join(' ', new[] { info.FileName }.Concat(info.ArgumentList.Count > 0 ? info.ArgumentList : [info.Arguments]))
            .Trim();

    private static void AppendLine(StringBuilder text, string? line)
    {
        if (line is null)
            return;
        lock (text)
            text.AppendLine(line);
    }

    private static string Text(StringBuilder text)
    {
        lock (text)
            return text.ToString();
    }
}

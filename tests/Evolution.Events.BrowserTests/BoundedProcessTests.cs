using System.Diagnostics;
using Evolution.Events.Testing;

namespace Evolution.Events.BrowserTests;

/// <summary>
/// The helper that runs esbuild for the seed tests (<see cref="SeedPages.BundleSeed001ReactAsync"/>): a tool that hangs,
/// or leaves a child holding its output, fails the test with a clear message instead of hanging the run.
/// </summary>
public sealed class BoundedProcessTests
{
    [Fact]
    public async Task AHungTool_IsKilledWithItsTree_AndNamedWithItsOutput()
    {
        var info = new ProcessStartInfo("sh") { ArgumentList = { "-c", "echo started; sleep 600 & echo child $!; wait" } };
        var clock = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<TimeoutException>(() => BoundedProcess.RunAsync(info, TimeSpan.FromSeconds(2)));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"took {clock.Elapsed}");
        Assert.Contains("did not finish within 2 s; its process tree was killed", ex.Message);
        Assert.Contains("started", ex.Message); // what it printed so far
        // the shell's child (sleep 600) was killed with it
        var child = int.Parse(System.Text.RegularExpressions.Regex.Match(ex.Message, @"child (\d+)").Groups[1].Value);
        var deadline = Stopwatch.StartNew();
        while (Alive(child))
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30), $"the child process {child} still runs");
            await Task.Delay(50);
        }
    }

    /// <summary>Whether the process runs (not gone, not a zombie waiting to be reaped).</summary>
    private static bool Alive(int pid)
    {
        try
        {
            return !File.ReadAllText($"/proc/{pid}/status").Contains("State:\tZ", StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }

    [Fact]
    public async Task AToolThatExits_ButLeavesAChildHoldingItsOutput_DoesNotHang()
    {
        // the shell exits at once; its background child keeps stdout open for 20 s (and then exits by itself)
        var info = new ProcessStartInfo("sh") { ArgumentList = { "-c", "echo parent; sleep 20 &" } };
        var ex = await Assert.ThrowsAsync<TimeoutException>(() => BoundedProcess.RunAsync(info, TimeSpan.FromSeconds(2)));
        Assert.Contains("exited with code 0 but its output stayed open", ex.Message);
        Assert.Contains("parent", ex.Message);
    }

    [Fact]
    public async Task AToolThatFinishes_GivesItsExitCodeAndOutput()
    {
        var info = new ProcessStartInfo("sh") { ArgumentList = { "-c", "echo out; echo err >&2; exit 3" } };
        var result = await BoundedProcess.RunAsync(info, TimeSpan.FromSeconds(60));
        Assert.Equal(new ProcessResult(3, "out\n", "err\n"), result);
    }
}

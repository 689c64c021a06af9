using System.Globalization;

namespace Evolution.Events.LoadGen;

/// <summary>CPU time and memory of a process from /proc (Linux).</summary>
internal static class ProcStat
{
    private static readonly double TicksPerSecond = Math.Max(1, Native.sysconf(2 /* _SC_CLK_TCK */));

    /// <summary>(user, system) CPU seconds of the whole process (all threads), from /proc/pid/stat fields 14 and 15.</summary>
    public static (double User, double Sys) Cpu(int pid)
    {
        var text = File.ReadAllText($"/proc/{pid}/stat");
        var rest = text[(text.LastIndexOf(')') + 2)..].Split(' ');
        // rest[0] is field 3 (state); utime is field 14, stime field 15.
        return (long.Parse(rest[11], CultureInfo.InvariantCulture) / TicksPerSecond,
                long.Parse(rest[12], CultureInfo.InvariantCulture) / TicksPerSecond);
    }

    /// <summary>A field of /proc/pid/status in KiB (VmRSS, VmHWM), or -1.</summary>
    public static long StatusKb(int pid, string field)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (!line.StartsWith(field, StringComparison.Ordinal) || line.Length <= field.Length || line[field.Length] != ':') continue;
            var digits = new string(line.AsSpan(field.Length + 1).Trim().ToString().TakeWhile(char.IsDigit).ToArray());
            return long.Parse(digits, CultureInfo.InvariantCulture);
        }
        return -1;
    }

    /// <summary>Resets VmHWM to the current RSS (writes 5 to /proc/pid/clear_refs); false when not permitted.</summary>
    public static bool ResetPeak(int pid)
    {
        try { File.WriteAllText($"/proc/{pid}/clear_refs", "5"); return true; }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    public static bool Alive(int pid) => pid > 0 && File.Exists($"/proc/{pid}/stat");

    /// <summary>This process's CPU seconds (user, sys).</summary>
    public static (double User, double Sys) SelfCpu() => Cpu(Environment.ProcessId);
}

/// <summary>Samples a process's VmRSS every 50 ms and keeps the peak.</summary>
internal sealed class RssSampler : IDisposable
{
    private readonly int _pid;
    private readonly Thread _thread;
    private volatile bool _stop;
    public long PeakKb { get; private set; }

    public RssSampler(int pid)
    {
        _pid = pid;
        _thread = new Thread(Run) { IsBackground = true, Name = "rss-sampler" };
        _thread.Start();
    }

    private void Run()
    {
        for (var i = 0; i < 200_000 && !_stop; i++)
        {
            try
            {
                var kb = ProcStat.StatusKb(_pid, "VmRSS");
                if (kb > PeakKb) PeakKb = kb;
            }
            catch (IOException) { return; }
            Thread.Sleep(50);
        }
    }

    public void Dispose()
    {
        _stop = true;
        _thread.Join();
    }
}

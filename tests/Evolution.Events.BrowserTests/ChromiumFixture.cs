using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Evolution.Events.BrowserTests;

/// <summary>
/// Debian's Chromium (<c>/usr/bin/chromium</c>, or <c>CHROMIUM_PATH</c>) driven by Playwright, headless. Playwright's
/// own browser download is never used. A missing Chromium fails the tests with the command that installs it:
/// these tests never skip.
/// </summary>
public sealed class ChromiumFixture : IAsyncLifetime
{
    public static readonly string ExecutablePath =
        Environment.GetEnvironmentVariable("CHROMIUM_PATH") is { Length: > 0 } path ? path : "/usr/bin/chromium";

    /// <summary>How long each teardown step (page close, context close, browser close) may take before Chromium is killed.</summary>
    private static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(15);

    private readonly SemaphoreSlim _launch = new(1, 1);
    private IPlaywright? _playwright;
    private string _marker = "";
    private bool _killed;

    public IBrowser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        if (!File.Exists(ExecutablePath))
        {
            throw new InvalidOperationException(
                $"Chromium not found at {ExecutablePath}. Install it with 'apt-get update && apt-get install -y chromium' "
                + "(or set CHROMIUM_PATH). The browser tests do not skip, under CI or elsewhere.");
        }
        _playwright = await BoundedAsync(Playwright.CreateAsync(), TimeSpan.FromSeconds(60), "starting Playwright's driver");
        await LaunchAsync();
    }

    /// <summary>
    /// Launches Chromium with a switch of its own (<c>--evolution-events-browser-tests=&lt;guid&gt;</c>, which Chromium
    /// ignores) by which <see cref="KillBrowserAsync"/> finds its process when it has to be killed.
    /// </summary>
    private async Task LaunchAsync()
    {
        _marker = "--evolution-events-browser-tests=" + Guid.NewGuid().ToString("N");
        _killed = false;
        Browser = await _playwright!.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ExecutablePath,
            Headless = true,
            Timeout = 60_000,
            Args =
            [
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", _marker,
            ],
        });
    }

    public async Task DisposeAsync()
    {
        try
        {
            if (Browser is not null && !_killed && !await CompletesAsync(Browser.CloseAsync(), CloseTimeout))
                await KillBrowserAsync();
        }
        finally
        {
            _playwright?.Dispose(); // stops the driver process, and with it the browser
        }
    }

    /// <summary>
    /// A new page with a 15 s default timeout; the browser console goes to <paramref name="log"/>.
    /// <paramref name="ignoreHttpsErrors"/>: the context accepts a test's self-signed certificate (a page that names <c>wss://</c>).
    /// A Chromium killed by an earlier test's teardown (<see cref="ClosePageAsync"/>) is launched again first.
    /// </summary>
    public async Task<IPage> NewPageAsync(List<string> log, bool ignoreHttpsErrors = false)
    {
        await _launch.WaitAsync();
        try
        {
            if (_killed || !Browser.IsConnected)
                await LaunchAsync();
        }
        finally
        {
            _launch.Release();
        }

        var context = await BoundedAsync(Browser.NewContextAsync(new BrowserNewContextOptions
        {
            ViewportSize = new() { Width = 1360, Height = 900 },
            IgnoreHTTPSErrors = ignoreHttpsErrors,
        }), TimeSpan.FromSeconds(30), "opening a browser context");
        var page = await BoundedAsync(context.NewPageAsync(), TimeSpan.FromSeconds(30), "opening a page");
        page.SetDefaultTimeout(15_000);
        page.Console += (_, message) => log.Add($"[{message.Type}] {message.Text}");
        page.PageError += (_, error) => log.Add($"[pageerror] {error}");
        return page;
    }

    /// <summary>
    /// A test's teardown: closes the page (without running <c>beforeunload</c>), then its context, each bounded by
    /// 15 s. When Chromium does not answer, its process tree is killed (the next test gets a new Chromium) and the
    /// test goes on: teardown never hangs the run, and does not fail a test whose assertions all passed before it (a
    /// test that failed keeps its own exception). A kill is written to <paramref name="output"/>.
    /// </summary>
    public async Task ClosePageAsync(IPage page, ITestOutputHelper? output = null)
    {
        if (_killed)
            return;
        var what = "closing the page";
        var closed = await CompletesAsync(page.CloseAsync(new() { RunBeforeUnload = false }), CloseTimeout);
        if (closed)
        {
            what = "closing the browser context";
            closed = await CompletesAsync(page.Context.CloseAsync(), CloseTimeout);
        }

        if (!closed)
        {
            output?.WriteLine($"teardown: {what} did not finish within {CloseTimeout.TotalSeconds} s; Chromium was killed, the next test launches a new one");
            await KillBrowserAsync();
        }
    }

    /// <summary>
    /// Whether <paramref name="task"/> completes within <paramref name="timeout"/>. A Playwright call that fails
    /// (the target went away meanwhile) counts as done; the exception of one abandoned on timeout is observed.
    /// </summary>
    private static async Task<bool> CompletesAsync(Task task, TimeSpan timeout)
    {
        try
        {
            await task.WaitAsync(timeout);
            return true;
        }
        catch (TimeoutException)
        {
            _ = task.ContinueWith(t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            return false;
        }
        catch (PlaywrightException)
        {
            return true;
        }
    }

    /// <summary>
    /// Kills this fixture's Chromium: every process whose command line has this launch's switch (the browser's main
    /// process, or a launcher script that did not exec it), with its process tree, by pid.
    /// </summary>
    private async Task KillBrowserAsync()
    {
        _killed = true;
        var marker = System.Text.Encoding.UTF8.GetBytes(_marker + "\0");
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == Environment.ProcessId)
                continue;
            try
            {
                if (File.ReadAllBytes(Path.Combine(dir, "cmdline")).AsSpan().IndexOf(marker) < 0)
                    continue;
                using var process = System.Diagnostics.Process.GetProcessById(pid);
                await Evolution.Events.Testing.BoundedProcess.KillTreeAsync(process, $"Chromium (pid {pid})");
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or InvalidOperationException)
            {
                // gone meanwhile
            }
        }
    }

    /// <summary>
    /// Waits at most <paramref name="timeout"/> for a Playwright call that takes no timeout of its own (Playwright's
    /// page calls use the page's default timeout); a hung driver or browser fails the test with <paramref name="what"/>.
    /// </summary>
    public static async Task BoundedAsync(Task task, TimeSpan timeout, string what)
    {
        try
        {
            await task.WaitAsync(timeout);
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException($"{what} did not finish within {timeout.TotalSeconds} s (Playwright/Chromium hung)", ex);
        }
    }

    /// <inheritdoc cref="BoundedAsync(Task, TimeSpan, string)"/>
    public static async Task<T> BoundedAsync<T>(Task<T> task, TimeSpan timeout, string what)
    {
        await BoundedAsync((Task)task, timeout, what);
        return await task;
    }

    /// <summary>An uncaught exception in a page (Playwright's <c>pageerror</c>) fails the test: the page broke.</summary>
    public static void AssertNoPageErrors(List<string> log) =>
        Assert.DoesNotContain(log, line => line.StartsWith("[pageerror]", StringComparison.Ordinal));

    /// <summary>Where screenshots go: <c>tests/Evolution.Events.BrowserTests/TestResults/</c> (or BROWSER_TEST_ARTIFACTS).</summary>
    public static string ArtifactPath(string fileName)
    {
        var dir = Environment.GetEnvironmentVariable("BROWSER_TEST_ARTIFACTS") is { Length: > 0 } d
            ? d
            : Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "TestResults"));
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, fileName);
    }
}

[CollectionDefinition(Name)]
public sealed class ChromiumCollection : ICollectionFixture<ChromiumFixture>
{
    public const string Name = "chromium";
}

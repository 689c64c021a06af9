using Microsoft.Playwright;

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

    private IPlaywright? _playwright;

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
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ExecutablePath,
            Headless = true,
            Timeout = 60_000,
            Args =
            [
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run",
            ],
        });
    }

    public async Task DisposeAsync()
    {
        try
        {
            if (Browser is not null)
                await BoundedAsync(Browser.CloseAsync(), TimeSpan.FromSeconds(30), "closing Chromium");
        }
        finally
        {
            _playwright?.Dispose(); // stops the driver process, and with it the browser
        }
    }

    /// <summary>
    /// A new page with a 15 s default timeout; the browser console goes to <paramref name="log"/>.
    /// <paramref name="ignoreHttpsErrors"/>: the context accepts a test's self-signed certificate (a page that names <c>wss://</c>).
    /// </summary>
    public async Task<IPage> NewPageAsync(List<string> log, bool ignoreHttpsErrors = false)
    {
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

    /// <summary>Closes a page's context (and the page), failing instead of hanging when Chromium does not answer.</summary>
    public static Task ClosePageAsync(IPage page) =>
        BoundedAsync(page.Context.CloseAsync(), TimeSpan.FromSeconds(30), "closing the browser context");

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

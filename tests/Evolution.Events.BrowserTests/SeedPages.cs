using System.Net;
using Evolution.Events.Testing;
using Microsoft.Playwright;

namespace Evolution.Events.BrowserTests;

/// <summary>
/// The seeds' client code as the user documents hold it (<c>Seeds/</c>, copied byte-for-byte from the seed) and the
/// npm packages they load (<c>package.json</c> here: jQuery 3.5.1, socket.io-client 4.2.0, React, esbuild; installed by
/// <c>scripts/install-prerequisites.sh</c>). A missing install fails the test with the command that fixes it.
/// </summary>
internal static class SeedPages
{
    /// <summary>How long esbuild may take to bundle seed 001's React component (seconds on a quiet machine).</summary>
    public static readonly TimeSpan BundleTimeout = TimeSpan.FromSeconds(120);

    /// <summary>tests/Evolution.Events.BrowserTests (the source folder: package.json, node_modules, Seeds/).</summary>
    public static readonly string ProjectDirectory = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", ".."));

    /// <summary>A file of the installed npm packages, e.g. <c>jquery/dist/jquery.min.js</c>.</summary>
    public static string NodeModule(string relative)
    {
        var path = Path.Combine(ProjectDirectory, "node_modules", relative);
        if (!File.Exists(path))
        {
            throw new InvalidOperationException(
                $"{path} is missing: run 'npm ci' in {ProjectDirectory} (scripts/install-prerequisites.sh does). The browser tests do not skip.");
        }
        return path;
    }

    /// <summary>A seed file kept in <c>Seeds/</c>, as bytes on disk.</summary>
    public static string Seed(string fileName) => File.ReadAllText(Path.Combine(ProjectDirectory, "Seeds", fileName));

    /// <summary>
    /// Seed 001's PHP page with its three <c>&lt;?= htmlspecialchars(…); ?&gt;</c> values filled in, as PHP would print them
    /// (HTML-escaped); every other byte is the seed's. Fails if the page no longer has exactly these three.
    /// </summary>
    public static string Seed001QrPage(string domain, string uuid, string base64)
    {
        var page = Seed("seed-001-qrcode.php");
        page = Fill(page, "<?= htmlspecialchars($data->getServer()->domain); ?>", domain);
        page = Fill(page, "<?= htmlspecialchars($data->uuid); ?>", uuid);
        page = Fill(page, "<?= htmlspecialchars($instance->base64 ?? ''); ?>", base64);
        Assert.DoesNotContain("<?", page);
        return page;
    }

    /// <summary>
    /// Seed 001's React component (<c>Seeds/seed-001-QrCode.jsx</c>, byte-for-byte the seed's) bundled by esbuild with
    /// React 18 and socket.io-client 4.2.0 from npm, rendered as <c>&lt;QrCode base64={window.initialQr} /&gt;</c> into
    /// <c>#root</c>. The only change is the one the seed asks its reader to make: its placeholders
    /// <c>api.yoursite.com</c> and <c>instance_name</c> become the gateway's address and the instance.
    /// Returns the bundle's JavaScript.
    /// </summary>
    public static async Task<string> BundleSeed001ReactAsync(string domain, string instance)
    {
        var component = Seed("seed-001-QrCode.jsx");
        Assert.Contains("`wss://api.yoursite.com/instance_name`", component);
        component = component.Replace("`wss://api.yoursite.com/instance_name`", $"`wss://{domain}/{instance}`", StringComparison.Ordinal);
        // under the project folder, so esbuild finds node_modules by walking up
        var dir = Path.Combine(AppContext.BaseDirectory, "seed-react-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            await File.WriteAllTextAsync(Path.Combine(dir, "QrCode.jsx"), component);
            await File.WriteAllTextAsync(Path.Combine(dir, "entry.jsx"), """
                import React from "react";
                import { createRoot } from "react-dom/client";
                import QrCode from "./QrCode.jsx";

                createRoot(document.getElementById("root")).render(<QrCode base64={window.initialQr} />);
                """);
            var esbuild = NodeModule(Path.Combine(".bin", "esbuild"));
            var info = new System.Diagnostics.ProcessStartInfo(esbuild) { WorkingDirectory = dir };
            foreach (var arg in new[] { "entry.jsx", "--bundle", "--platform=browser", "--format=iife", "--outfile=app.js",
                         "--define:process.env.NODE_ENV=\"production\"", "--log-level=error" })
                info.ArgumentList.Add(arg);
            // bounded: a hung esbuild (or a child holding its output open) fails here with what it printed, never hangs the run
            var result = await BoundedProcess.RunAsync(info, BundleTimeout);
            Assert.True(result.ExitCode == 0, $"esbuild failed with exit code {result.ExitCode}: {result.Stderr}");
            return await File.ReadAllTextAsync(Path.Combine(dir, "app.js"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static string Fill(string page, string php, string value)
    {
        var at = page.IndexOf(php, StringComparison.Ordinal);
        Assert.True(at >= 0 && page.IndexOf(php, at + 1, StringComparison.Ordinal) < 0, $"the seed page must contain {php} once");
        return page.Replace(php, WebUtility.HtmlEncode(value), StringComparison.Ordinal);
    }

    /// <summary>
    /// The page's CDN scripts at the very URLs the page names, answered by the test from the npm packages (the page is
    /// not edited at all; no request leaves the machine). Any other request to the internet is aborted, so a script the
    /// page loads from elsewhere fails the test instead of reaching the network.
    /// </summary>
    public static async Task ServeCdnAsync(IBrowserContext context)
    {
        var files = new Dictionary<string, string>
        {
            ["https://ajax.googleapis.com/ajax/libs/jquery/3.5.1/jquery.min.js"] = NodeModule("jquery/dist/jquery.min.js"),
            ["https://cdn.socket.io/4.2.0/socket.io.min.js"] = NodeModule("socket.io-client/dist/socket.io.min.js"),
        };
        await context.RouteAsync(url => !new Uri(url).IsLoopback && new Uri(url).Scheme is "http" or "https", async route =>
        {
            if (files.TryGetValue(route.Request.Url, out var file))
                await route.FulfillAsync(new() { Status = 200, Path = file, ContentType = "application/javascript; charset=utf-8" });
            else
                await route.AbortAsync();
        });
    }
}

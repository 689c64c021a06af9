using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Evolution.Events.Gateway.Options;

namespace Evolution.Events.Gateway.Demo;

/// <summary>
/// <c>dotnet run --project src/Evolution.Events.Gateway -- demo</c>: once the gateway listens, posts a realistic
/// stream for instance <c>demo</c> to its own <c>POST /webhook</c> over loopback (the real ingestion path, with
/// the global key): QR codes every few seconds while "connecting", then <c>open</c>, then messages, presence
/// and calls (with the <c>open</c> state repeated every 20 s); every 90 s the phone "disconnects" and the cycle
/// starts again.
/// </summary>
public static class DemoProducer
{
    public const string Verb = "demo";
    public const string Instance = "demo";

    /// <summary>True when the first argument is <c>demo</c>; <paramref name="rest"/> is the other arguments.</summary>
    public static bool IsRequested(string[] args, out string[] rest)
    {
        var requested = args.Length > 0 && string.Equals(args[0], Verb, StringComparison.OrdinalIgnoreCase);
        rest = requested ? args[1..] : args;
        return requested;
    }

    /// <summary>Starts producing once the app has started; stops with it.</summary>
    public static void Attach(WebApplication app)
    {
        var options = app.Services.GetRequiredService<GatewayOptions>();
        var lifetime = app.Lifetime;
        lifetime.ApplicationStarted.Register(() =>
        {
            var bound = GatewayApp.BoundAddress(app);
            var loopback = new UriBuilder(bound) { Host = "127.0.0.1" }.Uri;
            Console.WriteLine();
            Console.WriteLine($"Demo: producing events for instance '{Instance}'. Open the dashboard:");
            Console.WriteLine($"  {bound}#instance={Instance}&apikey={Uri.EscapeDataString(options.ApiKey)}");
            Console.WriteLine($"  (or {bound} with key {options.ApiKey} and instance {Instance})");
            Console.WriteLine();
            _ = Task.Run(() => RunAsync(loopback, options.ApiKey, app.Logger, lifetime.ApplicationStopping));
        });
    }

    private static async Task RunAsync(Uri gateway, string key, ILogger logger, CancellationToken stopping)
    {
        using var http = new HttpClient { BaseAddress = gateway, Timeout = TimeSpan.FromSeconds(10) };
        http.DefaultRequestHeaders.Add("apikey", key);
        var events = new DemoEvents(Instance, gateway.ToString().TrimEnd('/'));
        try
        {
            while (!stopping.IsCancellationRequested)
                await CycleAsync(http, events, stopping);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "Demo producer stopped");
        }
    }

    private static async Task CycleAsync(HttpClient http, DemoEvents events, CancellationToken ct)
    {
        await PostAsync(http, events.Connection("connecting"), ct);
        for (var i = 1; i <= 5; i++)
        {
            await PostAsync(http, events.QrCode(i), ct);
            await Task.Delay(TimeSpan.FromSeconds(4), ct);
        }
        await PostAsync(http, events.Connection("open"), ct);
        for (var tick = 1; tick <= 30; tick++)
        {
            await Task.Delay(TimeSpan.FromSeconds(2), ct);
            await TickAsync(http, events, tick, ct);
        }
        await PostAsync(http, events.Connection("close"), ct);
        await Task.Delay(TimeSpan.FromSeconds(3), ct);
    }

    private static async Task TickAsync(HttpClient http, DemoEvents events, int tick, CancellationToken ct)
    {
        if (tick % 10 == 0)
        {
            // Evolution API sends connection.update only on changes; the demo repeats it so that a dashboard
            // opened mid-cycle shows the state within 20 s.
            await PostAsync(http, events.Connection("open"), ct);
        }
        await PostAsync(http, events.Presence(), ct);
        await PostAsync(http, events.Message(fromMe: false), ct);
        if (tick % 3 == 1)
            await PostAsync(http, events.Message(fromMe: true), ct);
        if (tick % 15 == 7)
        {
            var (id, from, video) = events.NewCall();
            await PostAsync(http, events.Call(id, from, "offer", video), ct);
            await Task.Delay(TimeSpan.FromSeconds(1.5), ct);
            await PostAsync(http, events.Call(id, from, tick % 2 == 0 ? "reject" : "timeout", video), ct);
        }
    }

    private static async Task PostAsync(HttpClient http, JsonObject payload, CancellationToken ct)
    {
        using var response = await http.PostAsJsonAsync("/webhook", payload, ct);
        if (!response.IsSuccessStatusCode)
            throw new InvalidOperationException($"POST /webhook answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(ct)}");
    }
}

namespace Evolution.Events.Gateway.Observability;

/// <summary>
/// <c>Evolution.Events.Gateway healthcheck</c>: GET <c>http://127.0.0.1:$SERVER_PORT/health/live</c>, exit 0 on
/// 200, 1 otherwise. The Docker HEALTHCHECK uses it, since the ASP.NET runtime image has neither curl nor wget.
/// </summary>
public static class HealthProbe
{
    public const string Verb = "healthcheck";

    public static bool IsRequested(string[] args) =>
        args.Length > 0 && string.Equals(args[0], Verb, StringComparison.OrdinalIgnoreCase);

    public static async Task<int> RunAsync()
    {
        var port = Environment.GetEnvironmentVariable("SERVER_PORT") is { Length: > 0 } p ? p : "8080";
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(4) };
        try
        {
            using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/health/live"));
            return response.IsSuccessStatusCode ? 0 : 1;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or UriFormatException)
        {
            await Console.Error.WriteLineAsync($"healthcheck: {ex.Message}");
            return 1;
        }
    }
}

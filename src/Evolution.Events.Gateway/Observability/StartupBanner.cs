using Evolution.Events.Gateway.Options;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Evolution.Events.Gateway.Observability;

/// <summary>
/// The block printed on stdout once the server listens: what an operator needs to find it and to know what is on
/// (listen addresses, dashboard and API page, where the registry lives, the key's origin, optional parts). Plain
/// <see cref="Console"/> output, not the log: it must show at every LOG_LEVEL. Never prints a configured secret;
/// a generated key is printed here, once, since nobody could use the gateway otherwise.
/// </summary>
public static class StartupBanner
{
    /// <summary>The block's lines for these options and bound addresses (e.g. <c>http://[::]:8080</c>).</summary>
    public static IReadOnlyList<string> Lines(GatewayOptions options, IReadOnlyCollection<string> addresses)
    {
        var browse = BrowseUrl(addresses);
        var lines = new List<string>
        {
            "Evolution Events gateway is running",
            $"  listening on   {string.Join(", ", addresses)}",
            $"  dashboard      {browse}/",
            $"  API reference  {browse}/api (OpenAPI document: {browse}/openapi/v1.json)",
            options.Redis is { } redis
                ? $"  registry       Redis {redis.Display} (REDIS_URI, keys {options.RedisKeyPrefix}*)"
                : $"  database       {options.DatabaseFile ?? options.DatabaseConnectionString} (SQLite, DATABASE_PATH)",
            options.ApiKeyGenerated
                ? $"  global key     {options.ApiKey} (GENERATED for this run, it changes at every start: set AUTHENTICATION_API_KEY to keep one)"
                : "  global key     from AUTHENTICATION_API_KEY",
            $"  Redis          {(options.Redis is null ? "off (REDIS_URI unset: single node)" : "on: shared registry and event bus")}",
            $"  RabbitMQ       {(options.RabbitMQ is { } rabbit ? $"on: consuming {rabbit.Display}, queue {rabbit.Queue} bound to exchange {rabbit.Exchange}" : "off (RABBITMQ_URI unset)")}",
            $"  relay          {(options.InboundWebhookUrl is { } relay ? $"on: client emits POSTed to {relay.Scheme + "://" + relay.Authority + relay.AbsolutePath}" : "off (INBOUND_WEBHOOK_URL unset)")}",
            $"  websocket      {(options.WebSocketEnabled ? "on: Socket.IO at /socket.io/, plain WebSocket at /ws/events" : "off (WEBSOCKET_ENABLED=false)")}",
        };
        if (options.AllowedHosts.Count > 0)
            lines.Add($"  keyless hosts  {string.Join(", ", options.AllowedHosts)} (WEBSOCKET_ALLOWED_HOSTS: instance events only)");
        return lines;
    }

    /// <summary>A URL a browser on this host can open: a wildcard address becomes <c>localhost</c>.</summary>
    public static string BrowseUrl(IReadOnlyCollection<string> addresses)
    {
        var first = addresses.FirstOrDefault() ?? "http://localhost:8080";
        return first.Replace("://+", "://localhost", StringComparison.Ordinal)
            .Replace("://*", "://localhost", StringComparison.Ordinal)
            .Replace("://[::]", "://localhost", StringComparison.Ordinal)
            .Replace("://0.0.0.0", "://localhost", StringComparison.Ordinal)
            .TrimEnd('/');
    }
}

/// <summary>
/// Prints the <see cref="StartupBanner"/> once the server listens: in <see cref="IHostedLifecycleService.StartedAsync"/>,
/// which runs after every hosted service started (Kestrel is bound) and before the <c>ApplicationStarted</c>
/// callbacks, so what those print (the demo's dashboard URL) comes after the block.
/// </summary>
internal sealed class StartupBannerService(GatewayOptions options, IServer server) : IHostedLifecycleService
{
    public Task StartedAsync(CancellationToken cancellationToken)
    {
        var addresses = server.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        Console.WriteLine(string.Join(Environment.NewLine, StartupBanner.Lines(options, [.. addresses])));
        return Task.CompletedTask;
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

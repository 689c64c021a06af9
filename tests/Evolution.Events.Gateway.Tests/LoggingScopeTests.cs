using Evolution.Events.Gateway.Observability;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Evolution.Events.Gateway.Tests;

/// <summary>
/// Kestrel's per-connection logging scope is dropped (issue 11: every idle WebSocket kept it, about 240 bytes);
/// every other scope still reaches the log.
/// </summary>
public class LoggingScopeTests
{
    [Fact]
    public async Task The_apps_logger_factory_drops_kestrels_connection_scope_and_keeps_the_others()
    {
        var log = new EventSink();
        await using var gw = await TestGateway.StartAsync(logs: log);
        var factory = gw.App.Services.GetRequiredService<ILoggerFactory>();
        Assert.IsType<WithoutConnectionScopes>(factory);

        var kestrel = factory.CreateLogger("Microsoft.AspNetCore.Server.Kestrel");
        Assert.Null(kestrel.BeginScope(new List<KeyValuePair<string, object?>> { new("ConnectionId", "0HN-test") }));

        var app = factory.CreateLogger("Evolution.Events.Gateway.Tests");
        using (app.BeginScope(new List<KeyValuePair<string, object?>> { new("ConnectionId", "kept-elsewhere") }))
        using (kestrel.BeginScope(new List<KeyValuePair<string, object?>> { new("RequestId", "r-1") }))
        {
            app.LogWarning("scoped line");
        }

        var line = Assert.Single(log.Events, e => e.MessageTemplate.Text == "scoped line");
        Assert.Equal("\"kept-elsewhere\"", line.Properties["ConnectionId"].ToString());
        Assert.Equal("\"r-1\"", line.Properties["RequestId"].ToString());
    }

    [Fact]
    public async Task A_category_gets_one_logger_however_often_it_is_asked_for()
    {
        await using var gw = await TestGateway.StartAsync();
        var factory = gw.App.Services.GetRequiredService<ILoggerFactory>();
        // ASP.NET asks for this one on every JSON result (every webhook POST's 202)
        var first = factory.CreateLogger("Microsoft.AspNetCore.Http.Result.JsonResult");
        Assert.Same(first, factory.CreateLogger("Microsoft.AspNetCore.Http.Result.JsonResult"));
        Assert.Same(factory.CreateLogger("Microsoft.AspNetCore.Server.Kestrel"), factory.CreateLogger("Microsoft.AspNetCore.Server.Kestrel"));
        Assert.NotSame(first, factory.CreateLogger("Evolution.Events.Gateway.Tests"));
    }

    private sealed class EventSink : Serilog.Core.ILogEventSink
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<Serilog.Events.LogEvent> _events = new();

        public IReadOnlyList<Serilog.Events.LogEvent> Events => [.. _events];

        public void Emit(Serilog.Events.LogEvent logEvent) => _events.Enqueue(logEvent);
    }
}

using Evolution.Events.EngineIO;
using Evolution.Events.Gateway.Options;
using Serilog;
using Serilog.Core;
using Serilog.Events;
using Serilog.Sinks.Async;

namespace Evolution.Events.Gateway.Observability;

/// <summary>
/// The gateway's Serilog logger: console output through a bounded background queue that never blocks the thread
/// that logs (LOG_QUEUE_SIZE events, <see cref="GatewayOptions.LogQueueSize"/>; past it events are dropped and counted, see <see cref="Dropped"/>,
/// exposed as <c>evolution_log_events_dropped_total</c>), with every string property escaped and bounded by
/// <see cref="SafeLogText"/>. Disposal flushes for at most <see cref="FlushTimeout"/>: with stdout going to a pipe
/// nobody reads (a blocked log driver) the writer is stuck in a write, and shutdown must not wait for it.
/// </summary>
public sealed class GatewayLog : IAsyncLogEventSinkMonitor, IAsyncDisposable
{
    /// <summary>How long disposal waits for the queue to reach the console.</summary>
    public static readonly TimeSpan FlushTimeout = TimeSpan.FromSeconds(2);

    private IAsyncLogEventSinkInspector? _inspector;

    public GatewayLog(GatewayOptions options, Serilog.Core.ILogEventSink? alsoLogTo = null)
    {
        var configuration = new LoggerConfiguration()
            .MinimumLevel.Is(options.LogLevel)
            .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
            .MinimumLevel.Override("System.Net.Http", LogEventLevel.Warning)
            // Start-up failures are rethrown to Program.cs, which prints one line; don't dump them twice.
            .MinimumLevel.Override("Microsoft.Extensions.Hosting.Internal.Host", LogEventLevel.Fatal)
            .Enrich.FromLogContext()
            .Enrich.With<SafeLogText>()
            .WriteTo.Async(sink => sink.Console(), bufferSize: options.LogQueueSize, blockWhenFull: false, monitor: this);
        if (alsoLogTo is not null)
            configuration = configuration.WriteTo.Sink(alsoLogTo);
        Logger = configuration.CreateLogger();
    }

    /// <summary>The logger (registered as the app's Serilog logger).</summary>
    public Logger Logger { get; }

    /// <summary>Log events dropped because the queue was full (the console did not keep up, or is stalled).</summary>
    public long Dropped => Volatile.Read(ref _inspector)?.DroppedMessagesCount ?? 0;

    void IAsyncLogEventSinkMonitor.StartMonitoring(IAsyncLogEventSinkInspector inspector) => Volatile.Write(ref _inspector, inspector);

    void IAsyncLogEventSinkMonitor.StopMonitoring(IAsyncLogEventSinkInspector inspector)
    {
    }

    /// <summary>Flushes what is queued for at most <see cref="FlushTimeout"/>, then gives up (the writer may be stuck).</summary>
    public async ValueTask DisposeAsync()
    {
        var dispose = Task.Factory.StartNew(Logger.Dispose, CancellationToken.None,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);
        await Task.WhenAny(dispose, Task.Delay(FlushTimeout));
    }
}

/// <summary>
/// Escapes and bounds every string property of a log event: control characters (<c>\n</c>, <c>\r</c>, …) and
/// Unicode line separators become <c>\n</c>, <c>\r</c>, <c>\uXXXX</c>, and text longer than
/// <see cref="MaxLength"/> is cut (<c>…(+N chars)</c>). Instance and event names, reasons, paths and messages a
/// client or producer sent end up in properties, so none of them can forge a log line or flood one. It applies to
/// every log call of the gateway and of the libraries it hosts, so no call site can forget it.
/// </summary>
public sealed class SafeLogText : ILogEventEnricher
{
    /// <summary>Longest string property written as is.</summary>
    public const int MaxLength = 200;

    public void Enrich(LogEvent logEvent, ILogEventPropertyFactory propertyFactory)
    {
        List<LogEventProperty>? replaced = null;
        foreach (var (name, value) in logEvent.Properties)
        {
            if (value is ScalarValue { Value: string text } && Escape(text) is var safe && !ReferenceEquals(safe, text))
                (replaced ??= []).Add(new LogEventProperty(name, new ScalarValue(safe)));
        }
        if (replaced is null)
            return;
        foreach (var property in replaced)
            logEvent.AddOrUpdateProperty(property);
    }

    /// <summary>
    /// The text with control characters escaped and cut at <see cref="MaxLength"/> (the Engine.IO library's
    /// <see cref="LogText.Bound"/>, so the gateway's and the libraries' log lines escape alike); the same
    /// instance when nothing needed escaping.
    /// </summary>
    public static string Escape(string text) => LogText.Bound(text, MaxLength);
}

namespace Evolution.Events.Gateway.Observability;

/// <summary>
/// The app's logger factory, less Kestrel's per-connection logging scope (<c>ConnectionId</c>). Kestrel opens that
/// scope for every connection's lifetime, and through Serilog it is a scope object, a log-context enricher and an
/// execution context with two async locals: about 240 bytes that every idle WebSocket keeps. The gateway's console
/// output shows no scope properties, and Kestrel's own connection messages name the connection in their text, so
/// nothing visible is lost. Every other scope (the request's <c>RequestId</c>, <c>TraceId</c>, the app's own) is kept.
/// </summary>
/// <remarks>
/// A logger is made once per category, as Microsoft's own factory does: Serilog's makes a new one on every call (with
/// a dictionary of its own), and ASP.NET asks for one on every JSON result, so every webhook POST made one.
/// </remarks>
public sealed class WithoutConnectionScopes(ILoggerFactory inner) : ILoggerFactory
{
    private const string KestrelCategory = "Microsoft.AspNetCore.Server.Kestrel";
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ILogger> _loggers = new(StringComparer.Ordinal);

    public ILogger CreateLogger(string categoryName) => _loggers.GetOrAdd(categoryName, static (name, inner) =>
    {
        var logger = inner.CreateLogger(name);
        return name.StartsWith(KestrelCategory, StringComparison.Ordinal) ? new KestrelLogger(logger) : logger;
    }, inner);

    public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

    public void Dispose() => inner.Dispose();

    /// <summary>Kestrel's connection scope: one property, <c>ConnectionId</c>.</summary>
    internal static bool IsConnectionScope<TState>(TState state) =>
        state is IReadOnlyList<KeyValuePair<string, object?>> { Count: 1 } properties && properties[0].Key == "ConnectionId";

    private sealed class KestrelLogger(ILogger inner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull =>
            IsConnectionScope(state) ? null : inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            inner.Log(logLevel, eventId, state, exception, formatter);
    }
}

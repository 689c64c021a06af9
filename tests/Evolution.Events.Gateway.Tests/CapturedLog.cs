using System.Collections.Concurrent;
using Serilog.Core;
using Serilog.Events;

namespace Evolution.Events.Gateway.Tests;

/// <summary>Every log event of a test gateway, rendered as its console line would be (level and message, no time).</summary>
public sealed class CapturedLog : ILogEventSink
{
    private readonly ConcurrentQueue<string> _lines = new();

    public IReadOnlyList<string> Lines => [.. _lines];

    public void Emit(LogEvent logEvent) =>
        _lines.Enqueue($"{logEvent.Level} {logEvent.RenderMessage(System.Globalization.CultureInfo.InvariantCulture)}");
}

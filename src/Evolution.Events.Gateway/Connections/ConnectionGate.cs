using System.Collections.Concurrent;
using Evolution.Events.Gateway.Options;

namespace Evolution.Events.Gateway.Connections;

/// <summary>
/// Admission control shared by the plain-WebSocket upgrade and Socket.IO:
/// WEBSOCKET_CONNECT_RATE (attempts per minute per remote address → 429, at the upgrade or the
/// Engine.IO handshake) and WEBSOCKET_MAX_CONNECTIONS (open connections → 503; a Socket.IO
/// connection takes its slot when it joins its first namespace, see <c>SocketIOSlots</c>). The remote address is
/// <see cref="ConnectionInfo.RemoteIpAddress"/>, which the forwarded-headers middleware rewrites
/// only for requests from TRUSTED_PROXIES.
/// </summary>
public sealed class ConnectionGate(GatewayOptions options, TimeProvider time)
{
    private static readonly TimeSpan Window = TimeSpan.FromMinutes(1);
    private readonly ConcurrentDictionary<string, RateWindow> _windows = new(StringComparer.Ordinal);
    private int _open;
    private long _lastSweep;

    /// <summary>Connections admitted and not yet released.</summary>
    public int OpenConnections => Volatile.Read(ref _open);

    /// <summary>Counts one connection attempt of the request's remote address (429 past the rate).</summary>
    public bool CheckRate(HttpContext context, out int status, out string reason)
    {
        status = StatusCodes.Status200OK;
        reason = "";
        var limit = options.ConnectRatePerMinute;
        if (limit <= 0)
            return true;
        var now = time.GetTimestamp();
        SweepIfDue(now);
        var window = _windows.GetOrAdd(RemoteAddress(context), _ => new RateWindow(now));
        if (window.TryCount(now, time, limit))
            return true;
        status = StatusCodes.Status429TooManyRequests;
        reason = $"Too many connection attempts from this address (WEBSOCKET_CONNECT_RATE={limit} per minute)";
        return false;
    }

    /// <summary>
    /// Takes a connection slot (503 past WEBSOCKET_MAX_CONNECTIONS). On success the caller must call
    /// <see cref="Release"/> exactly once when the connection ends.
    /// </summary>
    public bool TryAcquire(out int status, out string reason)
    {
        status = StatusCodes.Status200OK;
        reason = "";
        if (Interlocked.Increment(ref _open) <= options.MaxConnections)
            return true;
        Interlocked.Decrement(ref _open);
        status = StatusCodes.Status503ServiceUnavailable;
        reason = $"Server is at its connection limit (WEBSOCKET_MAX_CONNECTIONS={options.MaxConnections})";
        return false;
    }

    /// <summary>Gives back the slot of an admitted connection.</summary>
    public void Release() => Interlocked.Decrement(ref _open);

    /// <summary>The address used for rate limiting and logs.</summary>
    public static string RemoteAddress(HttpContext context) =>
        context.Connection.RemoteIpAddress?.ToString() ?? "unknown";

    private void SweepIfDue(long now)
    {
        var last = Interlocked.Read(ref _lastSweep);
        if (time.GetElapsedTime(last, now) < Window || Interlocked.CompareExchange(ref _lastSweep, now, last) != last)
            return;
        foreach (var (address, window) in _windows)
        {
            if (window.IsStale(now, time))
                _windows.TryRemove(address, out _);
        }
    }

    private sealed class RateWindow(long start)
    {
        private readonly Lock _lock = new();
        private long _start = start;
        private int _count;

        public bool TryCount(long now, TimeProvider time, int limit)
        {
            lock (_lock)
            {
                if (time.GetElapsedTime(_start, now) >= Window)
                {
                    _start = now;
                    _count = 0;
                }
                return ++_count <= limit;
            }
        }

        public bool IsStale(long now, TimeProvider time)
        {
            lock (_lock)
                return time.GetElapsedTime(_start, now) >= Window;
        }
    }
}

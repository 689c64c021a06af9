using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Evolution.Events.EngineIO.Hosting;

/// <summary>
/// The raw-upgrade path (see <see cref="RawUpgradeExtensions"/>): the paths it serves, the pipeline it runs
/// (captured by <c>app.UseRawWebSocketUpgrades()</c>) and the connection middleware itself.
/// </summary>
internal sealed partial class RawUpgradeDispatcher
{
    private readonly Lock _lock = new();
    private readonly IServiceScopeFactory _scopes;
    private readonly ILogger _logger;
    private readonly int _maxLine;
    private readonly int _maxHeaders;
    private readonly TimeSpan _headTimeout;
    private (string Path, bool Prefix)[] _paths = [];
    private long _upgrades;
    private long _requests;

    public RawUpgradeDispatcher(IServiceScopeFactory scopes, IOptions<KestrelServerOptions>? kestrel = null,
        ILogger<RawUpgradeDispatcher>? logger = null)
    {
        _scopes = scopes;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        var limits = kestrel?.Value.Limits ?? new KestrelServerLimits();
        _maxLine = limits.MaxRequestLineSize;
        _maxHeaders = limits.MaxRequestHeadersTotalSize;
        _headTimeout = limits.RequestHeadersTimeout;
    }

    /// <summary>The app's pipeline after <c>app.UseRawWebSocketUpgrades()</c>; null until the app is built (nothing is taken then).</summary>
    public RequestDelegate? Pipeline { get; set; }

    /// <summary>Requests the raw path took (upgrades and refusals).</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Connections upgraded to WebSocket on the raw path.</summary>
    public long Upgrades => Interlocked.Read(ref _upgrades);

    /// <summary>
    /// Serves WebSocket upgrades for <paramref name="path"/> (compared case-insensitively, as routing does): that path
    /// and, with <paramref name="prefix"/>, every path below it. Exact paths also match with a trailing slash.
    /// </summary>
    public void AddPath(string path, bool prefix = true)
    {
        var trimmed = path.Length > 1 ? path.TrimEnd('/') : path;
        lock (_lock)
        {
            _paths = [.. _paths, (trimmed, prefix)];
        }
    }

    internal bool Serves(string path)
    {
        foreach (var (served, prefix) in _paths)
        {
            if (path.Equals(served, StringComparison.OrdinalIgnoreCase)
                || (served != "/" && path.Length == served.Length + 1 && path[^1] == '/'
                    && path.StartsWith(served, StringComparison.OrdinalIgnoreCase))
                || (prefix && new PathString(path).StartsWithSegments(served, StringComparison.OrdinalIgnoreCase)))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The connection middleware.</summary>
    public async Task OnConnectionAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        if (Pipeline is null || _paths.Length == 0)
        {
            await next(connection);
            return;
        }

        var (head, handBack) = await ReadHeadAsync(connection.Transport.Input, connection.ConnectionClosed);
        if (head is null)
        {
            if (handBack)
            {
                await next(connection);
            }

            return; // a partial head that timed out: the connection closes
        }

        Interlocked.Increment(ref _requests);
        // the request's objects live in ServeRequestAsync only: once it returns, a detached session keeps none of them
        var run = await ServeRequestAsync(connection, head);
        if (run is not null)
        {
            try
            {
                await run();
            }
            catch (Exception ex)
            {
                LogDetachedFailure(ex, connection.ConnectionId);
            }
        }
    }

    /// <summary>The first request's head when the raw path takes it (consumed); else null, nothing consumed.</summary>
    private async Task<(RequestHead? Head, bool HandBack)> ReadHeadAsync(PipeReader input, CancellationToken closed)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(closed);
        timeout.CancelAfter(_headTimeout);
        var received = false;
        while (true)
        {
            ReadResult result;
            try
            {
                result = await input.ReadAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                // nothing yet (a preconnect): Kestrel's own keep-alive timer decides; half a head: closed
                return (null, !received);
            }

            var buffer = result.Buffer;
            received |= !buffer.IsEmpty;
            var verdict = RequestHead.TryParse(buffer, _maxLine, _maxHeaders, Serves, out var head, out var end);
            switch (verdict)
            {
                case RequestHead.Verdict.Ours:
                    input.AdvanceTo(end);
                    return (head, false);
                case RequestHead.Verdict.NeedMore when !result.IsCompleted && !result.IsCanceled:
                    input.AdvanceTo(buffer.Start, buffer.End);
                    continue;
                default:
                    // untouched: Kestrel's next read returns these same bytes at once
                    input.AdvanceTo(buffer.Start, buffer.Start);
                    return (null, true);
            }
        }
    }

    private async Task<Func<Task>?> ServeRequestAsync(ConnectionContext connection, RequestHead head)
    {
        var exchange = new RawExchange(connection, () => Interlocked.Increment(ref _upgrades));
        // sized for what the request and the pipeline put there (about a dozen): it grew three times before
        var features = new FeatureCollection(17);
        var tls = connection.Features.Get<ITlsConnectionFeature>();
        features.Set<IHttpRequestFeature>(new HttpRequestFeature
        {
            Protocol = "HTTP/1.1",
            Scheme = tls is null ? "http" : "https",
            Method = HttpMethods.Get,
            PathBase = "",
            Path = head.Path,
            QueryString = head.QueryString,
            RawTarget = head.RawTarget,
            Headers = head.Headers,
            Body = Stream.Null,
        });
        features.Set<IHttpResponseFeature>(exchange);
        features.Set<IHttpResponseBodyFeature>(exchange.BodyFeature);
        features.Set<IHttpUpgradeFeature>(exchange);
        features.Set<IHttpRequestLifetimeFeature>(exchange);
        features.Set<IConnectionDetachFeature>(exchange);
        var remote = connection.RemoteEndPoint as IPEndPoint;
        var local = connection.LocalEndPoint as IPEndPoint;
        features.Set<IHttpConnectionFeature>(new HttpConnectionFeature
        {
            ConnectionId = connection.ConnectionId,
            RemoteIpAddress = remote?.Address,
            RemotePort = remote?.Port ?? 0,
            LocalIpAddress = local?.Address,
            LocalPort = local?.Port ?? 0,
        });
        if (tls is not null)
        {
            features.Set(tls);
        }

        var context = new DefaultHttpContext(features);
        var services = new RequestServicesFeature(context, _scopes);
        features.Set<IServiceProvidersFeature>(services);
        try
        {
            try
            {
                await Pipeline!(context);
            }
            catch (Exception ex)
            {
                LogRequestFailure(ex, connection.ConnectionId, head.Path);
                if (!exchange.HasStarted)
                {
                    exchange.ResetForError();
                }
            }

            if (!exchange.Upgraded)
            {
                await exchange.WriteResponseAsync();
                return null;
            }

            return exchange.TakeDetached();
        }
        finally
        {
            await exchange.CompleteAsync();
            await services.DisposeAsync();
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Raw-upgrade request on connection {ConnectionId} to {Path} failed")]
    private partial void LogRequestFailure(Exception exception, string connectionId, string path);

    [LoggerMessage(Level = LogLevel.Error, Message = "Detached WebSocket on connection {ConnectionId} failed")]
    private partial void LogDetachedFailure(Exception exception, string connectionId);
}

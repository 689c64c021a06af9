namespace Evolution.Events.EngineIO.Hosting;

/// <summary>
/// Present on a request served by the raw-upgrade connection middleware
/// (<see cref="RawUpgradeExtensions.UseRawWebSocketUpgrades(Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions)"/>).
/// After <c>IHttpUpgradeFeature.UpgradeAsync</c>, a WebSocket handler can hand the rest of the connection's life
/// to <see cref="Detach"/> and return at once: the request objects (context, headers, features) become garbage
/// and only what <c>run</c> holds stays alive while the socket is open.
/// </summary>
internal interface IConnectionDetachFeature
{
    /// <summary>Fires when the connection is closed (what <c>HttpContext.RequestAborted</c> is on the HTTP path).</summary>
    CancellationToken ConnectionClosed { get; }

    /// <summary>Aborts the connection; a delegate that holds the connection only (never the request).</summary>
    Action AbortConnection { get; }

    /// <summary>
    /// Runs <paramref name="run"/> on the upgraded connection once the request delegate has returned; the
    /// connection closes when it completes. Only after the upgrade, at most once. <paramref name="run"/> must not
    /// capture the <c>HttpContext</c>.
    /// </summary>
    void Detach(Func<Task> run);
}

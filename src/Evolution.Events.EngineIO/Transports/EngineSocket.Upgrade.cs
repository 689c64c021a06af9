using Evolution.Events.EngineIO.Protocol;

namespace Evolution.Events.EngineIO;

/// <summary>
/// The upgrade from polling to WebSocket. While the probe runs, packets still leave by polling; at
/// the upgrade packet the WebSocket takes the queue over, so nothing is lost or sent twice.
/// </summary>
public sealed partial class EngineSocket
{
    private TaskCompletionSource? _upgradeSettled;
    private bool _upgradeClaimed;

    /// <summary>
    /// A WebSocket for this session was accepted: true if it may probe, false if another WebSocket
    /// already holds the upgrade or the session is already upgraded (as engine.io: that one is closed
    /// at once). Claimed at connection, under the lock, so of two WebSockets connecting together
    /// exactly one probes, whichever is served first.
    /// </summary>
    internal bool TryClaimUpgrade()
    {
        lock (_sync)
        {
            if (_upgradeClaimed || _upgrading || _isWebSocket)
            {
                return false;
            }

            _upgradeClaimed = true;
            return true;
        }
    }

    /// <summary>A WebSocket holds or probes the upgrade, or the session is upgraded (a discard then aborts that connection).</summary>
    internal bool IsUpgradingOrUpgraded
    {
        get
        {
            lock (_sync)
            {
                return _upgradeClaimed || _upgrading || _isWebSocket;
            }
        }
    }

    /// <summary>The client sent <c>2probe</c> on a new WebSocket.</summary>
    internal bool BeginUpgrade()
    {
        lock (_sync)
        {
            if (_state != EngineReadyState.Open || _isWebSocket)
            {
                return false;
            }

            _upgrading = true;
            _upgradeSettled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        // ends a waiting poll (with whatever is queued, or a noop) so the client can pause polling
        EnqueueControl(OutboundPacket.Noop);
        return true;
    }

    /// <summary>The client sent <c>5</c>: from now on packets leave by the WebSocket.</summary>
    internal bool CompleteUpgrade()
    {
        bool closing;
        lock (_sync)
        {
            // as engine.io: a session the server is closing (gracefully) still completes its upgrade,
            // since the client, which has paused polling, only reads the WebSocket now; the WebSocket
            // then flushes what is queued and the close packet
            if (_state == EngineReadyState.Closed || !_upgrading || _isWebSocket)
            {
                return false;
            }

            closing = _state == EngineReadyState.Closing;
            Volatile.Write(ref _isWebSocket, true);
            _upgrading = false;
            _upgradeSettled?.TrySetResult();
        }

        // wakes a poll that is still waiting: it sees the upgrade and answers a noop (a closing
        // session's queue is complete: nothing more can be added, and a waiting poll is already woken)
        if (!closing)
        {
            EnqueueControl(OutboundPacket.Noop);
        }

        _server.LogUpgraded(Id);
        return true;
    }

    internal void AbandonUpgrade()
    {
        lock (_sync)
        {
            if (!_isWebSocket)
            {
                _upgrading = false;
                _upgradeClaimed = false; // a later WebSocket may try again
            }

            _upgradeSettled?.TrySetResult();
        }
    }

    /// <summary>While a probe is under way: completes when the upgrade is done or abandoned. Else null.</summary>
    internal Task? PendingUpgrade
    {
        get
        {
            lock (_sync)
            {
                return _upgrading ? _upgradeSettled?.Task : null;
            }
        }
    }
}

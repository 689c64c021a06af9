using System.Collections.Concurrent;

namespace Evolution.Events.SocketIO.Adapters;

/// <summary>
/// What connection state recovery keeps of a socket that left for a recoverable reason (socket.io-adapter's
/// <c>SessionToPersist</c>): its id, its private id (the secret the client presents to recover), its rooms
/// (its own id included) and its <see cref="Socket.Data"/>.
/// </summary>
public sealed record PersistedSession(
    string Sid, string Pid, IReadOnlyCollection<string> Rooms, ConcurrentDictionary<string, object?>? Data)
{
    /// <summary>
    /// The socket's join point: the newest broadcast offset issued when it became connected (every later
    /// broadcast of its namespace reached it), or null when unknown. A CONNECT with <c>pid</c> but no
    /// <c>offset</c> (the client received no broadcast) recovers from here (<see cref="IAdapter.RestoreSessionAsync(string)"/>).
    /// </summary>
    public string? JoinOffset { get; init; }
}

/// <summary>How a recovery attempt (a CONNECT with <c>pid</c>, and <c>offset</c> unless the client received no broadcast) ended.</summary>
public enum RecoveryOutcome
{
    /// <summary>The session and every missed packet were restored.</summary>
    Recovered,

    /// <summary>The session expired, or some packet after the client's offset is no longer kept: a fresh session.</summary>
    TooLate,

    /// <summary>No session under that pid (never persisted, already used, or another process): a fresh session.</summary>
    UnknownSession,

    /// <summary>A middleware refused the connection: nothing was restored.</summary>
    Refused,
}

/// <summary>
/// The answer of <see cref="IAdapter.RestoreSessionAsync(string, string)"/>: the session (claimed: a pid recovers once)
/// when <see cref="Outcome"/> is <see cref="RecoveryOutcome.Recovered"/>, else null.
/// </summary>
public readonly record struct SessionRestoreResult(RecoveryOutcome Outcome, PersistedSession? Session)
{
    /// <summary>No session under that pid.</summary>
    public static SessionRestoreResult Unknown { get; } = new(RecoveryOutcome.UnknownSession, null);

    /// <summary>Expired, or packets after the offset are gone.</summary>
    public static SessionRestoreResult TooLate { get; } = new(RecoveryOutcome.TooLate, null);
}

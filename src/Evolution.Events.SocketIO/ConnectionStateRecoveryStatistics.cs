using Evolution.Events.SocketIO.Adapters;

namespace Evolution.Events.SocketIO;

/// <summary>
/// Connection state recovery figures of a server (all zero while recovery is off): recovery attempts by
/// outcome since start, and what the in-memory store holds now. A custom adapter's own store is not counted
/// in <see cref="Sessions"/>, <see cref="Packets"/> and <see cref="Bytes"/>.
/// </summary>
public sealed class ConnectionStateRecoveryStatistics
{
    private readonly long[] _outcomes = new long[Enum.GetValues<RecoveryOutcome>().Length];
    private readonly RecoveryStore? _store;

    internal ConnectionStateRecoveryStatistics(RecoveryStore? store) => _store = store;

    /// <summary>Sessions recovered (with every missed packet).</summary>
    public long Recovered => Count(RecoveryOutcome.Recovered);

    /// <summary>Attempts too late: the session expired or packets after the client's offset were dropped.</summary>
    public long TooLate => Count(RecoveryOutcome.TooLate);

    /// <summary>Attempts with a pid no session is kept under.</summary>
    public long UnknownSession => Count(RecoveryOutcome.UnknownSession);

    /// <summary>Attempts whose session was found but a middleware refused the connection.</summary>
    public long Refused => Count(RecoveryOutcome.Refused);

    /// <summary>Sessions kept now (disconnected sockets that may still recover).</summary>
    public long Sessions => _store?.SessionCount ?? 0;

    /// <summary>Broadcast packets kept now, over all namespaces.</summary>
    public long Packets => _store?.PacketCount ?? 0;

    /// <summary>Bytes of the kept packets (text and attachments), over all namespaces.</summary>
    public long Bytes => _store?.ByteCount ?? 0;

    /// <summary>Attempts that ended with <paramref name="outcome"/> since start.</summary>
    public long Count(RecoveryOutcome outcome) => Interlocked.Read(ref _outcomes[(int)outcome]);

    internal void Add(RecoveryOutcome outcome) => Interlocked.Increment(ref _outcomes[(int)outcome]);
}

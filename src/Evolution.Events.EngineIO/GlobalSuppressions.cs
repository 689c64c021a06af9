using System.Diagnostics.CodeAnalysis;

[assembly: SuppressMessage("Naming", "CA1711:Identifiers should not have incorrect suffix", Scope = "type", Target = "~T:Evolution.Events.EngineIO.OutboundQueue",
    Justification = "It is a queue (FIFO, bounded, drained by one writer); the name says so.")]

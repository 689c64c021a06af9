using System.Diagnostics.CodeAnalysis;

// The public API keeps socket.io's vocabulary, so code and docs read the same in both languages.
[assembly: SuppressMessage("Naming", "CA1716:Identifiers should not match keywords", Scope = "type", Target = "~T:Evolution.Events.SocketIO.Namespace",
    Justification = "socket.io's name for it (io.of(name) returns a Namespace).")]
[assembly: SuppressMessage("Naming", "CA1716:Identifiers should not match keywords", Scope = "member", Target = "~M:Evolution.Events.SocketIO.Namespace.To(System.String)~Evolution.Events.SocketIO.BroadcastOperator",
    Justification = "socket.io's name for it (nsp.to(room)).")]
[assembly: SuppressMessage("Naming", "CA1716:Identifiers should not match keywords", Scope = "member", Target = "~M:Evolution.Events.SocketIO.Namespace.To(System.Collections.Generic.IEnumerable{System.String})~Evolution.Events.SocketIO.BroadcastOperator",
    Justification = "socket.io's name for it (nsp.to(rooms)).")]
[assembly: SuppressMessage("Naming", "CA1711:Identifiers should not have incorrect suffix", Scope = "type", Target = "~T:Evolution.Events.SocketIO.Adapters.BroadcastFlags",
    Justification = "socket.io's broadcast flags (volatile, local, timeout); a [Flags] enum.")]
[assembly: SuppressMessage("Naming", "CA1711:Identifiers should not have incorrect suffix", Scope = "type", Target = "~T:Evolution.Events.SocketIO.SocketEventHandler",
    Justification = "An event listener (socket.on(name, handler)); the name says what it is.")]
[assembly: SuppressMessage("Naming", "CA1711:Identifiers should not have incorrect suffix", Scope = "type", Target = "~T:Evolution.Events.SocketIO.Adapters.ServerSideEventHandler",
    Justification = "A listener for server-side events (nsp.on('serverSideEmit')); the name says what it is.")]

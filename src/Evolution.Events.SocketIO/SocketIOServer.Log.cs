using Microsoft.Extensions.Logging;

namespace Evolution.Events.SocketIO;

public sealed partial class SocketIOServer
{
    [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "Socket {SocketId} connected to {Namespace} over {Transport} from {Remote}")]
    internal partial void LogConnected(string socketId, string @namespace, string transport, string? remote);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Information, Message = "Socket {SocketId} left {Namespace}: {Reason}")]
    internal partial void LogDisconnected(string socketId, string @namespace, string reason);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Information, Message = "Connection to {Namespace} refused: {Reason} (from {Remote})")]
    internal partial void LogRefused(string @namespace, string reason, string? remote);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Information, Message = "Connection {Sid} closed: bad Socket.IO packet ({Reason})")]
    internal partial void LogProtocolError(string sid, string reason);

    [LoggerMessage(EventId = 2005, Level = LogLevel.Information, Message = "Connection {Sid} closed: no namespace joined within the connect timeout")]
    internal partial void LogConnectTimeout(string sid);

    [LoggerMessage(EventId = 2007, Level = LogLevel.Information, Message = "Connection {Sid} closed: too many connections have joined no namespace (MaxPendingConnections); this was the oldest")]
    internal partial void LogPendingEvicted(string sid);

    [LoggerMessage(EventId = 2006, Level = LogLevel.Error, Message = "Socket.IO {Handler} handler failed for {SocketId}")]
    internal partial void LogHandlerFailure(Exception exception, string handler, string socketId);

    [LoggerMessage(EventId = 2008, Level = LogLevel.Warning, Message = "The adapter of {Namespace} has not finished starting after {Seconds} s; its sockets connect without waiting for it")]
    internal partial void LogAdapterStartSlow(string @namespace, int seconds);

    [LoggerMessage(EventId = 2009, Level = LogLevel.Information, Message = "Connection state recovery on {Namespace}: {Outcome}")]
    internal partial void LogRecovery(string @namespace, Adapters.RecoveryOutcome outcome);
}

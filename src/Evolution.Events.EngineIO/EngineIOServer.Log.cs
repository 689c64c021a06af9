using Microsoft.Extensions.Logging;

namespace Evolution.Events.EngineIO;

public sealed partial class EngineIOServer
{
    [LoggerMessage(EventId = 1001, Level = LogLevel.Debug, Message = "Engine.IO session {Sid} opened over {Transport} from {Remote}")]
    private partial void LogOpened(string sid, string transport, string? remote);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Debug, Message = "Engine.IO session {Sid} ({Transport}) closed: {Reason} {Description}")]
    private partial void LogClosed(string sid, string transport, string reason, string description);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Debug, Message = "Engine.IO request refused ({Code}) from {Remote}")]
    private partial void LogRefused(EngineErrorCode code, string? remote);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Information, Message = "Engine.IO handshake refused with {Status} ({Reason}) from {Remote}")]
    private partial void LogHandshakeRefused(int status, string reason, string? remote);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Warning, Message = "Engine.IO session {Sid} dropped as a slow consumer: {Packets} packets / {Bytes} bytes queued")]
    internal partial void LogSlowConsumer(string sid, int packets, long bytes);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Debug, Message = "Engine.IO session {Sid} upgraded to websocket")]
    private partial void LogUpgradedCore(string sid);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Error, Message = "Engine.IO listener of session {Sid} threw")]
    internal partial void LogListenerFailure(Exception exception, string sid);

    internal void LogUpgraded(string sid)
    {
        CountUpgrade();
        LogUpgradedCore(sid);
    }
}

namespace Evolution.Events.SocketIO;

/// <summary>
/// A middleware's refusal: sent to the client as CONNECT_ERROR <c>{"message": …, "data": …}</c>
/// (the client's <c>connect_error</c> event gets an Error whose message is <see cref="Message"/>).
/// </summary>
public sealed record ConnectError(string Message, object? Data = null);

/// <summary>
/// A namespace middleware: returns null to let the socket through, or the refusal.
/// Middlewares run in the order they were added; the first refusal stops the chain.
/// </summary>
public delegate ValueTask<ConnectError?> SocketMiddleware(Socket socket);

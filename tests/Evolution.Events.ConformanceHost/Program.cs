// The server of the official Engine.IO v4 / Socket.IO v5 protocol test suites, in one process:
//   /engine.io/  an Engine.IO echo server (every message sent straight back, text and binary)
//   /socket.io/  a Socket.IO server: on connection to "/" or "/custom" it emits "auth" with the
//                handshake auth; on "/", "message" → "message-back" with the same arguments and
//                "message-with-ack" acknowledged with its arguments. Other namespaces are refused.
// Both: pingInterval 300, pingTimeout 200, maxPayload 1000000, CORS open; connectTimeout 1000.
// ALLOW_EIO3=true serves Engine.IO 3 clients too (the official engine.io v3 suite), beside Engine.IO 4.
//   dotnet run -c Release --project tests/Evolution.Events.ConformanceHost [-- --port 3000]
using Evolution.Events.ConformanceHost;

var port = ConformanceServer.ParsePort(args);
await using var app = ConformanceServer.Build(port);
await app.StartAsync();
Console.WriteLine($"conformance-host: listening on port {port}{(ConformanceServer.AllowEIO3 ? " (Engine.IO 3 allowed)" : "")}");
await app.WaitForShutdownAsync();

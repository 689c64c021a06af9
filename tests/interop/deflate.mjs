// permessage-deflate: socket.io-client offers it by default (engine.io-client's perMessageDeflate: { threshold: 1024 },
// through ws). Reports the extension the server accepted and the bytes a large text and a large binary message took
// on the TCP connection, both ways. args: <transports: websocket | upgrade> [tag]
import { io, out, args, url, run, connected, ack, once } from "./lib.mjs";

const mode = args[0] ?? "websocket";
const tag = args[1] ?? `deflate-${mode}`;

run(async () => {
  const socket = io(url, {
    transports: mode === "upgrade" ? ["polling", "websocket"] : ["websocket"],
    reconnection: false,
    auth: { tag },
  });
  await connected(socket);
  if (socket.io.engine.transport.name !== "websocket") {
    await once(socket.io.engine, "upgrade", 10000);
  }

  const ws = socket.io.engine.transport.ws;
  out({ event: "connect", transport: socket.io.engine.transport.name, extensions: ws.extensions });

  const tcp = ws._socket;
  let [read, written] = [tcp.bytesRead, tcp.bytesWritten];
  const text = JSON.stringify(Array.from({ length: 3000 }, (_, i) => ({ event: "messages.upsert", instance: "sales", n: i % 50 })));
  const [textBack] = await ack(socket, "echo", text);
  out({ event: "text", length: text.length, same: textBack === text, read: tcp.bytesRead - read, written: tcp.bytesWritten - written });

  [read, written] = [tcp.bytesRead, tcp.bytesWritten];
  const binary = Buffer.alloc(60_000, "abcdefgh");
  const [binaryBack] = await ack(socket, "echo", binary);
  out({ event: "binary", length: binary.length, same: Buffer.compare(Buffer.from(binaryBack), binary) === 0, read: tcp.bytesRead - read, written: tcp.bytesWritten - written });
  socket.disconnect();
});

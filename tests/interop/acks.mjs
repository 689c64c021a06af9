// Acknowledgements both ways: client -> server (echo) and server -> client (the server's
// "question" is answered in the ack callback, then reported back as "answer").
import { io, out, args, url, run, connected, ack, once } from "./lib.mjs";

const tag = args[0] ?? "acks";

run(async () => {
  const socket = io(url, { reconnection: false, auth: { tag } });
  socket.on("question", (value, callback) => callback({ doubled: value * 2 }, "second"));
  await connected(socket);

  out({ event: "client-ack", args: await ack(socket, "echo", "a", 1, { b: [true, null] }) });
  out({ event: "empty-ack", args: await ack(socket, "echo") });

  const answer = once(socket, "answer");
  socket.emit("ask", 21);
  out({ event: "server-ack", args: await answer });

  // many in flight: every ack must reach its own callback
  const results = await Promise.all(Array.from({ length: 30 }, (_, i) => ack(socket, "echo", `m${i}`)));
  out({ event: "many", ok: results.every((r, i) => r[0] === `m${i}`) });
  socket.disconnect();
});

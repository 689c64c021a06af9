// Reconnection semantics: after the server closes the Engine.IO session (a transport close) the
// client reconnects by itself; after a server namespace disconnect ("io server disconnect") it
// does not. args: kick close flag (true|false).
import { io, out, args, url, run, connected, once, delay } from "./lib.mjs";

const kickClose = args[0] === "true";
const tag = args[1] ?? `reconnect-${kickClose}`;

run(async () => {
  const socket = io(url, { reconnectionDelay: 100, reconnectionDelayMax: 200, randomizationFactor: 0, auth: { tag } });
  let connects = 0;
  socket.on("connect", () => {
    connects++;
    out({ event: "connect", n: connects, id: socket.id });
  });
  socket.on("disconnect", (reason) => out({ event: "disconnect", reason, active: socket.active }));
  socket.io.on("reconnect", (attempt) => out({ event: "reconnect", attempt }));

  await connected(socket);
  const firstId = socket.id;

  const dropped = once(socket, "disconnect");
  socket.emit("engine-close");
  await dropped;
  await once(socket, "connect", 5000);
  out({ event: "reconnected", newId: socket.id !== firstId });

  const kicked = once(socket, "disconnect");
  socket.emit("kick", kickClose);
  await kicked;
  await delay(800); // several reconnection delays: nothing must happen
  out({ event: "final", connects, connected: socket.connected, active: socket.active });
  socket.close();
});

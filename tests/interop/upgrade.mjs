// Polling then upgrade: the server streams n = 0, 1, 2, … (about one per millisecond) from the
// moment the namespace is joined, while the client upgrades to WebSocket. The probe is held back
// until 20 numbers came by polling, and the stream is stopped only once 20 more came by WebSocket,
// so the upgrade always happens mid-stream. Reports what arrived on which transport.
import { NodeXHR, NodeWebSocket } from "socket.io-client";
import { io, out, args, url, run, connected, once } from "./lib.mjs";

const tag = args[0] ?? "upgrade";
const received = [];
const byTransport = { polling: 0, websocket: 0 };
let releaseProbe;
const probeGate = new Promise((resolve) => (releaseProbe = resolve));

class GatedWebSocket extends NodeWebSocket {
  doOpen() {
    probeGate.then(() => super.doOpen());
  }
}

run(async () => {
  let upgradedAt = -1;
  let stopAt = Infinity;
  const socket = io(url, { transports: [NodeXHR, GatedWebSocket], reconnection: false, auth: { tag, stream: -1 } });
  socket.on("n", (n) => {
    received.push(n);
    byTransport[socket.io.engine.transport.name]++;
    if (received.length === 20) releaseProbe();
    if (received.length === stopAt) socket.emit("stop-stream");
  });
  const ended = once(socket, "stream-end", 10000);
  socket.io.on("open", () => {
    out({ event: "open", transport: socket.io.engine.transport.name });
    socket.io.engine.on("upgrade", (t) => {
      upgradedAt = received.length;
      stopAt = received.length + 20;
      out({ event: "upgrade", transport: t.name, receivedSoFar: received.length });
    });
  });
  await connected(socket);
  out({ event: "connect", transport: socket.io.engine.transport.name });
  const [sent] = await ended;
  out({ event: "end", sent, received, byTransport, upgradedAt, transport: socket.io.engine.transport.name });
  socket.disconnect();
});

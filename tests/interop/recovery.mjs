// Connection state recovery through network cuts. A TCP proxy sits between the client and the server;
// the scenario cuts it (destroys every connection and refuses new ones for N seconds, then accepts
// again), so the client notices a transport close and reconnects by itself. The server broadcasts a
// steady numbered stream ("tick", n) on the namespace; after each cut the scenario reports
// socket.recovered and whether socket.id is the same, and at the end every gap and duplicate.
// args: transport mode (websocket | polling | upgrade), cut seconds (comma list, e.g. "1,5"), namespace.
// With a fourth argument "quiet:<count>": the server does not stream; the client connects, receives
// nothing, is cut once (first cut length), and after it reconnects waits for <count> "tick" events that
// the server broadcast during the cut (socket.io-client then sends {pid} without offset).
import { startCutProxy } from "./cut-proxy.mjs";
import { io, out, args, url, run, connected, once, delay } from "./lib.mjs";

const mode = args[0] ?? "websocket";
const cuts = (args[1] ?? "1").split(",").map(Number);
const nsp = args[2] ?? "/stream";
const quiet = args[3]?.startsWith("quiet:") ? Number(args[3].slice(6)) : null;
const target = new URL(url);

const proxy = await startCutProxy(target);
const proxyUrl = proxy.url;
const cut = () => proxy.cut();

async function until(condition, what, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}`);
    await delay(10);
  }
}

// --- the client --------------------------------------------------------------------------------
const transports = mode === "websocket" ? ["websocket"] : mode === "polling" ? ["polling"] : ["polling", "websocket"];

run(async () => {
  const socket = io(proxyUrl + nsp, {
    transports,
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
    randomizationFactor: 0.2,
  });
  const received = [];
  socket.on("tick", (n) => received.push(n));
  socket.on("disconnect", (reason) => out({ event: "disconnect", reason }));
  socket.on("connect", () =>
    out({ event: "connect", id: socket.id, recovered: socket.recovered, transport: socket.io.engine.transport.name }));

  await connected(socket, 10000);
  const firstId = socket.id;
  if (quiet !== null) {
    const dropped = once(socket, "disconnect", 10000);
    cut();
    await dropped;
    await delay(cuts[0] * 1000);
    proxy.heal();
    await once(socket, "connect", 20000);
    await until(() => received.length >= quiet, "the ticks of the cut");
    await delay(300); // no duplicate comes after them
    out({ event: "quiet", recovered: socket.recovered === true, sameId: socket.id === firstId, received });
    socket.disconnect();
    proxy.close();
    return;
  }
  for (const seconds of cuts) {
    const before = received.length;
    await until(() => received.length >= before + 20, "ticks before the cut");
    if (mode === "upgrade") {
      await until(() => socket.io.engine.transport.name === "websocket", "the upgrade");
    }
    const transport = socket.io.engine.transport.name;
    const dropped = once(socket, "disconnect", 10000);
    const lastBefore = received[received.length - 1];
    cut();
    await dropped;
    await delay(seconds * 1000);
    proxy.heal();
    await once(socket, "connect", 20000);
    const at = received.length;
    await until(() => received.length >= at + 20, "ticks after the reconnection");
    out({
      event: "cut",
      seconds,
      transportBefore: transport,
      transportAfter: socket.io.engine.transport.name,
      recovered: socket.recovered === true,
      sameId: socket.id === firstId,
      lastBefore,
      firstAfter: received[received.indexOf(lastBefore) + 1],
    });
  }

  const gaps = [];
  let duplicates = 0;
  for (let i = 1; i < received.length; i++) {
    const step = received[i] - received[i - 1];
    if (step <= 0) duplicates++;
    else if (step > 1) gaps.push([received[i - 1], received[i]]);
  }
  out({ event: "stream", count: received.length, first: received[0], last: received[received.length - 1], gaps, duplicates });
  socket.disconnect();
  proxy.close();
}, 60000);

// Opens <count> socket.io-client sockets on one namespace, one every <intervalMs>, alternating the
// polling (then upgrade) and websocket-only transports, for the replay tests.
//   node tests/interop/gateway/joiners.mjs <url-with-namespace> <apikey> <count> <intervalMs>
// Prints one JSON object per line: {"type":"connect","client":i} | {"type":"event","client":i,"event":e,"seq":n}
// | {"type":"connect_error","client":i,"message":m} | {"type":"disconnect","client":i,"reason":r}.
// Exits when stdin closes.
import { io } from "socket.io-client";
import { createInterface } from "node:readline";

const [url, apikey, countText, intervalText] = process.argv.slice(2);
const count = Math.min(Number(countText ?? 10), 200);
const interval = Number(intervalText ?? 20);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const sockets = [];

for (let i = 0; i < count; i++) {
  const transports = i % 2 === 0 ? ["polling", "websocket"] : ["websocket"];
  const socket = io(url, { reconnection: false, forceNew: true, transports, auth: { apikey } });
  sockets.push(socket);
  socket.on("connect", () => out({ type: "connect", client: i }));
  socket.on("connect_error", (err) => out({ type: "connect_error", client: i, message: err.message }));
  socket.on("disconnect", (reason) => out({ type: "disconnect", client: i, reason }));
  socket.onAny((event, envelope) => out({ type: "event", client: i, event, seq: envelope?.data?.seq ?? null }));
  await new Promise((resolve) => setTimeout(resolve, interval));
}

const rl = createInterface({ input: process.stdin });
rl.on("close", () => {
  for (const s of sockets) s.disconnect();
  setTimeout(() => process.exit(0), 10);
});

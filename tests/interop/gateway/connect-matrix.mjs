// Tries several socket.io-client 4.x connections at once and reports how each ended.
//   node tests/interop/gateway/connect-matrix.mjs <base-url> '[{"label":"a","nsp":"/sales","options":{...}}, ...]'
// Prints one line per attempt: {"label":"a","ok":true,"transport":"websocket"} or
// {"label":"a","ok":false,"message":"Invalid API key"}, then exits 0.
import { io } from "socket.io-client";

const [baseUrl, specsJson] = process.argv.slice(2);
if (!baseUrl || !specsJson) {
  console.error("usage: node connect-matrix.mjs <base-url> <specs-json>");
  process.exit(2);
}
const base = baseUrl.replace(/\/+$/, "");
const specs = JSON.parse(specsJson);

const attempt = (spec) =>
  new Promise((resolve) => {
    const socket = io(base + spec.nsp, { reconnection: false, forceNew: true, timeout: 8000, ...spec.options });
    const finish = (result) => {
      socket.disconnect();
      resolve({ label: spec.label, ...result });
    };
    socket.on("connect", () => finish({ ok: true, transport: socket.io.engine.transport.name }));
    socket.on("connect_error", (err) => finish({ ok: false, message: err.message }));
  });

for (const result of await Promise.all(specs.map(attempt))) {
  process.stdout.write(JSON.stringify(result) + "\n");
}
process.exit(0);

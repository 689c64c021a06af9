// One socket of an older official client (socket.io-client 4.0.x … 4.7.x, installed under the npm aliases
// sio40 … sio47 of tests/interop/package.json), driven by tests/Evolution.Events.Gateway.Tests/ClientMatrixTests.cs.
//   node tests/interop/gateway/versioned-client.mjs <package> <url-with-namespace> '<options-json>'
// Prints one JSON object per line: {"type":"version"|"connect"|"connect_error"|"event"|"disconnect"|"ack"|"error", ...}.
// Reads commands from stdin, one JSON object per line:
//   {"cmd":"emit","event":"e","args":[...],"id":1}  -> emits with an ack; {"type":"ack","id":1,"args":[...]}
//   {"cmd":"drop"}                                   -> closes the Engine.IO connection under the socket (as a network
//                                                       loss would); the client's own reconnection brings it back
//   {"cmd":"exit"}                                   -> disconnects and exits 0
// Exits when stdin closes.
import { createRequire } from "node:module";
import { createInterface } from "node:readline";

const [pkg, url, optionsJson] = process.argv.slice(2);
if (!pkg || !url) {
  console.error("usage: node versioned-client.mjs <package> <url> [options-json]");
  process.exit(2);
}
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const require = createRequire(import.meta.url);
const { version } = require(`${pkg}/package.json`);
// 4.0–4.2 ship CommonJS only (module.exports = lookup, with .io on it); 4.3+ also ESM with a named export
const mod = await import(pkg);
const io = mod.io ?? mod.default?.io ?? mod.default;
out({ type: "version", version });

const options = {
  forceNew: true,
  reconnection: true,
  reconnectionDelay: 100,
  reconnectionDelayMax: 500,
  ...JSON.parse(optionsJson ?? "{}"),
};
const socket = io(url, options);
socket.on("connect", () => out({ type: "connect", id: socket.id, transport: socket.io.engine.transport.name }));
socket.on("connect_error", (err) => out({ type: "connect_error", message: err.message }));
socket.on("disconnect", (reason) => out({ type: "disconnect", reason }));
// onAny exists since 3.0
socket.onAny((event, ...args) => out({ type: "event", event, args }));

const exit = () => {
  socket.disconnect();
  setTimeout(() => process.exit(0), 10);
};
const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    out({ type: "error", message: `bad command: ${e.message}` });
    return;
  }
  if (cmd.cmd === "emit") {
    // socket.timeout() only exists since 4.4: a plain ack callback works on every 4.x
    socket.emit(cmd.event, ...(cmd.args ?? []), (...answer) => out({ type: "ack", id: cmd.id ?? null, args: answer }));
  } else if (cmd.cmd === "drop") {
    socket.io.engine.close();
  } else if (cmd.cmd === "exit") {
    exit();
  } else {
    out({ type: "error", message: `unknown command ${cmd.cmd}` });
  }
});
rl.on("close", exit);

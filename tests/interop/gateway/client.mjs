// One socket.io-client 4.x socket driven by the gateway tests.
//   node tests/interop/gateway/client.mjs <url-with-namespace> '<options-json>'
// Prints one JSON object per line: {"type":"open"|"upgrade"|"connect"|"connect_error"|"event"|"disconnect"|"ack"|"error", ...}.
// Reads commands from stdin, one JSON object per line:
//   {"cmd":"emit","event":"e","args":[...],"ack":true,"id":1}  -> {"type":"ack","id":1,"args":[...]}
//   {"cmd":"exit"}                                             -> disconnects and exits 0
// Exits when stdin closes.
import { io } from "socket.io-client";
import { createInterface } from "node:readline";
import { createRequire } from "node:module";

const [url, optionsJson] = process.argv.slice(2);
if (!url) {
  console.error("usage: node client.mjs <url> [options-json]");
  process.exit(2);
}
const options = { reconnection: false, forceNew: true, ...JSON.parse(optionsJson ?? "{}") };
// {"parser":"msgpack"}: socket.io-msgpack-parser (for a gateway with WEBSOCKET_PARSER=msgpack)
if (options.parser === "msgpack") options.parser = createRequire(import.meta.url)("socket.io-msgpack-parser");
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");

const socket = io(url, options);
// "open": the Engine.IO connection is up (its first transport); "upgrade": it moved to another one.
socket.io.on("open", () => {
  const engine = socket.io.engine;
  out({ type: "open", transport: engine.transport.name });
  engine.on("upgrade", (t) => out({ type: "upgrade", transport: t.name }));
});
socket.on("connect", () => out({ type: "connect", id: socket.id, transport: socket.io.engine.transport.name }));
socket.on("connect_error", (err) => out({ type: "connect_error", message: err.message, data: err.data ?? null }));
socket.on("disconnect", (reason) => out({ type: "disconnect", reason }));
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
    const args = cmd.args ?? [];
    if (cmd.ack) {
      socket.timeout(cmd.timeoutMs ?? 10000).emit(cmd.event, ...args, (err, ...answer) =>
        out(err ? { type: "ack", id: cmd.id ?? null, error: err.message } : { type: "ack", id: cmd.id ?? null, args: answer }));
    } else {
      socket.emit(cmd.event, ...args);
    }
  } else if (cmd.cmd === "exit") {
    exit();
  } else {
    out({ type: "error", message: `unknown command ${cmd.cmd}` });
  }
});
rl.on("close", exit);

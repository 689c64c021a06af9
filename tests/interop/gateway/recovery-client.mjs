// One socket.io-client 4.x socket behind a TCP proxy that the gateway tests can cut, for connection
// state recovery. The client reconnects by itself (reconnection on) once the proxy accepts again.
//   node tests/interop/gateway/recovery-client.mjs <url-with-namespace> '<options-json>'
// Prints one JSON object per line:
//   {"type":"connect","id":…,"recovered":bool,"pid":…|null}  ("pid": the private id the CONNECT carried)
//   {"type":"connect_error","message":…}, {"type":"event","event":…,"args":[…]}, {"type":"disconnect","reason":…}
//   {"type":"cut"} once every connection through the proxy is destroyed
// Reads commands from stdin, one JSON object per line:
//   {"cmd":"cut"}   destroys every connection and refuses new ones
//   {"cmd":"heal"}  accepts connections again
//   {"cmd":"exit"}  disconnects and exits 0
import net from "node:net";
import { io } from "socket.io-client";
import { createInterface } from "node:readline";

const [url, optionsJson] = process.argv.slice(2);
if (!url) {
  console.error("usage: node recovery-client.mjs <url> [options-json]");
  process.exit(2);
}
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const target = new URL(url);

let accepting = true;
const live = new Set();
const proxy = net.createServer((downstream) => {
  if (!accepting) {
    downstream.destroy();
    return;
  }
  const upstream = net.connect(Number(target.port), target.hostname);
  live.add(downstream);
  live.add(upstream);
  const close = () => {
    downstream.destroy();
    upstream.destroy();
    live.delete(downstream);
    live.delete(upstream);
  };
  downstream.on("error", close).on("close", close);
  upstream.on("error", close).on("close", close);
  downstream.pipe(upstream);
  upstream.pipe(downstream);
});
await new Promise((resolve) => proxy.listen(0, "127.0.0.1", resolve));

const options = {
  forceNew: true,
  reconnectionDelay: 200,
  reconnectionDelayMax: 500,
  randomizationFactor: 0,
  ...JSON.parse(optionsJson ?? "{}"),
};
const socket = io(`http://127.0.0.1:${proxy.address().port}${target.pathname}`, options);
socket.on("connect", () => out({ type: "connect", id: socket.id, recovered: socket.recovered === true, pid: socket._pid ?? null }));
socket.on("connect_error", (err) => out({ type: "connect_error", message: err.message }));
socket.on("disconnect", (reason) => out({ type: "disconnect", reason }));
socket.onAny((event, ...args) => out({ type: "event", event, args }));

const exit = () => {
  socket.disconnect();
  proxy.close();
  setTimeout(() => process.exit(0), 10);
};
const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  if (!line.trim()) return;
  const cmd = JSON.parse(line);
  if (cmd.cmd === "cut") {
    accepting = false;
    for (const s of live) s.destroy();
    live.clear();
    out({ type: "cut" });
  } else if (cmd.cmd === "heal") {
    accepting = true;
  } else if (cmd.cmd === "exit") {
    exit();
  } else {
    out({ type: "error", message: `unknown command ${cmd.cmd}` });
  }
});
rl.on("close", exit);

// One socket.io-client 4.x socket behind a TCP proxy that the gateway tests can cut, for connection
// state recovery. The client reconnects by itself (reconnection on) once the proxy accepts again.
//   node tests/interop/gateway/recovery-client.mjs <url-with-namespace> '<options-json>'
// Prints one JSON object per line:
//   {"type":"connect","id":…,"recovered":bool,"pid":…|null}  ("pid": the private id the CONNECT carried)
//   {"type":"connect_error","message":…}, {"type":"event","event":…,"args":[…]}, {"type":"disconnect","reason":…}
//   {"type":"cut"} once every connection through the proxy is destroyed
// Reads commands from stdin, one JSON object per line:
//   {"cmd":"cut"}   destroys every connection and refuses new ones
//   {"cmd":"heal"}  accepts connections again; with "target":"http://host:port", sends them to that server
//                   from now on (another node of a cluster)
//   {"cmd":"exit"}  disconnects and exits 0
import { startCutProxy } from "../cut-proxy.mjs";
import { io } from "socket.io-client";
import { createInterface } from "node:readline";

const [url, optionsJson] = process.argv.slice(2);
if (!url) {
  console.error("usage: node recovery-client.mjs <url> [options-json]");
  process.exit(2);
}
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const target = new URL(url);

const proxy = await startCutProxy(target);

const options = {
  forceNew: true,
  reconnectionDelay: 200,
  reconnectionDelayMax: 500,
  randomizationFactor: 0,
  ...JSON.parse(optionsJson ?? "{}"),
};
const socket = io(`${proxy.url}${target.pathname}`, options);
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
    proxy.cut();
    out({ type: "cut" });
  } else if (cmd.cmd === "heal") {
    if (cmd.target) proxy.retarget(cmd.target);
    proxy.heal();
  } else if (cmd.cmd === "exit") {
    exit();
  } else {
    out({ type: "error", message: `unknown command ${cmd.cmd}` });
  }
});
rl.on("close", exit);

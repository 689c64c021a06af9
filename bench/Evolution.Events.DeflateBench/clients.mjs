// N engine.io WebSocket clients (ws, which offers permessage-deflate by default) for Program.cs: prints
// "ready <extension>" once all are open, then "received <count>, <bytes> bytes read" once <expected> messages came.
import { createRequire } from "node:module";
const require = createRequire(new URL("../../../../../tests/interop/package.json", import.meta.url));
const WebSocket = require("ws");
const [url, n, expected] = [process.argv[2], +process.argv[3], +process.argv[4]];
let received = 0, open = 0;
const guard = setTimeout(() => { console.log(`timeout after ${received} messages`); process.exit(1); }, 120000);
const sockets = [];
for (let i = 0; i < n; i++) {
  const ws = new WebSocket(url.replace("http", "ws") + "/engine.io/?EIO=4&transport=websocket");
  sockets.push(ws);
  ws.on("open", () => { if (++open === n) console.log(`ready, extensions: ${ws.extensions || "(none)"}`); });
  ws.on("message", (data) => {
    const s = data.toString();
    if (s[0] === "2") { ws.send("3"); return; }
    if (s[0] === "4" && ++received === expected) {
      const bytes = sockets.reduce((a, w) => a + w._socket.bytesRead, 0);
      console.log(`received ${received}, ${bytes} bytes read on the wire in all`);
      clearTimeout(guard);
      setTimeout(() => process.exit(0), 100);
    }
  });
  ws.on("error", (e) => { console.log("error " + e.message); process.exit(1); });
}

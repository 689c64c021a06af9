// Connection state recovery across the nodes of a redis-streams cluster: our servers A (argv[2]) and B
// (args[0]) and a Node socket.io server with @socket.io/redis-streams-adapter 0.3, on one Redis (args[1]).
// The stock socket.io-client reaches A through a cuttable TCP proxy (cut-proxy.mjs) and joins "red". Each leg
// cuts the proxy, broadcasts to "red" from A, B and the Node server (and to "blue", not for it) while the
// client is away, re-points the proxy to the next server and heals it: A -> B -> Node -> A. After each
// reconnection the scenario reports socket.recovered and whether socket.id stayed; at the end, every message
// the client received, in order (the C# test checks each arrived exactly once).
import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-streams-adapter";
import { createClient } from "redis";
import { startCutProxy } from "./cut-proxy.mjs";
import { io, out, args, url, run, connected, once, ack, delay } from "./lib.mjs";

const [urlB, redisUrl] = args;

async function until(condition, what, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}`);
    await delay(20);
  }
}

run(async () => {
  const redis = createClient({ url: redisUrl });
  await redis.connect();
  const http = createServer();
  const server = new Server(http, {
    adapter: createAdapter(redis),
    connectionStateRecovery: { maxDisconnectionDuration: 60000 },
  });
  const tagOf = (socket) => socket.handshake.auth?.tag ?? "";
  server.on("connection", (socket) => {
    socket.on("join", (room, cb) => { socket.join(room); cb([...socket.rooms].sort()); });
    socket.on("to-room", (room, msg, cb) => { server.to(room).emit("room-message", msg, tagOf(socket)); cb(true); });
    socket.on("broadcast", (msg, cb) => { socket.broadcast.emit("broadcast-message", msg, tagOf(socket)); cb(true); });
  });
  await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
  const nodeUrl = `http://127.0.0.1:${http.address().port}`;
  for (let i = 0; i < 200 && (await server.of("/").adapter.serverCount()) < 3; i++) await delay(50);

  const helper = async (at, tag) => {
    const socket = io(at, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { tag } });
    await connected(socket);
    return socket;
  };
  const hA = await helper(url, "hA");
  const hB = await helper(urlB, "hB");
  const hN = await helper(nodeUrl, "hN");

  const proxy = await startCutProxy(new URL(url));
  const main = io(proxy.url, { transports: ["websocket"], reconnectionDelay: 200, reconnectionDelayMax: 1000, randomizationFactor: 0.2, auth: { tag: "main" } });
  const received = [];
  main.on("room-message", (msg) => received.push(msg));
  main.on("broadcast-message", (msg) => received.push(msg));
  await connected(main, 10000);
  const firstId = main.id;
  await ack(main, "join", "red");
  await ack(hA, "to-room", "red", "live-0");
  await until(() => received.includes("live-0"), "live-0");

  const legs = [["B", urlB], ["node", nodeUrl], ["A", url]];
  for (let i = 0; i < legs.length; i++) {
    const [name, to] = legs[i];
    const dropped = once(main, "disconnect", 10000);
    proxy.cut();
    await dropped;
    // the session is kept (in Redis) before the client may come back
    await until(async () => (await redis.exists("sio:session:" + main._pid)) === 1, "the kept session");
    await ack(hA, "to-room", "red", `m${i}-a`);
    await ack(hB, "to-room", "red", `m${i}-b`);
    await ack(hN, "to-room", "red", `m${i}-n`);
    await ack(hB, "broadcast", `m${i}-all-b`);
    await ack(hN, "to-room", "blue", `x${i}`);
    proxy.retarget(to);
    proxy.heal();
    await once(main, "connect", 20000);
    out({ event: "leg", to: name, recovered: main.recovered === true, sameId: main.id === firstId });
    await ack(hN, "to-room", "red", `live-${i + 1}`);
    await until(() => received.includes(`live-${i + 1}`), `live-${i + 1}`);
  }
  await delay(700); // duplicates, if any, arrive
  out({ event: "received", received });

  main.disconnect();
  for (const h of [hA, hB, hN]) h.disconnect();
  proxy.close();
  server.close();
  await redis.quit();
}, 60000);

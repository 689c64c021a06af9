// A Node socket.io server with @socket.io/redis-adapter 8.x and one of our servers (argv[2]) on the same
// Redis (argv[3]): clients on each side join "red" or "blue", then broadcasts from each side (all, a room,
// two rooms except one, socket.broadcast) must reach every matching client exactly once. Reports what each got.
import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";
import { io, out, args, url, run, connected, ack, delay } from "./lib.mjs";

const redisUrl = args[0];

run(async () => {
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const http = createServer();
  const server = new Server(http, { adapter: createAdapter(pub, sub) });
  const tagOf = (socket) => socket.handshake.auth?.tag ?? "";
  server.on("connection", (socket) => {
    socket.on("join", (room, cb) => { socket.join(room); cb([...socket.rooms].sort()); });
    socket.on("to-room", (room, msg, cb) => { server.to(room).emit("room-message", msg, tagOf(socket)); cb(true); });
    socket.on("broadcast", (msg, cb) => { socket.broadcast.emit("broadcast-message", msg, tagOf(socket)); cb(true); });
    socket.on("rooms-except", (msg, cb) => { server.to(["red", "blue"]).except("red").emit("room-message", msg, tagOf(socket)); cb(true); });
    socket.on("binary", (cb) => { server.emit("bin", Buffer.from([1, 2, 3]), "after"); cb(true); });
  });
  await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
  const nodeUrl = `http://127.0.0.1:${http.address().port}`;

  // both nodes count each other before anything is sent
  for (let i = 0; i < 200 && (await server.of("/").adapter.serverCount()) < 2; i++) await delay(50);
  out({ event: "servers", count: await server.of("/").adapter.serverCount() });

  const received = {};
  const clients = {};
  for (const [name, at, room] of [["nodeRed", nodeUrl, "red"], ["nodeBlue", nodeUrl, "blue"], ["oursRed", url, "red"], ["oursBlue", url, "blue"]]) {
    const socket = io(at, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { tag: name } });
    received[name] = [];
    socket.on("room-message", (msg, from) => received[name].push(`${msg}<${from}`));
    socket.on("broadcast-message", (msg, from) => received[name].push(`all:${msg}<${from}`));
    socket.on("bin", (data, after) => received[name].push(`bin:${[...new Uint8Array(data)].join(",")}:${after}`));
    clients[name] = { socket, room };
  }
  await Promise.all(Object.values(clients).map((c) => connected(c.socket)));
  for (const c of Object.values(clients)) await ack(c.socket, "join", c.room);

  await ack(clients.nodeBlue.socket, "to-room", "red", "n1");   // nodeRed, oursRed
  await ack(clients.oursBlue.socket, "to-room", "red", "o1");   // nodeRed, oursRed
  await ack(clients.nodeRed.socket, "broadcast", "n2");         // all but nodeRed
  await ack(clients.oursRed.socket, "broadcast", "o2");         // all but oursRed
  await ack(clients.nodeRed.socket, "rooms-except", "n3");      // nodeBlue, oursBlue
  await ack(clients.nodeBlue.socket, "binary");                 // all
  await delay(700);                                             // let strays (duplicates) arrive, if any
  out({ event: "received", ...received });

  // requests from the Node peer to our nodes
  const gone = new Promise((resolve) => clients.oursBlue.socket.on("disconnect", (reason) => resolve(reason)));
  server.in("blue").disconnectSockets();                        // oursBlue is disconnected by our node
  out({ event: "disconnected", oursBlue: await gone });
  server.serverSideEmit("peer-hello", "x", 1);
  const answers = await server.serverSideEmitWithAck("peer-ask", "q");
  out({ event: "answers", answers: answers.sort() });
  for (const c of Object.values(clients)) c.socket.disconnect();
  server.close();
  await Promise.all([pub.quit(), sub.quit()]);
});

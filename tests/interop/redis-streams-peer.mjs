// A Node socket.io server with @socket.io/redis-streams-adapter 0.3 and two of our servers (argv[2] = A,
// args[0] = B) on the same Redis (args[1]), connection state recovery on everywhere (broadcasts carry stream
// offsets). Clients on each of the three servers join "red" or "blue"; broadcasts from each side (a room,
// socket.broadcast, two rooms except one, binary) must reach every matching client exactly once. Then
// fetchSockets and serverSideEmit (with and without ack) both ways. Reports what each got.
import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-streams-adapter";
import { createClient } from "redis";
import { io, out, args, url, run, connected, ack, delay } from "./lib.mjs";

const [urlB, redisUrl] = args;

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
    socket.data.tag = tagOf(socket);
    socket.on("join", (room, cb) => { socket.join(room); cb([...socket.rooms].sort()); });
    socket.on("to-room", (room, msg, cb) => { server.to(room).emit("room-message", msg, tagOf(socket)); cb(true); });
    socket.on("broadcast", (msg, cb) => { socket.broadcast.emit("broadcast-message", msg, tagOf(socket)); cb(true); });
    socket.on("rooms-except", (msg, cb) => { server.to(["red", "blue"]).except("red").emit("room-message", msg, tagOf(socket)); cb(true); });
    socket.on("binary", (cb) => { server.emit("bin", Buffer.from([1, 2, 3]), "after"); cb(true); });
  });
  server.on("ours-ask", (arg, cb) => cb("from-node:" + arg));
  const peerHello = new Promise((resolve) => server.on("ours-hello", (...a) => resolve(a)));
  await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
  const nodeUrl = `http://127.0.0.1:${http.address().port}`;

  // the three nodes count each other before anything is sent
  for (let i = 0; i < 200 && (await server.of("/").adapter.serverCount()) < 3; i++) await delay(50);
  out({ event: "servers", count: await server.of("/").adapter.serverCount() });

  const received = {};
  const clients = {};
  const layout = [["nodeRed", nodeUrl, "red"], ["nodeBlue", nodeUrl, "blue"], ["aRed", url, "red"], ["aBlue", url, "blue"], ["bRed", urlB, "red"], ["bBlue", urlB, "blue"]];
  for (const [name, at, room] of layout) {
    const socket = io(at, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { tag: name } });
    received[name] = [];
    socket.on("room-message", (msg, from) => received[name].push(`${msg}<${from}`));
    socket.on("broadcast-message", (msg, from) => received[name].push(`all:${msg}<${from}`));
    socket.on("bin", (data, after) => received[name].push(`bin:${[...new Uint8Array(data)].join(",")}:${after}`));
    clients[name] = { socket, room };
  }
  await Promise.all(Object.values(clients).map((c) => connected(c.socket)));
  for (const c of Object.values(clients)) await ack(c.socket, "join", c.room);

  await ack(clients.nodeBlue.socket, "to-room", "red", "n1");   // the reds
  await ack(clients.aBlue.socket, "to-room", "red", "a1");      // the reds
  await ack(clients.bBlue.socket, "to-room", "red", "b1");      // the reds
  await ack(clients.nodeRed.socket, "broadcast", "n2");         // all but nodeRed
  await ack(clients.aRed.socket, "broadcast", "a2");            // all but aRed
  await ack(clients.bBlue.socket, "broadcast", "b2");           // all but bBlue
  await ack(clients.nodeRed.socket, "rooms-except", "n3");      // the blues
  await ack(clients.aRed.socket, "rooms-except", "a3");         // the blues
  await ack(clients.nodeBlue.socket, "binary");                 // all
  await delay(1000);                                            // let strays (duplicates) arrive, if any
  out({ event: "received", ...received });

  // fetchSockets: from the Node server (every node's sockets) and from ours (asked by a client of A)
  const fetched = await server.fetchSockets();
  out({ event: "node-fetched", sockets: fetched.map((s) => ({ tag: s.data.tag ?? s.handshake.auth?.tag, rooms: [...s.rooms].filter((r) => r !== s.id) })) });
  const [oursFetched] = await ack(clients.aRed.socket, "fetch-all");
  out({ event: "ours-fetched", sockets: oursFetched });

  // serverSideEmit both ways
  server.serverSideEmit("peer-hello", "x", 1);
  const answers = await server.serverSideEmitWithAck("peer-ask", "q");
  out({ event: "answers", answers: answers.sort() });
  const [oursAnswers] = await ack(clients.aRed.socket, "ask-cluster");
  out({ event: "ours-answers", answers: oursAnswers });
  out({ event: "ours-hello", args: await Promise.race([peerHello, delay(5000).then(() => "none")]) });

  for (const c of Object.values(clients)) c.socket.disconnect();
  server.close();
  await redis.quit();
}, 40000);

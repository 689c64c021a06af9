// Two of our servers (argv[2] = A, argv[3] = B) and one Node socket.io server with @socket.io/redis-adapter 8.x
// on one Redis (argv[4]); argv[5] = static | dynamic | dynamic-private uses createShardedAdapter with that
// subscriptionMode instead (then no allRooms and no emitter: neither exists for the sharded adapter). One client on
// each node: nodeC (Node), oursA, oursB. Requests that await answers, in both directions:
//   fetchSockets          Node -> ours (our sockets with rooms, data, auth) and ours -> Node (A's "fetch" handler)
//   serverSideEmitWithAck Node -> ours ("ask" answered by A and B) and ours -> Node+B (A's "ask-cluster" handler)
//   broadcast with acks   Node -> all clients, ours -> all clients (A's "ask-clients" handler), each counting 3
//   allRooms              Node -> ours (SOCKETS/ALL_ROOMS answered by our nodes)
//   RedisEmitter (.NET)   A's "use-emitter" handler publishes with our emitter; the Node server's client receives
import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";
import { io, out, args, url, run, connected, ack, delay } from "./lib.mjs";

const [urlB, redisUrl, mode] = args;
const sharded = Boolean(mode);

run(async () => {
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const http = createServer();
  const adapter = sharded ? createShardedAdapter(pub, sub, { subscriptionMode: mode }) : createAdapter(pub, sub, { requestsTimeout: 5000 });
  const server = new Server(http, { adapter });
  // a dynamic mode subscribes a room's channel when the room appears: wait for the subscriptions before publishing
  const subscribers = async (room, count) => {
    if (!sharded) return;
    for (let i = 0; i < 200; i++) {
      const [, n] = await pub.sendCommand(["PUBSUB", "SHARDNUMSUB", `socket.io#/#${room}#`]);
      if (mode === "static" || Number(n) >= count) return;
      await delay(25);
    }
    throw new Error(`channel of ${room} not subscribed by ${count}`);
  };
  server.on("connection", (socket) => {
    socket.data.who = "node:" + socket.handshake.auth?.tag;
    socket.on("join", (room, cb) => { socket.join(room); cb([...socket.rooms].sort()); });
  });
  server.on("ask", (q, callback) => callback("N:" + q));
  const emitterEvents = [];
  server.on("emitter-hello", (...a) => emitterEvents.push(a));
  await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
  const nodeUrl = `http://127.0.0.1:${http.address().port}`;

  for (let i = 0; i < 200 && (await server.of("/").adapter.serverCount()) < 3; i++) await delay(50);
  out({ event: "servers", count: await server.of("/").adapter.serverCount() });

  const clients = {};
  const received = {};
  for (const [name, at, room] of [["nodeC", nodeUrl, "red"], ["oursA", url, "red"], ["oursB", urlB, "blue"]]) {
    const socket = io(at, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { tag: name } });
    received[name] = [];
    socket.on("question", (n, cb) => cb(`${name}:${n}`));
    socket.on("news", (...a) => received[name].push(a.map((x) => (Buffer.isBuffer(x) ? `bin:${[...x]}` : String(x))).join("|")));
    clients[name] = { socket, room };
  }
  await Promise.all(Object.values(clients).map((c) => connected(c.socket)));
  for (const c of Object.values(clients)) await ack(c.socket, "join", c.room);
  await subscribers("red", 2);
  await subscribers("blue", 1);
  const sid = Object.fromEntries(Object.entries(clients).map(([n, c]) => [n, c.socket.id]));
  out({ event: "sids", ...sid });

  // fetchSockets from the Node side: every node's sockets
  const describe = (s) => ({ id: s.id, rooms: [...s.rooms].sort(), data: s.data, tag: s.handshake.auth?.tag ?? null });
  const all = (await server.fetchSockets()).map(describe).sort((a, b) => a.tag.localeCompare(b.tag));
  const blue = (await server.in("blue").fetchSockets()).map(describe);
  const notRed = (await server.except("red").fetchSockets()).map(describe);
  out({ event: "node-fetch", all, blue, notRed });

  // a remote socket fetched from the Node side acts on our node: join + emit
  const remoteB = (await server.in("blue").fetchSockets())[0];
  remoteB.join("green");
  await subscribers("green", 1);
  await delay(200);
  server.to("green").emit("news", "to-green");

  // fetchSockets from our side: the Node server's socket is there
  const [oursFetch] = await ack(clients.oursA.socket, "fetch", "red");
  out({ event: "ours-fetch", sockets: oursFetch });

  // server-side events with ack, both ways
  const nodeAsk = await server.serverSideEmitWithAck("ask", "q1");
  const [oursAsk] = await ack(clients.oursA.socket, "ask-cluster", "q2");
  out({ event: "ask", node: nodeAsk.sort(), ours: oursAsk });

  // broadcasts with acks, both ways (every client answers, on every node)
  const nodeAcks = await server.timeout(5000).emitWithAck("question", 1);
  const nodeBlueAcks = await server.to("blue").timeout(5000).emitWithAck("question", 2);
  const [oursAcks] = await ack(clients.oursA.socket, "ask-clients", 3);
  out({ event: "acks", node: nodeAcks.sort(), nodeBlue: nodeBlueAcks, ours: oursAcks });

  if (sharded) {
    await delay(700);
    out({ event: "received", ...received });
    for (const c of Object.values(clients)) c.socket.disconnect();
    server.close();
    await Promise.all([pub.quit(), sub.quit()]);
    return;
  }

  // allRooms: SOCKETS / ALL_ROOMS answered by our nodes
  out({ event: "rooms", all: [...(await server.of("/").adapter.allRooms())].filter((r) => !Object.values(sid).includes(r)).sort() });

  // our .NET emitter, driven by A's handler, reaches the Node server's clients too
  const gone = new Promise((resolve) => clients.nodeC.socket.on("disconnect", (reason) => resolve(reason)));
  await ack(clients.oursA.socket, "use-emitter", sid.nodeC);
  const reason = await gone;
  await delay(700);
  out({ event: "received", ...received });
  out({ event: "emitter", nodeC: reason, serverSide: emitterEvents });

  for (const c of Object.values(clients)) c.socket.disconnect();
  server.close();
  await Promise.all([pub.quit(), sub.quit()]);
}, 30000);

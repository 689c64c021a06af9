// @socket.io/redis-emitter 5.x (a Node process that serves no client) publishing into a cluster of our servers
// (argv[2] = A, argv[3] = B) on one Redis (argv[4]): events to all, rooms, except, another namespace, then
// socketsJoin / socketsLeave / serverSideEmit / disconnectSockets. Reports what each client received.
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import { io, out, args, url, run, connected, ack, delay } from "./lib.mjs";

const [urlB, redisUrl] = args;

run(async () => {
  const redis = createClient({ url: redisUrl });
  await redis.connect();
  const emitter = new Emitter(redis);

  const clients = {};
  const received = {};
  for (const [name, at, nsp, room] of [["a1", url, "/", "red"], ["b1", urlB, "/", "blue"], ["adminB", urlB, "/admin", null]]) {
    const socket = io(at + nsp, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { tag: name, token: "secret" } });
    received[name] = [];
    socket.on("news", (...a) => received[name].push(a.map((x) => (Buffer.isBuffer(x) ? `bin:${[...x]}` : String(x))).join("|")));
    clients[name] = { socket, room };
  }
  await Promise.all(Object.values(clients).map((c) => connected(c.socket)));
  for (const c of Object.values(clients)) if (c.room) await ack(c.socket, "join", c.room);
  const gone = new Promise((resolve) => clients.a1.socket.on("disconnect", (reason) => resolve(reason)));

  emitter.emit("news", "all", Buffer.from([1, 2]));
  emitter.to("red").emit("news", "red");
  emitter.except("red").emit("news", "not-red");
  emitter.to(["red", "blue"]).except("blue").emit("news", "red-or-blue-not-blue");
  emitter.of("/admin").emit("news", "admin");
  emitter.in("blue").socketsJoin("green");
  emitter.to("green").emit("news", "green");
  emitter.in("green").socketsLeave("green");
  emitter.to("green").emit("news", "green-again");
  emitter.serverSideEmit("from-emitter", 1, "x");
  emitter.in("red").disconnectSockets();

  out({ event: "disconnected", a1: await gone });
  await delay(700);
  out({ event: "received", ...received });
  for (const c of Object.values(clients)) c.socket.disconnect();
  await redis.quit();
});

// Rooms: a and b join "r1", c does not. Reports what each client received.
import { io, out, args, url, run, connected, ack, delay } from "./lib.mjs";

const prefix = args[0] ?? "rooms";

run(async () => {
  const clients = {};
  const received = {};
  for (const name of ["a", "b", "c"]) {
    const socket = io(url, { forceNew: true, reconnection: false, auth: { tag: `${prefix}-${name}` } });
    received[name] = [];
    socket.on("room-message", (msg, from) => received[name].push(`${msg}<${from}`));
    socket.on("broadcast-message", (msg, from) => received[name].push(`all:${msg}<${from}`));
    clients[name] = socket;
  }
  await Promise.all(Object.values(clients).map((s) => connected(s)));

  out({ event: "joined", a: (await ack(clients.a, "join", "r1"))[0], b: (await ack(clients.b, "join", "r1"))[0] });

  await ack(clients.c, "to-room", "r1", "m1");        // a, b (c is not in r1)
  await ack(clients.a, "broadcast-room", "r1", "m2"); // b only (the sender is excluded)
  await ack(clients.b, "leave", "r1");
  await ack(clients.c, "to-room", "r1", "m3");        // a only
  await ack(clients.a, "broadcast", "m4");            // b and c
  await delay(300);                                   // let strays arrive, if any
  out({ event: "received", ...received });
  for (const socket of Object.values(clients)) socket.disconnect();
});

// One transport only (websocket | polling): connect, acks, plain emits, a burst and a large message.
import { io, out, args, url, run, connected, ack, once, disconnected } from "./lib.mjs";

const transport = args[0];
const tag = args[1] ?? `transport-${transport}`;

run(async () => {
  const socket = io(url, { transports: [transport], upgrade: false, reconnection: false, auth: { tag } });
  await connected(socket);
  out({ event: "connect", id: socket.id, transport: socket.io.engine.transport.name });

  out({ event: "ack", args: await ack(socket, "echo", "hello", 42, { a: [1, 2], s: "é€😀" }, null, true) });

  const echoed = once(socket, "echo");
  socket.emit("echo", "no-ack", 1.5);
  out({ event: "echo", args: await echoed });

  // a burst: many packets in flight at once (several per polling request)
  const burst = await Promise.all(Array.from({ length: 50 }, (_, i) => ack(socket, "echo", i)));
  out({ event: "burst", values: burst.map((r) => r[0]) });

  const big = "x".repeat(200_000);
  const [bigBack] = await ack(socket, "echo", big);
  out({ event: "big", length: bigBack.length, same: bigBack === big });

  out({ event: "who", value: (await ack(socket, "who"))[0] });
  out({ event: "final", transport: socket.io.engine.transport.name });
  await disconnected(socket);
});

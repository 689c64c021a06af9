// Socket API parity (issue 13) with the stock client on namespace /parity: the server's
// socket.timeout().emitWithAck() answered and expired, its packet middleware rejecting one
// event (no ack ever comes back, nothing else either), its typed emit, then a disconnect
// whose "disconnecting" handler the C# test checks.
import { io, out, args, url, run, connected, once } from "./lib.mjs";

const tag = args[0] ?? "parity";

run(async () => {
  const socket = io(url + "/parity", { reconnection: false, auth: { tag } });
  socket.on("question", (value, callback) => callback(value + 1));
  socket.on("ignored", () => {}); // never acks: the server's timeout expires
  const typed = once(socket, "typed");
  await connected(socket);
  out({ event: "typed", args: await typed });

  const result = once(socket, "result");
  socket.emit("start");
  out({ event: "result", args: await result });

  try {
    await socket.timeout(1000).emitWithAck("forbidden", 1);
    out({ event: "forbidden", acked: true });
  } catch (e) {
    out({ event: "forbidden", acked: false, error: e.message });
  }

  out({ event: "allowed", args: await socket.timeout(5000).emitWithAck("allowed", 2) });
  socket.disconnect();
});

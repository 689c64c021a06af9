// socket.io-client 2.x (Engine.IO 3, Socket.IO protocol 4) against a server with AllowEIO3, on one transport:
// connect to "/" (joined by the server, without a CONNECT), acks both ways, binary both ways, rooms, a
// namespace whose query is its auth (accepted, then refused with the error's data), disconnect.
//   node v2.mjs <url> polling|websocket [tag] [base64]
// "refused" instead of a transport: a server without AllowEIO3; prints what the client and the HTTP answer say.
import { out, args, url, run, once, bytes } from "./lib.mjs";
import { createRequire } from "node:module";

const io = createRequire(import.meta.url)("socket.io-client-v2");
const mode = args[0] ?? "websocket";
const tag = args[1] ?? `v2-${mode}`;
const forceBase64 = args[2] === "base64";

/** Emits with an ack (socket.io-client 2 has no timeout()): resolves with every argument of the ack. */
function ack(socket, event, ...payload) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout waiting for the ack of "${event}"`)), 5000);
    socket.emit(event, ...payload, (...response) => {
      clearTimeout(timer);
      resolve(response);
    });
  });
}

function connected(socket) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timeout waiting for connect")), 5000);
    socket.once("connect", () => { clearTimeout(timer); resolve(); });
    socket.once("connect_error", (err) => { clearTimeout(timer); reject(err); });
    socket.once("error", (err) => { clearTimeout(timer); reject(new Error(`error: ${JSON.stringify(err)}`)); });
  });
}

const options = (extra = {}) => ({
  transports: [mode], upgrade: false, reconnection: false, forceNew: true, forceBase64, query: { tag, custom: "q" }, ...extra,
});

run(async () => {
  if (mode === "refused") {
    const socket = io(url, { transports: ["polling"], reconnection: false, forceNew: true, query: { tag } });
    const [err] = await once(socket, "connect_error");
    const response = await fetch(`${url}/socket.io/?EIO=3&transport=polling`);
    out({ event: "refused", clientError: String(err && err.message ? err.message : err), description: err && err.description, status: response.status, body: await response.json() });
    socket.close();
    return;
  }

  const socket = io(url, options());
  socket.on("question", (q, answer) => answer(`${q}!`));
  await connected(socket);
  out({ event: "connect", id: socket.id, engineId: socket.io.engine.id, transport: socket.io.engine.transport.name });

  out({ event: "ack", args: await ack(socket, "echo", "hello", 42, { a: [1, 2], s: "é€😀" }, null, true) });
  out({ event: "who", value: (await ack(socket, "who"))[0] });

  // the server asks with an ack, the client answers
  const answered = once(socket, "answer");
  socket.emit("ask", "ready?");
  out({ event: "server-ack", args: await answered });

  // binary both ways
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const [echoed, obj] = await ack(socket, "echo", all, { name: "file", data: Buffer.from([7, 8, 9]) });
  out({ event: "binary-echo", same: Buffer.isBuffer(echoed) && echoed.equals(all), objName: obj.name, objData: bytes(obj.data) });
  out({ event: "binary-info", value: (await ack(socket, "binary-info", Buffer.alloc(1000, 1), "text", Buffer.from("hi")))[0] });
  const gotBinary = once(socket, "binary");
  await ack(socket, "send-binary");
  const [data, meta] = await gotBinary;
  out({ event: "server-binary", length: bytes(data).length, last: bytes(data)[255], name: meta.name, data: bytes(meta.data), nested: bytes(meta.nested[0]) });

  // rooms
  const rooms = (await ack(socket, "join", "v2-room"))[0];
  const roomMessage = once(socket, "room-message");
  await ack(socket, "to-room", "v2-room", "to the room");
  out({ event: "rooms", rooms, message: await roomMessage });

  // a namespace with a query: the query is the auth; accepted, then refused with the error's data
  // (own connections, forceNew: each one's server-side "/" socket records under another tag, not this one's)
  const other = { query: { tag: `${tag}-other`, custom: "q" } };
  const admin = io(`${url}/admin?token=secret`, options(other));
  const welcome = once(admin, "welcome");
  await connected(admin);
  out({ event: "admin", id: admin.id, welcome: await welcome, who: (await ack(admin, "who"))[0] });
  admin.close();
  const refused = io(`${url}/admin?token=wrong`, options(other));
  const [error] = await once(refused, "error");
  out({ event: "admin-refused", error });
  refused.close();

  const disconnected = once(socket, "disconnect");
  socket.disconnect();
  out({ event: "disconnect", reason: (await disconnected)[0] });
});

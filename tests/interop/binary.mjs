// Binary both ways (Buffers), on the given transport.
import { io, out, args, url, run, connected, ack, once, bytes } from "./lib.mjs";

const transport = args[0] ?? "websocket";
const tag = args[1] ?? `binary-${transport}`;

run(async () => {
  const socket = io(url, { transports: [transport], upgrade: false, reconnection: false, auth: { tag } });
  await connected(socket);

  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const [echoed, obj] = await ack(socket, "echo", all, { name: "file", data: Buffer.from([7, 8, 9]), list: [Buffer.alloc(0)] });
  out({
    event: "echo",
    same: Buffer.isBuffer(echoed) && echoed.equals(all),
    first: bytes(echoed).slice(0, 4),
    length: bytes(echoed).length,
    objName: obj.name,
    objData: bytes(obj.data),
    emptyLength: bytes(obj.list[0]).length,
  });

  out({ event: "sizes", value: (await ack(socket, "binary-info", Buffer.alloc(1000, 1), "text", Buffer.from("hi")))[0] });

  const got = once(socket, "binary");
  await ack(socket, "send-binary");
  const [data, meta] = await got;
  out({
    event: "server-binary",
    isBuffer: Buffer.isBuffer(data),
    length: bytes(data).length,
    last: bytes(data)[255],
    name: meta.name,
    data: bytes(meta.data),
    nested: bytes(meta.nested[0]),
  });
  socket.disconnect();
});

// Namespaces: multiplex (/ and /admin on one connection), refused (/admin without the token),
// dynamic (a /dyn-* name admitted, other names refused with "Invalid namespace").
import { io, out, args, url, run, connected, ack, once } from "./lib.mjs";

const mode = args[0];
const tag = args[1] ?? `nsp-${mode}`;

async function expectRefusal(name, auth) {
  const socket = io(url + name, { reconnection: false, auth: { tag, ...auth } });
  try {
    await connected(socket);
    out({ event: "unexpected-connect", nsp: name });
  } catch (err) {
    out({ event: "connect_error", nsp: name, message: err.message, data: err.data ?? null, active: socket.active });
  }
  socket.disconnect();
}

run(async () => {
  if (mode === "multiplex") {
    const main = io(url, { reconnection: false, auth: { tag } });
    const admin = io(url + "/admin", { reconnection: false, auth: { tag, token: "secret" } });
    const welcome = once(admin, "welcome");
    await Promise.all([connected(main), connected(admin)]);
    out({ event: "connect", main: main.id, admin: admin.id, sameManager: main.io === admin.io });
    out({ event: "welcome", args: await welcome });
    out({ event: "ack", nsp: "/admin", value: (await ack(admin, "who"))[0] });
    out({ event: "ack", nsp: "/", value: (await ack(main, "who"))[0] });
    admin.disconnect();
    await new Promise((r) => setTimeout(r, 100));
    out({ event: "after-admin-disconnect", mainConnected: main.connected, value: (await ack(main, "echo", "still"))[0] });
    main.disconnect();
  } else if (mode === "refused") {
    await expectRefusal("/admin", { token: "wrong" });
    await expectRefusal("/admin", {});
    // the same connection can still join an allowed namespace
    const ok = io(url + "/admin", { reconnection: false, forceNew: true, auth: { tag, token: "secret" } });
    await connected(ok);
    out({ event: "connect", nsp: "/admin" });
    ok.disconnect();
  } else if (mode === "dynamic") {
    const dyn = io(url + "/dyn-room42", { reconnection: false, auth: { tag } });
    const welcome = once(dyn, "welcome");
    await connected(dyn);
    out({ event: "welcome", args: await welcome });
    out({ event: "ack", value: (await ack(dyn, "echo", "dyn"))[0] });
    dyn.disconnect();
    await expectRefusal("/dyn-", {});
    await expectRefusal("/dyn-a.b", {});
    await expectRefusal("/unknown", {});
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
});

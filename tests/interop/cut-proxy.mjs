// A TCP proxy on 127.0.0.1 in front of `target` (a URL) that a scenario can cut: cut() destroys every
// connection through it and refuses new ones until heal(). Used to drop a socket.io-client's connection
// the way a network does (the client sees a transport close and reconnects by itself). retarget(url) sends
// the next connections to another server (a client that moves between the nodes of a cluster).
import net from "node:net";

export async function startCutProxy(target) {
  let accepting = true;
  const live = new Set();
  const server = net.createServer((downstream) => {
    if (!accepting) {
      downstream.destroy();
      return;
    }
    const upstream = net.connect(Number(target.port), target.hostname);
    live.add(downstream);
    live.add(upstream);
    const close = () => {
      downstream.destroy();
      upstream.destroy();
      live.delete(downstream);
      live.delete(upstream);
    };
    downstream.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
    downstream.pipe(upstream);
    upstream.pipe(downstream);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    cut() {
      accepting = false;
      for (const s of live) s.destroy();
      live.clear();
    },
    heal() {
      accepting = true;
    },
    retarget(url) {
      target = new URL(url);
    },
    close() {
      server.close();
    },
  };
}

// Shared helpers of the interop scenarios. Each scenario prints one JSON object per line on
// stdout ({"event": ...}) and ends with {"done": true}; on failure it prints {"error": ...}
// and exits with code 1. The C# tests parse these lines.
import { io as connect } from "socket.io-client";
import { createRequire } from "node:module";

// SIO_PARSER=msgpack: every scenario's client uses socket.io-msgpack-parser (the server must use MsgPackParser)
const parser = process.env.SIO_PARSER === "msgpack" ? createRequire(import.meta.url)("socket.io-msgpack-parser") : undefined;

/** socket.io-client's io(), with the parser chosen by SIO_PARSER. */
export function io(uri, opts = {}) {
  return connect(uri, parser ? { parser, ...opts } : opts);
}

export const url = process.argv[2];
export const args = process.argv.slice(3);

if (!url) {
  process.stderr.write("usage: node <scenario>.mjs <server url> [args]\n");
  process.exit(2);
}

export function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

export function fail(error) {
  out({ error: String(error && error.stack ? error.stack : error) });
  process.exit(1);
}

export const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves with the event's arguments; rejects after ms. */
export function once(emitter, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout waiting for "${event}"`)), ms);
    emitter.once(event, (...a) => {
      clearTimeout(timer);
      resolve(a);
    });
  });
}

/** Connects (or rejects with the connect_error message). */
export function connected(socket, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timeout waiting for connect")), ms);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once("connect_error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * Disconnects the socket and resolves once its engine has closed (at most ms later). A polling engine closes after
 * its write buffer has drained, i.e. after the server answered the POST that carried the DISCONNECT: a script that
 * exits right after disconnect() can otherwise leave that POST unsent, and the server sees a transport close.
 */
export function disconnected(socket, ms = 5000) {
  const engine = socket.io.engine;
  const closed = new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    engine.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
  });
  socket.disconnect();
  return closed;
}

/** Emits with an ack and resolves with every argument of the ack. */
export function ack(socket, event, ...payload) {
  return new Promise((resolve, reject) => {
    socket.timeout(5000).emit(event, ...payload, (err, ...response) => (err ? reject(err) : resolve(response)));
  });
}

/** A Buffer/ArrayBuffer/typed array as a plain array of numbers (for JSON output). */
export function bytes(value) {
  if (Buffer.isBuffer(value)) return [...value];
  if (value instanceof ArrayBuffer) return [...new Uint8Array(value)];
  if (ArrayBuffer.isView(value)) return [...new Uint8Array(value.buffer, value.byteOffset, value.byteLength)];
  return { notBinary: typeof value, value };
}

/** Runs a scenario: prints {"done":true} and exits 0, or prints the error and exits 1. */
export async function run(scenario, timeoutMs = 15000) {
  const guard = setTimeout(() => fail(new Error(`scenario did not finish in ${timeoutMs} ms`)), timeoutMs);
  try {
    await scenario();
    // a polling client's last POST (e.g. its DISCONNECT) is still in flight right after disconnect():
    // give it a moment before exiting
    await delay(150);
    clearTimeout(guard);
    out({ done: true });
    process.exit(0);
  } catch (error) {
    fail(error);
  }
}

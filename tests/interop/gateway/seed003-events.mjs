// Seed 003 ("Websocket", Exemplo completo), run as written; every edit is marked "// EDIT: why"
// (tests/Evolution.Events.Gateway.Tests/SeedExampleTests.cs runs it). Lines without a mark are the seed's.
//   node tests/interop/gateway/seed003-events.mjs <ws-url-of-/ws/events> <instance-token>
// Output: each callback's message as one JSON line {"log":[msg]} (plus the handlers' other logs);
// exits 0 once it has seen connection.update, messages.upsert and qrcode.updated, 1 after 15 s.

// EDIT: console.log prints JSON lines so the test can read them.
const console = { log: (...args) => process.stdout.write(JSON.stringify({ log: args }) + "\n") };
// EDIT: Node 20 has no global WebSocket without a flag; the `ws` package stands in.
const WebSocket = globalThis.WebSocket ?? (await import("ws")).default;
// EDIT: the seed's "ws://localhost:8084/ws/events" and empty token become the test's.
const [url, token] = process.argv.slice(2);
const reconnectInterval = 5000;

function socket(eventName, callback) {
  const ws = new WebSocket(`${url}?event=${encodeURIComponent(eventName)}&token=${encodeURIComponent(token)}`);

  ws.onopen = () => {
    console.log("Connected to the server");
    // EDIT: added from section 2 of the seed (its onopen sends a test message); the gateway must ignore it.
    ws.send(JSON.stringify({ message: "test data" }));
  };

  ws.onmessage = (event) => {
    if (callback) {
      const data = JSON.parse(event.data)
      callback(data, event)
    }
  };

  ws.onerror = (error) => {
    // EDIT: the error printed as text (the seed logs the event object, which has circular references JSON can't print).
    console.log('Error:', String(error.message ?? error));
  };

  ws.onclose = (event) => {
    console.log(`Connection closed with code ${event.code} and reason ${event.reason}, attempting to reconnect...`);
    // EDIT: as the seed itself says, reconnect with socket(eventName, callback), not socket(event).
    setTimeout(() => socket(eventName, callback), reconnectInterval);
  };
}

// EDIT: exit once each subscription has had its event (done(msg) in each callback below is part of this edit).
const seen = new Set();
const done = (msg) => {
  seen.add(msg.event);
  if (seen.size === 3) setTimeout(() => process.exit(0), 10);
};

socket("connection.update", (msg, event) => {
    console.log(msg)
    done(msg) // EDIT: see done above
})

socket("messages.upsert", (msg, event) => {
    console.log(msg)
    done(msg) // EDIT: see done above
})

socket("qrcode.updated", (msg, event) => {
    console.log(msg)
    done(msg) // EDIT: see done above
})

// EDIT: a bounded run: exit 1 after 15 s.
setTimeout(() => process.exit(1), 15000);

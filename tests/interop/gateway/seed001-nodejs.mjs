// Seed 001 ("Websocket", NodeJs tab), run as written; every edit is marked "// EDIT: why"
// (tests/Evolution.Events.Gateway.Tests/SeedExampleTests.cs and AllowedHostsTests.cs run it). Lines without a mark are the seed's.
//   node tests/interop/gateway/seed001-nodejs.mjs <base-url> <instance_name> <apikey>
// Output: the example's console.log calls, each as one JSON line {"log":[...arguments]}.
// Exits 0 after connection.update with state "open", 1 after 15 s without it.

// EDIT: console.log prints JSON lines so the test can read them.
const console = { log: (...args) => process.stdout.write(JSON.stringify({ log: args }) + "\n") };
// EDIT: the gateway's address, the instance and the key ("" = none, as the seed) come from the test.
const [baseUrl, instanceName, apikey] = process.argv.slice(2);

// Require the Socket.IO client library
// EDIT: ESM import instead of require() (this script is an .mjs module).
import { io } from "socket.io-client";

// Establish a connection to the WebSocket server
// EDIT: the seed's "wss://api.yoursite.com/instance_name" becomes the test gateway's address (ws://127.0.0.1:<port>/<instance>).
const socket = io(`${baseUrl.replace(/^http/, "ws").replace(/\/+$/, "")}/${instanceName}`, {
  transports: ["websocket"], // Specify that only WebSockets should be used
  // EDIT: the seed passes no key; a test that gives one sends it as auth: { apikey } (with "" nothing is added:
  // the seed as written, which the gateway accepts only from WEBSOCKET_ALLOWED_HOSTS).
  ...(apikey ? { auth: { apikey } } : {}),
});

// Event listener for successful connection
socket.on("connect", () => {
  console.log("Connected to the WebSocket server successfully");
});

// Listen for custom events from the server
// EDIT: "replace event_name with the specific event you want to listen to" (the seed's words): qrcode.updated here,
// and connection.update below, handled as the seed's React tab does.
socket.on("qrcode.updated", (data) => {
  // Handle the event and process the received data
  console.log("Event received:", data);
  // EDIT: the QR's base64, as the React/PHP tabs read it, printed for the test.
  console.log("qrcode", data.data.qrcode.base64);
});

// EDIT: connection.update and its switch come from the seed's React tab (its setConnectionStatus texts, logged).
socket.on("connection.update", (data) => {
  console.log("Event received:", data);
  const { state } = data.data;
  switch (state) {
    case "close":
      console.log("Recreating connection...");
      break;
    case "connecting":
      console.log("Attempting to connect...");
      break;
    case "open":
      console.log("Successfully connected...");
      // EDIT: the React tab reloads the page here; this script disconnects and exits.
      socket.disconnect();
      process.exit(0);
      break;
    default:
      console.log("Unknown state...");
      break;
  }
});

// Event listener for disconnection
socket.on("disconnect", () => {
  console.log("Disconnected from the WebSocket server");
});

// Handle connection errors (e.g., server unreachable)
socket.on("connect_error", (error) => {
  console.log("Connection error:", error.message);
});

// EDIT: a bounded run: exit 1 after 15 s.
setTimeout(() => process.exit(1), 15000);

// Seed 001 ("Websocket", NodeJs tab), run as written except where marked CHANGED.
//   node tests/interop/gateway/seed001-nodejs.mjs <base-url> <instance_name> <apikey>
// Output: the example's console.log calls, each as one JSON line {"log":[...arguments]}.
// Exits 0 after connection.update with state "open", 1 after 15 s without it.

// CHANGED: console.log prints JSON lines so the test can read them.
const console = { log: (...args) => process.stdout.write(JSON.stringify({ log: args }) + "\n") };
const [baseUrl, instanceName, apikey] = process.argv.slice(2);

// Require the Socket.IO client library
// CHANGED: ESM import instead of require() (this script is an .mjs module).
import { io } from "socket.io-client";

// Establish a connection to the WebSocket server
// CHANGED: the seed passes no key; the gateway's contract requires one, so auth: { apikey } is added.
// The seed's "wss://api.yoursite.com/instance_name" becomes the test gateway's address (ws://127.0.0.1:<port>/<instance>).
const socket = io(`${baseUrl.replace(/^http/, "ws").replace(/\/+$/, "")}/${instanceName}`, {
  transports: ["websocket"], // Specify that only WebSockets should be used
  auth: { apikey },
});

// Event listener for successful connection
socket.on("connect", () => {
  console.log("Connected to the WebSocket server successfully");
});

// Listen for custom events from the server
// ("replace event_name with the specific event you want to listen to": qrcode.updated and connection.update,
// handled as the seed's React/PHP tabs do)
socket.on("qrcode.updated", (data) => {
  // Handle the event and process the received data
  console.log("Event received:", data);
  console.log("qrcode", data.data.qrcode.base64);
});

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
      // CHANGED: the React tab reloads the page here; this script disconnects and exits.
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

setTimeout(() => process.exit(1), 15000);

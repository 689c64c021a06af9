// Seed 000 ("WebSocket Implementation", JavaScript example), run as written; every edit is marked "// EDIT: why"
// (tests/Evolution.Events.Gateway.Tests/SeedExampleTests.cs runs it). Lines without a mark are the seed's.
//   node tests/interop/gateway/seed000-websocket.mjs <ws-url-with-query> [count]
// e.g. ws://127.0.0.1:5000?apikey=KEY or ws://127.0.0.1:5000?apikey=KEY&format=simple
// Output: the example's console.log calls, each as one JSON line {"log":[...arguments]}; exits 0
// after [count] (default 1) messages, 1 after 15 s.

// EDIT: console.log/error print JSON lines so the test can read them.
const console = {
  log: (...args) => process.stdout.write(JSON.stringify({ log: args }) + "\n"),
  error: (...args) => process.stdout.write(JSON.stringify({ error: args.map(String) }) + "\n"),
};
// EDIT: the browser's WebSocket; Node 20 has none without a flag, so the `ws` package stands in.
const WebSocket = globalThis.WebSocket ?? (await import("ws")).default;
// EDIT: the URL and how many messages to wait for come from the test.
const [url, countArg] = process.argv.slice(2);
let remaining = Number(countArg ?? "1");

// EDIT: 'ws://localhost:2559?apikey=your_api_key_here' becomes the test gateway's URL.
const socket = new WebSocket(url);

socket.onopen = function(event) {
  console.log('Connected to WebSocket');
};

socket.onmessage = function(event) {
  const data = JSON.parse(event.data);
  // EDIT: also print the whole message, for the test's assertions.
  console.log('Received:', data);

  switch(data.event) {
    case 'message':
      console.log('New message:', data.data.content);
      break;
    case 'connection':
      console.log('Connection state:', data.data.state);
      break;
    case 'status':
      console.log('Status update:', data.data.status);
      break;
    case 'group':
      console.log('Group action:', data.data.action);
      break;
    case 'presence':
      console.log('Presence update:', data.data.presence);
      break;
    case 'call':
      console.log('Call status:', data.data.status);
      break;
  }
  // EDIT: stop after the expected number of messages.
  if (--remaining === 0) {
    socket.close();
    setTimeout(() => process.exit(0), 10);
  }
};

socket.onerror = function(error) {
  console.error('WebSocket error:', error);
};

socket.onclose = function(event) {
  console.log('WebSocket connection closed:', event.code, event.reason);
};

// EDIT: a bounded run: exit 1 after 15 s.
setTimeout(() => process.exit(1), 15000);

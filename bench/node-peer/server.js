'use strict';
// Reference peer for the fan-out benchmark (bench/README.md): a minimal gateway on the real
// `socket.io` 4 package, with the contract subset the load generator uses. This is what Evolution
// API runs today: dynamic instance namespaces, apikey auth, POST /instance/create, POST /webhook
// emitting the envelope {event,instance,data,server_url,date_time,sender} to `/{instance}`.
//
// Env: SERVER_PORT (8090), AUTHENTICATION_API_KEY (required), SERVER_URL, HOST (0.0.0.0).
const http = require('node:http');
const { Server } = require('socket.io');

const port = Number(process.env.SERVER_PORT || 8090);
const host = process.env.HOST || '0.0.0.0';
const apiKey = process.env.AUTHENTICATION_API_KEY;
if (!apiKey) {
  console.error('AUTHENTICATION_API_KEY is required');
  process.exit(2);
}
const serverUrl = process.env.SERVER_URL || `http://localhost:${port}`;
const maxBody = 10 * 1024 * 1024;
const instances = new Map(); // name -> token
const namePattern = /^[\w.-]{1,64}$/;

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function keyOf(req) {
  const h = req.headers.apikey;
  if (h) return h;
  const a = req.headers.authorization;
  return a && a.startsWith('Bearer ') ? a.slice(7) : undefined;
}

function readJson(req, res, then) {
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size > maxBody) { send(res, 413, { error: 'body too large' }); req.destroy(); return; }
    chunks.push(c);
  });
  req.on('end', () => {
    let body;
    try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { return send(res, 400, { error: 'invalid JSON' }); }
    then(body);
  });
}

function toDotted(name) {
  // messages.upsert, MESSAGES_UPSERT, messages-upsert -> messages.upsert (group-participants.update kept)
  if (typeof name !== 'string') return null;
  if (name.includes('.')) return name.toLowerCase();
  const lower = name.toLowerCase();
  if (lower === 'group_participants_update' || lower === 'group-participants-update') return 'group-participants.update';
  return lower.replace(/[_-]/g, '.');
}

const httpServer = http.createServer((req, res) => {
  const url = req.url.split('?')[0];
  if (req.method === 'POST' && url === '/instance/create') {
    if (keyOf(req) !== apiKey) return send(res, 401, { error: 'Unauthorized' });
    return readJson(req, res, (body) => {
      const name = body && body.instanceName;
      if (typeof name !== 'string' || !namePattern.test(name)) return send(res, 400, { error: 'invalid instanceName' });
      if (instances.has(name)) return send(res, 409, { error: 'exists' });
      const token = body.token || require('node:crypto').randomUUID();
      instances.set(name, token);
      send(res, 201, { instance: { instanceName: name }, hash: { apikey: token } });
    });
  }
  if (req.method === 'POST' && (url === '/webhook' || url.startsWith('/webhook/'))) {
    const key = keyOf(req);
    if (key !== apiKey) return send(res, 401, { error: 'Unauthorized' });
    const urlEvent = url.length > 9 ? url.slice(9) : null;
    return readJson(req, res, (body) => {
      const items = Array.isArray(body) ? body : [body];
      if (items.length === 0) return send(res, 400, { error: 'empty batch' });
      for (let i = 0; i < items.length; i++) {
        const it = items[i];
        if (!it || typeof it.instance !== 'string' || !namePattern.test(it.instance) || !toDotted(it.event || urlEvent))
          return send(res, 400, { error: `item ${i}: event and instance required` });
      }
      for (const it of items) {
        const event = toDotted(it.event || urlEvent);
        if (!instances.has(it.instance)) instances.set(it.instance, require('node:crypto').randomUUID());
        io.of('/' + it.instance).emit(event, {
          event,
          instance: it.instance,
          data: it.data === undefined ? null : it.data,
          server_url: it.server_url || serverUrl,
          date_time: it.date_time || new Date().toISOString(),
          sender: it.sender === undefined ? null : it.sender,
        });
      }
      send(res, 202, { accepted: items.length });
    });
  }
  send(res, 404, { error: 'Not found' });
});

const io = new Server(httpServer, { cors: { origin: '*' } });

function authorize(socket, next) {
  const auth = socket.handshake.auth || {};
  const q = socket.handshake.query || {};
  const key = auth.apikey || auth.token || q.apikey || q.token || socket.handshake.headers.apikey;
  if (!key) return next(new Error('Invalid API key'));
  if (key === apiKey) return next();
  const name = socket.nsp.name.slice(1);
  if (instances.get(name) === key) return next();
  for (const token of instances.values()) if (token === key) return next(new Error('Forbidden namespace'));
  next(new Error('Invalid API key'));
}

io.use(authorize);
io.of(/^\/[\w.-]+$/).use(authorize);

httpServer.listen(port, host, () => {
  const version = JSON.parse(require('node:fs').readFileSync(require('node:path').join(__dirname, 'node_modules/socket.io/package.json'), 'utf8')).version;
  console.log(`node-peer (socket.io ${version}, node ${process.version}) listening on ${host}:${port}`);
});

function stop() { io.close(); httpServer.close(() => process.exit(0)); setTimeout(() => process.exit(0), 2000).unref(); }
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

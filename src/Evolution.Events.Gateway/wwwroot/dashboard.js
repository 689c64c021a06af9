// Evolution Events dashboard: one Socket.IO connection to the namespace /{instance}, with the stock
// socket.io-client bundle served by the gateway (socket.io.min.js). No framework, no CDN.
(function () {
  "use strict";

  const MAX_LOG_ROWS = 500;
  const STATS_INTERVAL_MS = 2000;
  const STATE_MESSAGES = {
    close: "Recreating connection...",
    connecting: "Attempting to connect...",
    open: "Successfully connected...",
  };

  const $ = (id) => document.getElementById(id);
  const form = $("connect-form");
  const logBody = $("log").querySelector("tbody");
  let socket = null;
  let statsTimer = null;
  let logCount = 0;

  // ---- connection ------------------------------------------------------------------------------------

  function connect(apikey, instance) {
    disconnect();
    setStatus("connecting…", "idle");
    socket = io("/" + encodeURIComponent(instance), { auth: { apikey: apikey } });
    const connected = (transport) => setStatus("connected to /" + instance + " over " + transport, "connected");
    socket.on("connect", () => {
      const engine = socket.io.engine;
      connected(engine.transport.name);
      engine.once("upgrade", (transport) => socket && socket.connected && connected(transport.name));
    });
    socket.on("connect_error", (err) => setStatus("refused: " + err.message, "error"));
    socket.on("disconnect", (reason) => setStatus("disconnected: " + reason, "idle"));
    socket.onAny(onEvent);
    $("connect").disabled = true;
    $("disconnect").disabled = false;
    startStats(apikey);
  }

  function disconnect() {
    if (socket) {
      socket.offAny();
      socket.disconnect();
      socket = null;
    }
    stopStats();
    $("connect").disabled = false;
    $("disconnect").disabled = true;
    setStatus("not connected", "idle");
  }

  function setStatus(text, status) {
    const badge = $("socket-status");
    badge.textContent = text;
    badge.dataset.status = status;
  }

  // ---- events ----------------------------------------------------------------------------------------

  function onEvent(eventName, envelope) {
    const data = envelope && typeof envelope === "object" ? envelope.data : undefined;
    if (eventName === "qrcode.updated") showQr(data);
    if (eventName === "connection.update") showState(data);
    appendLog(eventName, envelope, data);
  }

  // data.qrcode.base64 is a data URL (what Evolution API sends) or raw base64 PNG: accept both.
  function qrSource(data) {
    const qrcode = data && data.qrcode;
    const base64 = qrcode && typeof qrcode === "object" ? qrcode.base64 : (data && data.base64);
    if (typeof base64 !== "string" || base64.length === 0) return null;
    return base64.startsWith("data:") ? base64 : "data:image/png;base64," + base64.replace(/\s+/g, "");
  }

  function showQr(data) {
    const src = qrSource(data);
    if (!src) return;
    const img = $("qr");
    img.src = src;
    img.hidden = false;
    $("qr-placeholder").hidden = true;
    $("qr-updated").textContent = new Date().toLocaleTimeString();
  }

  function showState(data) {
    const state = data && typeof data.state === "string" ? data.state : "unknown";
    const badge = $("state");
    badge.textContent = state;
    badge.dataset.state = state;
    $("state-message").textContent = STATE_MESSAGES[state] || "Unknown state...";
    if (state === "open") {
      $("qr").hidden = true;
      $("qr-placeholder").hidden = false;
      $("qr-placeholder").textContent = "Connected: no QR code needed.";
    }
    const details = $("state-details");
    details.replaceChildren();
    for (const key of ["wuid", "profileName", "statusReason"]) {
      if (data && data[key] !== undefined && data[key] !== null) {
        const dt = document.createElement("dt");
        dt.textContent = key;
        const dd = document.createElement("dd");
        dd.textContent = String(data[key]);
        details.append(dt, dd);
      }
    }
  }

  function textOf(message) {
    if (!message || typeof message !== "object") return "";
    return message.conversation
      || (message.extendedTextMessage && message.extendedTextMessage.text)
      || (message.imageMessage && ("[image] " + (message.imageMessage.caption || "")))
      || Object.keys(message)[0] || "";
  }

  function summarize(eventName, data) {
    if (!data || typeof data !== "object") return JSON.stringify(data);
    const item = Array.isArray(data) ? data[0] || {} : data;
    switch (eventName) {
      case "qrcode.updated":
        return "new QR code" + (item.qrcode && item.qrcode.pairingCode ? " (pairing code " + item.qrcode.pairingCode + ")" : "");
      case "connection.update":
        return "state: " + item.state + (item.statusReason ? " (" + item.statusReason + ")" : "");
      case "messages.upsert":
      case "send.message": {
        const from = item.pushName || (item.key && item.key.remoteJid) || "?";
        return (item.key && item.key.fromMe ? "me → " : "") + from + ": " + textOf(item.message);
      }
      case "presence.update": {
        const presences = item.presences || {};
        const first = Object.keys(presences)[0];
        return (item.id || first || "?") + " is " + (first ? presences[first].lastKnownPresence : "?");
      }
      case "call":
        return (item.isVideo ? "video" : "voice") + " call " + item.status + " from " + item.from;
      default:
        return JSON.stringify(data).slice(0, 200);
    }
  }

  function appendLog(eventName, envelope, data) {
    if ($("log-pause").checked) return;
    const row = document.createElement("tr");
    const when = envelope && envelope.date_time ? new Date(envelope.date_time) : new Date();
    const summary = summarize(eventName, data);
    const full = JSON.stringify(envelope, null, 2);
    row.dataset.search = (eventName + " " + JSON.stringify(envelope)).toLowerCase();
    for (const text of [isNaN(when) ? String(envelope.date_time) : when.toLocaleTimeString(), eventName, summary]) {
      const td = document.createElement("td");
      td.textContent = text;
      row.append(td);
    }
    row.addEventListener("click", () => {
      const expanded = row.classList.toggle("expanded");
      row.lastChild.textContent = expanded ? full : summary;
    });
    applyFilter(row, currentFilter());
    logBody.prepend(row);
    while (logBody.rows.length > MAX_LOG_ROWS) logBody.deleteRow(-1);
    logCount++;
    $("log-count").textContent = String(logCount);
  }

  function currentFilter() {
    return $("log-filter").value.trim().toLowerCase();
  }

  function applyFilter(row, filter) {
    row.hidden = filter.length > 0 && !row.dataset.search.includes(filter);
  }

  // ---- connections view (global key only) ------------------------------------------------------------

  function startStats(apikey) {
    stopStats();
    const poll = async () => {
      try {
        const response = await fetch("dashboard/stats", { headers: { apikey: apikey } });
        if (response.status === 401 || response.status === 403) {
          stopStats(); // an instance token: no connections view
          return;
        }
        if (response.ok) renderStats(await response.json());
      } catch (e) {
        // the server restarted or the network dropped: try again at the next tick
      }
    };
    poll();
    statsTimer = setInterval(poll, STATS_INTERVAL_MS);
  }

  function stopStats() {
    if (statsTimer) clearInterval(statsTimer);
    statsTimer = null;
    $("stats-card").hidden = true;
  }

  function renderStats(stats) {
    $("stats-card").hidden = false;
    $("stats-sio").textContent = stats.socketIOConnections;
    $("stats-sio-ws").textContent = stats.socketIOWebSocketConnections;
    $("stats-plain").textContent = stats.plainWebSockets;
    $("stats-rate").textContent = stats.eventsPerSecond;
    const body = $("stats-table").querySelector("tbody");
    body.replaceChildren(...stats.instances.map((i) =>
      tableRow([i.instance + (i.websocketEnabled ? "" : " (websocket off)"), i.socketIOSockets, i.plainWebSockets, i.eventsPerSecond])));
    renderCluster(stats);
  }

  function renderCluster(stats) {
    const nodes = stats.nodes || [];
    const cluster = stats.cluster;
    const shown = nodes.length > 1 || (cluster && !cluster.complete);
    $("stats-cluster").hidden = !shown;
    $("stats-nodes-table").hidden = !shown;
    if (!shown) return;
    $("stats-nodes").textContent = cluster.nodes;
    $("stats-cluster-sio").textContent = cluster.socketIOConnections;
    $("stats-cluster-plain").textContent = cluster.plainWebSockets;
    $("stats-cluster-rate").textContent = cluster.eventsPerSecond;
    $("stats-cluster-partial").hidden = cluster.complete;
    $("stats-nodes-table").querySelector("tbody").replaceChildren(...nodes.map((n) => tableRow([
      n.id + (n.self ? " (this node)" : ""),
      n.host + " " + n.url,
      n.socketIOConnections,
      n.plainWebSockets,
      n.eventsPerSecond,
      new Date(n.upSince).toLocaleString(),
      n.self ? "now" : Math.max(0, Math.round((Date.now() - new Date(n.lastSeen).getTime()) / 1000)) + " s ago",
    ])));
  }

  function tableRow(cells) {
    const row = document.createElement("tr");
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = String(text);
      row.append(td);
    }
    return row;
  }

  // ---- wiring ----------------------------------------------------------------------------------------

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    connect($("apikey").value.trim(), $("instance").value.trim());
  });
  $("disconnect").addEventListener("click", disconnect);
  $("log-clear").addEventListener("click", () => {
    logBody.replaceChildren();
    logCount = 0;
    $("log-count").textContent = "0";
  });
  $("log-filter").addEventListener("input", () => {
    const filter = currentFilter();
    for (const row of logBody.rows) applyFilter(row, filter);
  });

  // #apikey=…&instance=… (what `-- demo` prints) fills the form and connects; the fragment never reaches the server.
  const params = new URLSearchParams(location.hash.slice(1) || location.search.slice(1));
  if (params.get("instance")) $("instance").value = params.get("instance");
  if (params.get("apikey")) $("apikey").value = params.get("apikey");
  if (params.get("instance") && params.get("apikey")) {
    history.replaceState(null, "", location.pathname);
    connect(params.get("apikey"), params.get("instance"));
  }
})();

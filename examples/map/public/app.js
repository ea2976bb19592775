const mapId = new URLSearchParams(location.search).get("id") || "default-map";
document.getElementById("mapName").textContent = `(${mapId})`;
const svg = document.getElementById("map");
const pin = document.getElementById("pin");
const statusLine = document.getElementById("status");
const where = document.getElementById("where");
const grid = document.getElementById("grid");
const ns = "http://www.w3.org/2000/svg";
for (let lng = -180; lng <= 180; lng += 30) grid.appendChild(line(lng, -90, lng, 90, "grid"));
for (let lat = -90; lat <= 90; lat += 30) grid.appendChild(line(-180, lat, 180, lat, lat === 0 ? "equator" : "grid"));
function line(x1, y1, x2, y2, cls) {
  const l = document.createElementNS(ns, "line");
  Object.entries({ x1, y1, x2, y2, class: cls }).forEach(([k, v]) => l.setAttribute(k, v));
  return l;
}
function showStatus(text, isError) {
  statusLine.textContent = text;
  statusLine.className = isError ? "error" : "";
}
function showPin(loc) {
  pin.setAttribute("cx", loc.lng);
  pin.setAttribute("cy", -loc.lat);
  pin.setAttribute("visibility", "visible");
  where.textContent = `Pin at ${loc.lat.toFixed(3)}, ${loc.lng.toFixed(3)}`;
}

let socket = null;
let retryDelay = 500;
function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/api/map?id=${encodeURIComponent(mapId)}`);
  socket.onopen = () => { retryDelay = 500; showStatus("Connected", false); };
  socket.onmessage = (event) => {
    let message;
    try { message = JSON.parse(event.data); } catch { return showStatus("The server sent something unreadable", true); }
    if (message.type === "pinUpdate" && message.location) showPin(message.location);
    else if (message.type === "error") showStatus(`Server: ${message.error}`, true);
    // {"type":"pong"} needs nothing: the runtime answered it without waking the map.
  };
  socket.onclose = () => {
    showStatus("Connection lost; reconnecting...", true);
    setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 10000);
  };
}
svg.addEventListener("click", (event) => {
  if (!socket || socket.readyState !== WebSocket.OPEN) return showStatus("Not connected yet", true);
  const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(svg.getScreenCTM().inverse());
  const lat = Math.max(-90, Math.min(90, -point.y));
  const lng = Math.max(-180, Math.min(180, point.x));
  socket.send(JSON.stringify({ type: "setPin", location: { lat, lng } }));
});
setInterval(() => {
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify({ type: "ping", id: String(Date.now()), clientTime: Date.now() }));
  }
}, 30000);
connect();

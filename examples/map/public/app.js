// The realtime map's page, on cairn's browser client (/cairn-client.js): the socket reconnects
// by itself and keeps the heartbeat the runtime answers without waking the map.
import { CairnSocket } from "/cairn-client.js";

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

const socket = new CairnSocket(`/api/map?id=${encodeURIComponent(mapId)}`, {
  onopen: () => showStatus("Connected", false),
  onmessage: (message) => {
    if (typeof message !== "object" || message === null) return showStatus("The server sent something unreadable", true);
    if (message.type === "pinUpdate" && message.location) showPin(message.location);
    else if (message.type === "error") showStatus(`Server: ${message.error}`, true);
  },
  onstate: (state) => { if (state === "reconnecting") showStatus("Connection lost; reconnecting...", true); },
});
svg.addEventListener("click", (event) => {
  const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(svg.getScreenCTM().inverse());
  const lat = Math.max(-90, Math.min(90, -point.y));
  const lng = Math.max(-180, Math.min(180, point.x));
  if (!socket.send({ type: "setPin", location: { lat, lng } })) showStatus("Not connected yet", true);
});


// The chat page, on cairn's browser client (/cairn-client.js): the socket reconnects by itself
// and the room sends its history on every join.
import { CairnSocket } from "/cairn-client.js";

const log = document.getElementById("log");
const statusLine = document.getElementById("status");
let socket = null;
let joined = null;

function line(text, cls) {
  const p = document.createElement("div");
  p.textContent = text; // names and messages are text, never HTML
  if (cls) p.className = cls;
  log.appendChild(p);
  log.scrollTop = log.scrollHeight;
}
function show(message) {
  const time = new Date(message.at).toLocaleTimeString();
  if (message.type === "message") line(`[${time}] ${message.user}: ${message.text}`);
  else if (message.type === "whisper") line(`[${time}] ${message.from} -> ${message.to}: ${message.text}`, "whisper");
}
function connect() {
  const { room, user } = joined;
  socket = new CairnSocket(`/api/chat?room=${encodeURIComponent(room)}&user=${encodeURIComponent(user)}`, {
    onopen: () => { statusLine.textContent = `Joined as ${user}`; statusLine.className = ""; },
    onmessage: (message) => {
      if (message.type === "history") { log.replaceChildren(); message.messages.forEach((m) => show({ ...m, type: "message" })); }
      else if (message.type === "presence") document.getElementById("users").textContent = `Here: ${message.users.join(", ")}`;
      else if (message.type === "error") line(message.error, "error");
      else show(message);
    },
    onstate: (state) => {
      if (state === "reconnecting") { statusLine.textContent = "Connection lost; reconnecting..."; statusLine.className = "error"; }
    },
  });
}
document.getElementById("join").onsubmit = (event) => {
  event.preventDefault();
  if (socket) socket.close();
  joined = { room: document.getElementById("room").value.trim(), user: document.getElementById("user").value.trim() };
  document.getElementById("roomName").textContent = joined.room;
  connect();
};
document.getElementById("say").onsubmit = (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  const text = input.value.trim();
  if (!text || !socket) return;
  const whisper = /^@(\S+)\s+(.+)$/.exec(text);
  if (!socket.send(whisper ? { to: whisper[1], text: whisper[2] } : { text })) return;
  input.value = "";
};

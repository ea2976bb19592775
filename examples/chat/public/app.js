const log = document.getElementById("log");
const statusLine = document.getElementById("status");
let socket = null;
let retryDelay = 500;
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
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/api/chat?room=${encodeURIComponent(room)}&user=${encodeURIComponent(user)}`);
  socket.onopen = () => { retryDelay = 500; statusLine.textContent = `Joined as ${user}`; statusLine.className = ""; };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "history") { log.replaceChildren(); message.messages.forEach((m) => show({ ...m, type: "message" })); }
    else if (message.type === "presence") document.getElementById("users").textContent = `Here: ${message.users.join(", ")}`;
    else if (message.type === "error") line(message.error, "error");
    else show(message);
  };
  socket.onclose = () => {
    statusLine.textContent = "Connection lost; reconnecting...";
    statusLine.className = "error";
    setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 10000);
  };
}
document.getElementById("join").onsubmit = (event) => {
  event.preventDefault();
  if (socket) { socket.onclose = null; socket.close(); }
  joined = { room: document.getElementById("room").value.trim(), user: document.getElementById("user").value.trim() };
  document.getElementById("roomName").textContent = joined.room;
  connect();
};
document.getElementById("say").onsubmit = (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  const text = input.value.trim();
  if (!text || !socket || socket.readyState !== WebSocket.OPEN) return;
  const whisper = /^@(\S+)\s+(.+)$/.exec(text);
  socket.send(JSON.stringify(whisper ? { to: whisper[1], text: whisper[2] } : { text }));
  input.value = "";
};

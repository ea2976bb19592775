// cairn-client.js: what a browser page written for cairn needs, as one small ES module that
// cairn-server serves at /cairn-client.js (no build step; `import { ... } from "/cairn-client.js"`).
//
// - request(): JSON over fetch. cairn's error bodies ({"error", "status", "code",
//   "retryable"}) become a CairnError carrying status, code and retryable. Retryable answers
//   are retried, waiting as Retry-After says (else a backoff with jitter). A request that may
//   have run (a 504, a 503 other than "overloaded", a lost connection) is retried only if it
//   is idempotent (GET, HEAD, or `idempotent: true`).
// - CairnSocket: a WebSocket that reconnects with backoff and jitter. It keeps a JSON
//   heartbeat going ({"type":"ping"}; an actor that sets AutoResponse::heartbeat() has the
//   runtime answer it without waking; the pongs are not passed on; heartbeatMs: 0 for none),
//   and calls onopen on every (re)open, where a page re-syncs what it may have missed.

export class CairnError extends Error {
  constructor(status, body, retryAfterMs = null) {
    super(body && typeof body.error === "string" ? body.error : `HTTP ${status}`);
    this.name = "CairnError";
    this.status = status;
    this.code = body && typeof body.code === "string" ? body.code : null;
    // The server's word if it gave one; else 429, 502, 503 and 504 are worth another try.
    this.retryable = body && typeof body.retryable === "boolean" ? body.retryable : [429, 502, 503, 504].includes(status);
    this.retryAfterMs = retryAfterMs;
    this.body = body;
  }
}

// Milliseconds from a Retry-After header (seconds, or an HTTP date), or null.
export function retryAfterMs(header, now = Date.now()) {
  if (header === null || header === undefined || header === "") return null;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

// The wait before attempt `attempt` (1, 2, ...): doubling from `base`, at most `max`, with up
// to half of it random so that clients refused together do not come back together.
export function backoff(attempt, base = 250, max = 10000, random = Math.random) {
  const full = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  return Math.round(full / 2 + random() * (full / 2));
}

const sleep = (ms, signal) => new Promise((resolve, reject) => {
  if (signal?.aborted) return reject(signal.reason);
  const timer = setTimeout(resolve, ms);
  signal?.addEventListener("abort", () => { clearTimeout(timer); reject(signal.reason); }, { once: true });
});

// fetch `url` with `body` (any JSON value) as JSON; resolves to the parsed JSON answer (or its
// text, if it is not JSON). Rejects with a CairnError for an HTTP error after `retries`
// retries of retryable ones; a network error is a TypeError, as fetch's.
export async function request(url, { method = "GET", body, headers = {}, retries = 3, idempotent, signal,
                                     maxWaitMs = 10000, fetchImpl = fetch } = {}) {
  const safe = idempotent ?? (method === "GET" || method === "HEAD");
  const init = { method, headers: { Accept: "application/json", ...headers }, signal };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  for (let attempt = 1; ; attempt++) {
    let response;
    try {
      response = await fetchImpl(url, init);
    } catch (error) {
      // The request may have reached the server: only a safe one is sent again.
      if (!safe || attempt > retries || signal?.aborted) throw error;
      await sleep(backoff(attempt), signal);
      continue;
    }
    const text = await response.text();
    let parsed = text;
    try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON: the text itself */ }
    if (response.ok) return parsed;
    const error = new CairnError(response.status, parsed && typeof parsed === "object" ? parsed : null,
                                 retryAfterMs(response.headers.get("Retry-After")));
    // Only a refusal before the actor ran is sure not to have happened: 429 and cairn's
    // "overloaded" (its queue was full). A 504, a 502, or another 503 ("unavailable": a failed
    // sync, no owner yet) may have run, so it is sent again only if it is idempotent.
    const didNotRun = response.status === 429 || error.code === "overloaded";
    if (!error.retryable || attempt > retries || (!safe && !didNotRun)) throw error;
    await sleep(Math.min(maxWaitMs, error.retryAfterMs ?? backoff(attempt)), signal);
  }
}

// A WebSocket to `path` on this page's host (or a full ws:// URL) that stays connected.
// options: onopen(socket) on every open (re-sync there), onmessage(data, event) with the
// message parsed as JSON when it is JSON (else the text), onstate(state) with "connecting",
// "open", "reconnecting" or "closed"; heartbeatMs (30 s; 0: none), minDelayMs, maxDelayMs.
export class CairnSocket {
  constructor(path, { onopen, onmessage, onstate, heartbeatMs = 30000, minDelayMs = 500, maxDelayMs = 10000,
                      WebSocketImpl = globalThis.WebSocket } = {}) {
    this.url = /^wss?:\/\//.test(path) ? path
      : `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path.startsWith("/") ? "" : "/"}${path}`;
    Object.assign(this, { onopen, onmessage, onstate, heartbeatMs, minDelayMs, maxDelayMs, WebSocketImpl });
    this.attempt = 0;
    this.closed = false;
    this.state = "connecting";
    this.open();
  }

  setState(state) {
    this.state = state;
    this.onstate?.(state);
  }

  open() {
    const ws = new this.WebSocketImpl(this.url);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.setState("open");
      if (this.heartbeatMs > 0) {
        this.heartbeat = setInterval(() => this.send({ type: "ping", id: String(Date.now()), clientTime: Date.now() }),
                                     this.heartbeatMs);
      }
      this.onopen?.(this);
    };
    ws.onmessage = (event) => {
      let data = event.data;
      if (typeof data === "string") {
        try { data = JSON.parse(data); } catch { /* text */ }
        if (data && data.type === "pong") return;  // the runtime's heartbeat answer
      }
      this.onmessage?.(data, event);
    };
    ws.onclose = () => {
      clearInterval(this.heartbeat);
      if (this.closed) return this.setState("closed");
      this.setState("reconnecting");
      if (this.closed) return;  // close() called from onstate
      this.attempt += 1;
      this.timer = setTimeout(() => { if (!this.closed) this.open(); },
                              backoff(this.attempt, this.minDelayMs, this.maxDelayMs));
    };
    ws.onerror = () => { /* onclose follows and reconnects */ };
  }

  // Sends `data` (an object is sent as JSON); false if the socket is not open now.
  send(data) {
    if (!this.ws || this.ws.readyState !== 1) return false;
    this.ws.send(typeof data === "string" || data instanceof ArrayBuffer || ArrayBuffer.isView(data) ? data : JSON.stringify(data));
    return true;
  }

  // Closes it for good (no reconnect).
  close(code = 1000, reason = "") {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.heartbeat);
    if (this.ws && this.ws.readyState <= 1) this.ws.close(code, reason);
    else this.setState("closed");
  }
}

// cairn's browser client module (gateway/client/cairn-client.js) under node, with a fake fetch
// and a fake WebSocket: errors as CairnError, which answers are retried and how long it
// waits, and a socket that reconnects, re-syncs on every open, keeps the heartbeat and hides
// the runtime's pongs. The pages that use it are tested in Chromium (tests/browser).
import { test } from "node:test";
import assert from "node:assert/strict";
import { request, CairnError, CairnSocket, retryAfterMs, backoff } from "../../gateway/client/cairn-client.js";

const answer = (status, body, headers = {}) => ({
  ok: status >= 200 && status < 300, status,
  headers: { get: (name) => headers[name] ?? null },
  text: async () => (typeof body === "string" ? body : JSON.stringify(body)),
});
// A fetch that gives `answers` in turn and records what it was asked.
function fakeFetch(answers) {
  const calls = [];
  const fetchImpl = async (url, init) => {
    calls.push({ url, init });
    const next = answers.shift();
    if (next instanceof Error) throw next;
    return next;
  };
  return { calls, fetchImpl };
}

test("Retry-After and the backoff", () => {
  assert.equal(retryAfterMs("2"), 2000);
  assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 4_000), 6000);
  assert.equal(retryAfterMs("soon"), null);
  assert.equal(retryAfterMs(null), null);
  assert.equal(backoff(1, 200, 10_000, () => 0), 100);
  assert.equal(backoff(3, 200, 10_000, () => 1), 800);
  assert.equal(backoff(20, 200, 10_000, () => 1), 10_000);
});

test("a JSON answer is returned and an error is a CairnError with cairn's status, code and retryable", async () => {
  const ok = fakeFetch([answer(200, { seats: 60 })]);
  assert.deepEqual(await request("/seats", { fetchImpl: ok.fetchImpl }), { seats: 60 });
  const conflict = fakeFetch([answer(409, { error: "seat 1A is taken", status: 409, code: "conflict" })]);
  await assert.rejects(request("/book-seat", { method: "POST", body: { seatNumber: "1A" }, fetchImpl: conflict.fetchImpl }),
                       (e) => e instanceof CairnError && e.status === 409 && e.code === "conflict" && !e.retryable &&
                              e.message === "seat 1A is taken");
  assert.equal(conflict.calls.length, 1, "not retried");
  assert.equal(conflict.calls[0].init.headers["Content-Type"], "application/json");
  assert.equal(conflict.calls[0].init.body, JSON.stringify({ seatNumber: "1A" }));
  const html = fakeFetch([answer(500, "<h1>oops</h1>")]);
  await assert.rejects(request("/x", { fetchImpl: html.fetchImpl, retries: 0 }),
                       (e) => e.status === 500 && e.message === "HTTP 500" && e.code === null);
});

test("a retryable answer is retried after its Retry-After, also for a POST that did not run", async () => {
  const overloaded = { error: "actor FLIGHT has 100 requests waiting", status: 503, code: "overloaded", retryable: true };
  const f = fakeFetch([answer(503, overloaded, { "Retry-After": "0" }), answer(429, { error: "slow down", status: 429, code: "rate_limited", retryable: true }, { "Retry-After": "0" }),
                       answer(200, { message: "booked" })]);
  const started = Date.now();
  assert.deepEqual(await request("/book-seat", { method: "POST", body: {}, fetchImpl: f.fetchImpl }), { message: "booked" });
  assert.equal(f.calls.length, 3);
  assert.ok(Date.now() - started < 1000, "Retry-After: 0 waits no backoff");
  const always = fakeFetch([1, 2, 3].map(() => answer(503, overloaded, { "Retry-After": "0" })));
  await assert.rejects(request("/seats", { fetchImpl: always.fetchImpl, retries: 2 }), (e) => e.status === 503 && e.retryable);
  assert.equal(always.calls.length, 3, "retries, then the error");
});

test("what may have run (a 504, a lost connection) is retried only when idempotent", async () => {
  const timeout = { error: "the actor did not answer in time", status: 504, code: "timeout", retryable: true };
  const post = fakeFetch([answer(504, timeout, { "Retry-After": "0" }), answer(200, {})]);
  await assert.rejects(request("/book-seat", { method: "POST", body: {}, fetchImpl: post.fetchImpl }), (e) => e.status === 504);
  assert.equal(post.calls.length, 1);
  const get = fakeFetch([answer(504, timeout, { "Retry-After": "0" }), answer(200, [1])]);
  assert.deepEqual(await request("/seats", { fetchImpl: get.fetchImpl }), [1]);
  const lost = fakeFetch([new TypeError("Failed to fetch"), answer(200, [])]);
  await assert.rejects(request("/hold-seat", { method: "POST", body: {}, fetchImpl: lost.fetchImpl }), TypeError);
  assert.equal(lost.calls.length, 1);
  // A 503 that is not "overloaded" (a failed sync, no owner yet) may have run too.
  const unavailable = { error: "the write could not be made durable", status: 503, code: "unavailable", retryable: true };
  const posted = fakeFetch([answer(503, unavailable, { "Retry-After": "0" }), answer(200, {})]);
  await assert.rejects(request("/book-seat", { method: "POST", body: {}, fetchImpl: posted.fetchImpl }),
                       (e) => e.status === 503 && e.code === "unavailable");
  assert.equal(posted.calls.length, 1);
  const read = fakeFetch([answer(503, unavailable, { "Retry-After": "0" }), answer(200, [2])]);
  assert.deepEqual(await request("/seats", { fetchImpl: read.fetchImpl }), [2]);
  const lostPut = fakeFetch([new TypeError("Failed to fetch"), answer(200, "ok")]);
  assert.equal(await request("/x", { method: "PUT", idempotent: true, fetchImpl: lostPut.fetchImpl, retries: 1 }), "ok");
});

// A WebSocket the test drives: open(), message(), drop().
class FakeSocket {
  static made = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeSocket.made.push(this);
  }
  open() { this.readyState = 1; this.onopen(); }
  message(data) { this.onmessage({ data }); }
  drop() { this.readyState = 3; this.onclose({}); }
  send(data) { this.sent.push(data); }
  close() { this.drop(); }
}
const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test("the socket reconnects, re-syncs on every open, keeps the heartbeat and hides pongs", async () => {
  FakeSocket.made = [];
  const seen = { opens: 0, messages: [], states: [] };
  const socket = new CairnSocket("ws://127.0.0.1:1/ws?flightId=1", {
    WebSocketImpl: FakeSocket, heartbeatMs: 20, minDelayMs: 10, maxDelayMs: 40,
    onopen: () => { seen.opens += 1; }, onmessage: (data) => seen.messages.push(data), onstate: (s) => seen.states.push(s),
  });
  assert.equal(socket.send({ a: 1 }), false, "not open yet");
  FakeSocket.made[0].open();
  FakeSocket.made[0].message(JSON.stringify([{ seatNumber: "1A" }]));
  FakeSocket.made[0].message('{"type":"pong","id":"1","clientTime":1}');
  FakeSocket.made[0].message("plain text");
  assert.deepEqual(seen.messages, [[{ seatNumber: "1A" }], "plain text"]);
  await wait(50);
  assert.ok(FakeSocket.made[0].sent.some((m) => JSON.parse(m).type === "ping"), "heartbeat sent");
  assert.equal(socket.send({ type: "getSeats" }), true);
  FakeSocket.made[0].drop();  // the server restarted
  assert.equal(socket.state, "reconnecting");
  await wait(60);
  assert.equal(FakeSocket.made.length, 2, "a new socket");
  FakeSocket.made[1].open();
  assert.equal(seen.opens, 2, "onopen again: the page re-syncs");
  socket.close();
  assert.equal(socket.state, "closed");
  await wait(60);
  assert.equal(FakeSocket.made.length, 2, "closed for good: no reconnect");
  assert.deepEqual(seen.states, ["open", "reconnecting", "open", "closed"]);
});

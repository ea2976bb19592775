// The seat-booking page in headless Debian Chromium (playwright-core), two independent
// browser contexts on one flight, against the real cairn-server. Each test saves a
// screenshot of its final state (or of the failure) under $CAIRN_BROWSER_ARTIFACTS.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Server, launchChromium } from "./server.mjs";

const artifacts = process.env.CAIRN_BROWSER_ARTIFACTS ?? path.join(tmpdir(), "cairn-browser-artifacts");
mkdirSync(artifacts, { recursive: true });

let browser;
before(async () => {
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
});

// A page in its own context that records console errors and uncaught exceptions.
async function openPage(url, name) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.errors = [];
  page.on("console", (m) => { if (m.type() === "error") page.errors.push(`${name}: ${m.text()}`); });
  page.on("pageerror", (e) => page.errors.push(`${name}: ${e.message}`));
  page.label = name;
  if (url) await page.goto(url);
  return page;
}

// Runs `body` with pages; screenshots each page at the end (named after the test), and
// fails on console errors that `allowed` does not accept.
async function scenario(t, pages, body, allowed = () => false) {
  const slug = t.name.replace(/[^a-z0-9]+/gi, "-").toLowerCase();
  let failure;
  try {
    await body();
  } catch (e) {
    failure = e;
  }
  for (const page of pages) {
    const suffix = failure ? "failed" : "final";
    await page.screenshot({ path: path.join(artifacts, `${slug}-${page.label}-${suffix}.png`) }).catch(() => {});
  }
  const errors = pages.flatMap((p) => p.errors).filter((e) => !allowed(e));
  for (const page of pages) await page.context().close();
  if (failure) throw failure;
  assert.deepEqual(errors, [], "console errors");
}

const seat = (page, number) => page.locator(`[data-seat="${number}"]`);

// Books a seat as a user does: click it (a hold), type the name, confirm.
async function book(page, number, name) {
  await seat(page, number).click();
  await page.locator("#holdPanel").waitFor({ state: "visible", timeout: 5000 });
  await page.locator("#nameInput").fill(name);
  await page.locator("#confirmButton").click();
}

test("without flightId the page shows the hint", async (t) => {
  const server = await new Server().start();
  const page = await openPage(server.url(), "a");
  await scenario(t, [page], async () => {
    await page.getByText("Add ?flightId=1234 to the address.").waitFor({ timeout: 5000 });
    assert.equal(await page.locator("#title").textContent(), "No Flight ID provided");
  });
  await server.dispose();
});

test("a booking in one page shows as taken in the other within a second", async (t) => {
  const server = await new Server().start();
  const a = await openPage(server.url("?flightId=live"), "a");
  const b = await openPage(server.url("?flightId=live"), "b");
  await scenario(t, [a, b], async () => {
    for (const page of [a, b]) {
      await page.locator(".seat").nth(59).waitFor({ timeout: 5000 });
      assert.equal(await page.locator(".seat").count(), 60);
      await page.getByText("Live updates on").waitFor({ timeout: 5000 });
    }
    await book(a, "2B", "Ann");
    await a.getByText("Seat 2B booked successfully").waitFor({ timeout: 5000 });
    // B never reloads: the WebSocket broadcast redraws it.
    await b.locator('[data-seat="2B"].unavailable').waitFor({ timeout: 1000 });
    assert.equal(await seat(b, "2B").getAttribute("title"), "Taken by Ann");
  });
  await server.dispose();
});

test("a seat booked meanwhile gives the other page a visible error and stays booked", async (t) => {
  const server = await new Server().start();
  const a = await openPage(server.url("?flightId=race"), "a");
  const b = await openPage(null, "b");
  // B's live updates never arrive (its socket goes nowhere), so it still shows 2C free.
  await b.routeWebSocket(/\/ws/, () => {});
  await b.goto(server.url("?flightId=race"));
  await scenario(t, [a, b], async () => {
    await b.locator('[data-seat="2C"].available').waitFor({ timeout: 5000 });
    await book(a, "2C", "Ann");
    await a.getByText("Seat 2C booked successfully").waitFor({ timeout: 5000 });
    await seat(b, "2C").click();  // B's hold fails: the seat is booked
    await b.locator("#status.error", { hasText: "Seat 2C is already booked" }).waitFor({ timeout: 5000 });
    assert.equal(await b.locator("#holdPanel").isVisible(), false);
    await b.locator('[data-seat="2C"].unavailable').waitFor({ timeout: 5000 });  // re-fetched
    assert.equal(await seat(b, "2C").getAttribute("title"), "Taken by Ann");
  }, (e) => /status of 409/.test(e));
  await server.dispose();
});

test("after a server restart both pages reconnect and agree", async (t) => {
  const server = await new Server().start();
  const a = await openPage(server.url("?flightId=restart"), "a");
  const b = await openPage(server.url("?flightId=restart"), "b");
  let restarting = false;
  const during = [];
  for (const page of [a, b]) {
    page.on("console", (m) => { if (restarting && m.type() === "error") during.push(m.text()); });
  }
  await scenario(t, [a, b], async () => {
    for (const page of [a, b]) await page.getByText("Live updates on").waitFor({ timeout: 5000 });
    await book(a, "4D", "Ann");
    await b.locator('[data-seat="4D"].unavailable').waitFor({ timeout: 2000 });
    restarting = true;
    await server.stop();
    for (const page of [a, b]) await page.getByText("Live updates lost; reconnecting...").waitFor({ timeout: 5000 });
    await server.start();  // same port, same data
    for (const page of [a, b]) await page.getByText("Live updates on").waitFor({ timeout: 15000 });
    restarting = false;
    await book(b, "5E", "Bea");
    for (const page of [a, b]) {
      await page.locator('[data-seat="4D"].unavailable').waitFor({ timeout: 2000 });
      await page.locator('[data-seat="5E"].unavailable').waitFor({ timeout: 2000 });
    }
  }, (e) => during.some((d) => e.endsWith(d)));
  await server.dispose();
});

test("a name with markup is shown as text and never runs", async (t) => {
  const server = await new Server().start();
  const a = await openPage(server.url("?flightId=xss"), "a");
  const b = await openPage(server.url("?flightId=xss"), "b");
  let alerted = false;
  await scenario(t, [a, b], async () => {
    for (const page of [a, b]) await page.getByText("Live updates on").waitFor({ timeout: 5000 });
    const evil = "<img src=x onerror=alert(1)>";
    for (const page of [a, b]) page.on("dialog", (dialog) => { alerted = true; dialog.dismiss(); });
    await book(a, "1A", evil);
    await b.locator('[data-seat="1A"].unavailable').waitFor({ timeout: 2000 });
    assert.equal(await seat(b, "1A").getAttribute("title"), `Taken by ${evil}`);
    for (const page of [a, b]) assert.equal(await page.locator("img").count(), 0);
    await a.waitForTimeout(300);
    assert.equal(alerted, false);
  });
  await server.dispose();
});

test("a hold shows as held in the other page with a countdown; confirming books it; cancel frees it", async (t) => {
  const server = await new Server(["--hold-seconds", "60"]).start();
  const a = await openPage(server.url("?flightId=hold"), "a");
  const b = await openPage(server.url("?flightId=hold"), "b");
  await scenario(t, [a, b], async () => {
    for (const page of [a, b]) await page.getByText("Live updates on").waitFor({ timeout: 5000 });
    await seat(a, "3C").click();
    await a.locator("#holdPanel").waitFor({ state: "visible", timeout: 5000 });
    assert.match(await a.locator("#countdown").textContent(), /^(1:00|0:5\d)$/);
    await a.locator('[data-seat="3C"].held.mine').waitFor({ timeout: 2000 });
    // B sees it held, distinctly, and cannot take it.
    await b.locator('[data-seat="3C"].held').waitFor({ timeout: 1000 });
    assert.equal(await seat(b, "3C").getAttribute("title"), "Held by another customer");
    await seat(b, "3C").click();
    assert.equal(await b.locator("#holdPanel").isVisible(), false);
    // The countdown runs.
    const first = await a.locator("#countdown").textContent();
    await a.waitForFunction((before) => document.getElementById("countdown").textContent !== before, first,
                            { timeout: 3000 });
    await a.locator("#nameInput").fill("Ann");
    await a.locator("#confirmButton").click();
    await a.getByText("Seat 3C booked successfully").waitFor({ timeout: 5000 });
    await b.locator('[data-seat="3C"].unavailable').waitFor({ timeout: 1000 });
    assert.equal(await a.locator("#bookedSeat").textContent(), "3C");
    await a.locator("#cancelButton").click();
    await a.getByText("Booking of seat 3C cancelled").waitFor({ timeout: 5000 });
    await b.locator('[data-seat="3C"].available').waitFor({ timeout: 1000 });
  });
  await server.dispose();
});

test("a hold nobody confirms expires: the server frees the seat in every page and the holder is told", async (t) => {
  const server = await new Server(["--hold-seconds", "2"]).start();
  const a = await openPage(server.url("?flightId=expire"), "a");
  const b = await openPage(server.url("?flightId=expire"), "b");
  await scenario(t, [a, b], async () => {
    for (const page of [a, b]) await page.getByText("Live updates on").waitFor({ timeout: 5000 });
    await seat(a, "6F").click();
    await b.locator('[data-seat="6F"].held').waitFor({ timeout: 2000 });
    // B has no timer of its own: only the server's alarm and broadcast can free it there.
    await b.locator('[data-seat="6F"].available').waitFor({ timeout: 6000 });
    await a.locator("#status.error", { hasText: "Your hold on seat 6F expired" }).waitFor({ timeout: 3000 });
    assert.equal(await a.locator("#holdPanel").isVisible(), false);
    await a.locator('[data-seat="6F"].available').waitFor({ timeout: 2000 });
  });
  await server.dispose();
});

// The admin listener's inspector page in headless Debian Chromium (playwright-core), against
// the real cairn-server: token, bindings, the actor search, one flight's tables and rows, and
// the live counters. Screenshots go under $CAIRN_BROWSER_ARTIFACTS.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Server, launchChromium } from "./server.mjs";

const artifacts = process.env.CAIRN_BROWSER_ARTIFACTS ?? path.join(tmpdir(), "cairn-browser-artifacts");
mkdirSync(artifacts, { recursive: true });
const token = "inspector-test-token-0123456789";

let browser;
let server;
before(async () => {
  const tokenFile = path.join(tmpdir(), `cairn-inspector-token-${process.pid}`);
  writeFileSync(tokenFile, `${token}\n`);
  server = await new Server(["--admin-port", "0", "--admin-token-file", tokenFile]).start();
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await server?.dispose();
});

async function book(flight, seatNumber, name) {
  const response = await fetch(server.url(`book-seat?flightId=${flight}`), {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ seatNumber, name }),
  });
  assert.equal(response.status, 200);
}

async function withPage(t, body) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("response", (r) => { if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`); });
  const slug = t.name.replace(/[^a-z0-9]+/gi, "-").toLowerCase();
  try {
    await body(page, errors);
    await page.screenshot({ path: path.join(artifacts, `${slug}-final.png`), fullPage: true });
  } catch (e) {
    await page.screenshot({ path: path.join(artifacts, `${slug}-failed.png`), fullPage: true }).catch(() => {});
    throw e;
  } finally {
    await context.close();
  }
  return errors;
}

test("the inspector lists bindings and actors, browses a flight's rows, shows counters", async (t) => {
  await book("insp-1", "1A", "Ann");
  await book("insp-2", "2B", "Bob");
  const errors = await withPage(t, async (page) => {
    await page.goto(`http://127.0.0.1:${server.adminPort}/`);
    await page.fill("#token", token);
    await page.click("#login button");
    const flightRow = page.locator("#bindings tbody tr", { hasText: "FLIGHT" });
    await flightRow.waitFor();
    assert.deepEqual((await flightRow.locator("td").allTextContents()).slice(0, 2), ["FLIGHT", "2"]);
    await page.locator("#actors tbody tr", { hasText: "insp-1" }).waitFor();
    assert.equal(await page.locator("#actors tbody tr").count(), 2);

    await page.fill("#prefix", "insp-2");
    await page.click("#search button");
    await page.waitForFunction(() => document.querySelectorAll("#actors tbody tr").length === 1);
    await page.locator("#actors tbody tr", { hasText: "insp-2" }).click();
    await page.locator("#actor-name", { hasText: "FLIGHT / insp-2" }).waitFor();
    assert.equal(await page.locator("#actor-facts dd").first().textContent(), "live");
    const seats = page.locator("#tables tbody tr", { hasText: "seats" });
    assert.deepEqual(await seats.locator("td").allTextContents(), ["seats", "table", "60"]);

    await seats.click();
    await page.locator("#rows tbody tr", { hasText: "Bob" }).waitFor();
    assert.equal(await page.locator("#rows tbody tr").count(), 50);
    assert.ok((await page.locator("#rows thead th").allTextContents()).includes("occupant"));
    await page.click("#rows-next");
    await page.waitForFunction(() => document.querySelectorAll("#rows tbody tr").length === 10);
    assert.equal(await page.isDisabled("#rows-next"), true);

    const events = page.locator("#counters tbody tr", { hasText: "cairn_events_total" });
    await events.waitFor();
    assert.ok(Number(await events.locator("td").nth(1).textContent()) >= 2);
  });
  assert.deepEqual(errors, [], "console errors");
});

test("a wrong token shows the 401 and no data", async (t) => {
  const errors = await withPage(t, async (page) => {
    await page.goto(`http://127.0.0.1:${server.adminPort}/`);
    await page.fill("#token", "not-the-token-000000000");
    await page.click("#login button");
    await page.locator("#error", { hasText: "401" }).waitFor();
    assert.equal(await page.isHidden("#app"), true);
  });
  // The refused fetch is logged by Chromium as a failed resource load.
  assert.deepEqual(errors.filter((e) => !e.includes("401")), [], "console errors");
});

// The admin listener's inspector page in headless Debian Chromium (playwright-core), against
// the real cairn-server: the overview's charts and top lists under load from cairn-load, one
// flight's page (recent events, its hold's alarm on the timeline, tables and rows, evict,
// export, delete), and a wrong token. Screenshots go under $CAIRN_BROWSER_ARTIFACTS.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { spawn } from "node:child_process";
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

async function login(page) {
  await page.goto(`http://127.0.0.1:${server.adminPort}/`);
  await page.fill("#token", token);
  await page.click("#login button");
  await page.locator("#views").waitFor();
}

// Points drawn by the chart `id`, and the latest value of each of its series.
async function chart(page, id) {
  return page.evaluate((chartId) => {
    const figure = document.getElementById(chartId);
    if (!figure) return { points: 0, values: {} };
    const values = {};
    for (const item of figure.querySelectorAll(".legend span")) {
      values[item.textContent.split(" ")[0]] = item.dataset.value === "" ? null : Number(item.dataset.value);
    }
    return { points: Number(figure.querySelector("svg").dataset.points), values };
  }, id);
}

test("under load the overview charts request and commit rates and lists the busiest actors", async (t) => {
  const loadPath = process.env.CAIRN_LOAD;
  assert.ok(loadPath, "set CAIRN_LOAD (ctest does)");
  const errors = await withPage(t, async (page) => {
    await login(page);
    // 100 bookings a second for 12 s over 50 flights (3,000 seats): durable writes, so commits move too.
    const load = spawn(loadPath, ["book", "--url", `http://127.0.0.1:${server.port}`, "--connections", "4",
                                  "--flights", "50", "--prefix", "load-", "--duration", "12", "--rate", "100"],
                       { stdio: ["ignore", "ignore", "inherit"] });
    const loadDone = new Promise((resolve) => load.on("exit", resolve));
    try {
      await page.waitForFunction(() => {
        const value = (id, name) => {
          for (const s of document.querySelectorAll(`#${id} .legend span`)) {
            if (s.textContent.startsWith(`${name} `)) return Number(s.dataset.value || 0);
          }
          return 0;
        };
        return value("chart-requests", "/book-seat") > 0 && value("chart-durable", "commits") > 0 &&
               value("chart-durable", "events") > 0 && value("chart-latency", "p99") > 0;
      }, null, { timeout: 15000 });
      const requests = await chart(page, "chart-requests");
      assert.ok(requests.points >= 1, "the request chart has points");
      assert.ok(requests.values["/book-seat"] > 10, `book-seat rate ${requests.values["/book-seat"]}`);
      const status = await chart(page, "chart-status");
      assert.ok(status.values["2xx"] > 10);
      const durable = await chart(page, "chart-durable");
      assert.ok(durable.values.events >= durable.values.commits, "events are at least commits");
      assert.ok((await chart(page, "chart-commit")).values.p99 > 0);
      assert.ok((await chart(page, "chart-instances")).values.live >= 1);
      assert.ok((await chart(page, "chart-fds")).values.limit > (await chart(page, "chart-fds")).values.open);
      // Several readings make a line.
      await page.waitForFunction(() => Number(document.querySelector("#chart-durable svg").dataset.points) >= 6,
                                 null, { timeout: 15000 });
      await page.locator("#top-busiest tbody tr", { hasText: "FLIGHT / load-" }).first().waitFor({ timeout: 10000 });
      const busiest = await page.locator("#top-busiest tbody tr").count();
      assert.equal(busiest, 10, "the 10 busiest");
      await page.screenshot({ path: path.join(artifacts, "overview-under-load.png"), fullPage: true });
    } finally {
      load.kill("SIGTERM");
      await loadDone;
    }
  });
  assert.deepEqual(errors, [], "console errors");
});

test("an actor's page shows its recent events and its hold's alarm on the timeline, and evicts and deletes", async (t) => {
  await book("insp-1", "1A", "Ann");
  const hold = await fetch(server.url("hold-seat?flightId=insp-2"), {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ seatNumber: "2B" }),
  });
  assert.equal(hold.status, 200);
  await book("insp-2", "3C", "Bob");
  const errors = await withPage(t, async (page) => {
    await login(page);
    await page.click('#views button[data-view="actors"]');
    const flightRow = page.locator("#bindings tbody tr", { hasText: "FLIGHT" });
    await flightRow.waitFor();
    assert.equal((await flightRow.locator("td").allTextContents())[0], "FLIGHT");
    await page.fill("#prefix", "insp-");
    await page.click("#search button");
    await page.waitForFunction(() => document.querySelectorAll("#actors tbody tr").length === 2);

    await page.locator("#actors tbody tr", { hasText: "insp-2" }).click();
    await page.locator("#actor-name", { hasText: "FLIGHT / insp-2" }).waitFor();
    assert.equal(await page.locator("#actor-facts dd").first().textContent(), "live");
    // Newest first: the booking, then the hold.
    const events = page.locator("#events tbody tr");
    assert.equal(await events.count(), 2);
    assert.deepEqual((await events.nth(0).locator("td").allTextContents()).slice(1, 4), ["fetch", "POST /book-seat", "200"]);
    assert.deepEqual((await events.nth(1).locator("td").allTextContents()).slice(1, 4), ["fetch", "POST /hold-seat", "200"]);
    assert.match(await events.nth(0).locator("td").nth(5).textContent(), /^[1-9]/);
    // The hold's expiry is an alarm, drawn ahead of now.
    assert.equal(await page.locator("#alarm-svg").getAttribute("data-points"), "1");
    assert.match(await page.locator("#alarm-svg").getAttribute("aria-label"), /in \d/);
    assert.equal(await page.locator("#alarms tbody tr").count(), 1);
    await page.screenshot({ path: path.join(artifacts, "actor-page.png"), fullPage: true });

    const seats = page.locator("#tables tbody tr", { hasText: "seats" });
    assert.deepEqual(await seats.locator("td").allTextContents(), ["seats", "table", "60"]);
    await seats.click();
    await page.locator("#rows tbody tr", { hasText: "Bob" }).waitFor();
    assert.equal(await page.locator("#rows tbody tr").count(), 50);
    await page.click("#rows-next");
    await page.waitForFunction(() => document.querySelectorAll("#rows tbody tr").length === 10);
    assert.equal(await page.isDisabled("#rows-next"), true);

    await page.click("#actor-evict");
    await page.locator("#actor-status", { hasText: "Evicted" }).waitFor();
    assert.equal(await page.locator("#actor-facts dd").first().textContent(), "evicted");
    assert.equal(await page.locator("#events tbody tr").count(), 2, "the events outlive the eviction");

    const download = page.waitForEvent("download");
    await page.click("#actor-export");
    assert.equal((await download).suggestedFilename(), "FLIGHT-insp-2.sqlite");
    await page.locator("#actor-status", { hasText: "Exported" }).waitFor();

    // Delete asks first: refused, nothing happens; accepted, the actor is gone.
    page.once("dialog", (d) => d.dismiss());
    await page.click("#actor-delete");
    await page.locator("#actor-status", { hasText: "Not deleted" }).waitFor();
    page.once("dialog", (d) => d.accept());
    await page.click("#actor-delete");
    await page.waitForFunction(() => document.querySelectorAll("#actors tbody tr").length === 1);
    assert.equal(await page.isHidden("#actor-section"), true);
  });
  assert.deepEqual(errors, [], "console errors");
  const seats = await fetch(server.url("seats?flightId=insp-2"));
  assert.ok((await seats.json()).every((s) => s.occupant === null), "deleted: a fresh flight");
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

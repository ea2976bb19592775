// A user's own page with inline code, served from --public-dir, works in headless Chromium
// under the default Content-Security-Policy; `--content-security-policy strict` blocks it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Server, launchChromium } from "./server.mjs";

let browser;
let pageDir;
before(async () => {
  browser = await launchChromium();
  pageDir = mkdtempSync(path.join(tmpdir(), "cairn-csp-"));
  writeFileSync(path.join(pageDir, "index.html"), `<!doctype html>
<html><head><meta charset="utf-8"><title>inline</title><link rel="icon" href="data:,">
<style>#out { color: rgb(1, 2, 3); }</style></head>
<body><p id="out">inline script did not run</p>
<script>document.getElementById("out").textContent = "inline script ran";</script>
</body></html>`);
});
after(async () => {
  await browser?.close();
  rmSync(pageDir, { recursive: true, force: true });
});

async function load(extra) {
  const server = await new Server(["--public-dir", pageDir, ...extra]).start();
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  try {
    await page.goto(server.url());
    const text = await page.textContent("#out");
    const color = await page.$eval("#out", (e) => getComputedStyle(e).color);
    return { text, color, errors };
  } finally {
    await context.close();
    await server.dispose();
  }
}

test("a page with an inline script and style from --public-dir works under the default policy", async () => {
  const { text, color, errors } = await load([]);
  assert.equal(text, "inline script ran");
  assert.equal(color, "rgb(1, 2, 3)");
  assert.deepEqual(errors, []);
});

test("--content-security-policy strict blocks the same page's inline script", async () => {
  const { text, errors } = await load(["--content-security-policy", "strict"]);
  assert.equal(text, "inline script did not run");
  assert.ok(errors.some((e) => /Content Security Policy/i.test(e)), errors.join("\n"));
});

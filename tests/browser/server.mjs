// Starts the real cairn-server on a loopback port with its own data dir, and stops it by PID.
import { spawn } from "node:child_process";
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export const serverPath = process.env.CAIRN_SERVER;
export const publicDir = process.env.CAIRN_PUBLIC_DIR;
if (!serverPath || !publicDir) throw new Error("set CAIRN_SERVER and CAIRN_PUBLIC_DIR (ctest does)");

export class Server {
  // `extra`: more cairn-server flags, e.g. ["--hold-seconds", "2"].
  constructor(extra = []) {
    this.extra = extra;
    this.dataDir = mkdtempSync(path.join(tmpdir(), "cairn-browser-"));
    this.port = 0;
  }

  // Starts the server (on the same port as before, after a stop) and waits for its address.
  async start() {
    const args = ["--host", "127.0.0.1", "--port", String(this.port), "--data-dir", this.dataDir,
                  "--public-dir", publicDir, "--threads", "2", "--log-level", "warn", ...this.extra];
    this.child = spawn(serverPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    this.port = await new Promise((resolve, reject) => {
      let text = "";
      const timer = setTimeout(() => reject(new Error(`no address from the server: ${text}`)), 20000);
      this.child.stdout.on("data", (chunk) => {
        text += chunk;
        const match = /listening on http:\/\/127\.0\.0\.1:(\d+) /.exec(text);
        // With --admin-port, the admin listener's line follows.
        const admin = /admin API on http:\/\/127\.0\.0\.1:(\d+) /.exec(text);
        if (match && (admin || !this.extra.includes("--admin-port"))) {
          if (admin) this.adminPort = Number(admin[1]);
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      });
      this.child.on("exit", (code) => reject(new Error(`the server exited (${code}): ${text}`)));
    });
    return this;
  }

  url(query = "") {
    return `http://127.0.0.1:${this.port}/${query}`;
  }

  // SIGTERM by PID, then SIGKILL after 10 s.
  async stop() {
    if (!this.child || this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 10000);
    await exited;
    clearTimeout(timer);
  }

  async dispose() {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

// Debian's Chromium, headless; playwright-core gives each launch a fresh, empty profile.
export function launchChromium() {
  return chromium.launch({
    headless: true,
    executablePath: process.env.CAIRN_CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

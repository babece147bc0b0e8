// Starts the real server binary for one test file and stops it afterwards.
//
// Each test file takes its own `slot`, so the files never share ports even when run outside a
// network namespace:  HTTP port = 18000 + slot,  ICE-TCP port = 17000 + slot,  media UDP ports
// from 20000 + 100 * slot.
// E2E_PORT_OFFSET shifts all three (for running two checkouts side by side). E2E_SFU_BIN names another
// server binary. (Not SFU_*: the server treats every SFU_* variable as a config key.)

import { spawn, execFile } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const SFU_BIN = process.env.E2E_SFU_BIN ?? path.join(REPO_ROOT, 'target/release/sfu');
export const LOG_DIR = path.join(REPO_ROOT, 'target/e2e-logs');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `fn` until it returns a truthy value (which is returned) or `timeoutMs` passes (then throws,
 * naming `what` and the last value or error seen). An error with `fatal: true` ends the wait at once.
 */
export async function poll(fn, { timeoutMs = 20_000, intervalMs = 200, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  let lastErr;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      if (e.fatal) throw e;
      lastErr = e;
    }
    if (Date.now() > deadline) {
      const detail = lastErr ? `last error: ${lastErr.message}` : `last value: ${JSON.stringify(last)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${detail})`);
    }
    await sleep(intervalMs);
  }
}

export function portsFor(slot) {
  const offset = Number(process.env.E2E_PORT_OFFSET ?? 0);
  return { httpPort: 18000 + offset + slot, tcpPort: 17000 + offset + slot, udpPortStart: 20000 + offset + 100 * slot };
}

export class SfuServer {
  /** `host`: the address the server binds and is reached at (default loopback). */
  constructor({ name, slot, env = {}, host = '127.0.0.1' }) {
    this.name = name;
    this.host = host;
    Object.assign(this, portsFor(slot));
    this.extraEnv = env;
    this.proc = null;
    this.exited = null;
    this.logFile = path.join(LOG_DIR, `${name}.server.log`);
  }

  get httpUrl() {
    return `http://${this.host}:${this.httpPort}`;
  }

  get wsUrl() {
    return `ws://${this.host}:${this.httpPort}/rtc`;
  }

  /** The environment the server (and its CLI) run with. */
  get env() {
    return {
      ...process.env,
      SFU_HTTP_PORT: String(this.httpPort),
      SFU_RTC__UDP_PORT_START: String(this.udpPortStart),
      SFU_RTC__TCP_PORT: String(this.tcpPort),
      ...(this.host === '127.0.0.1' ? {} : { SFU_BIND: this.host }),
      ...this.extraEnv,
    };
  }

  async start({ timeoutMs = 30_000 } = {}) {
    if (!existsSync(SFU_BIN)) throw new Error(`${SFU_BIN} not found: run cargo build --release first`);
    mkdirSync(LOG_DIR, { recursive: true });
    const log = createWriteStream(this.logFile, { flags: 'w' });
    this.proc = spawn(SFU_BIN, [], { cwd: REPO_ROOT, env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout.pipe(log);
    this.proc.stderr.pipe(log);
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => resolve({ code, signal })));
    let exitedEarly = null;
    this.exited.then((e) => (exitedEarly = e));
    try {
      await poll(async () => {
        if (exitedEarly) throw Object.assign(new Error('exited'), { fatal: true });
        const res = await fetch(`${this.httpUrl}/healthz`, { signal: AbortSignal.timeout(2000) });
        return res.status === 200;
      }, { timeoutMs, intervalMs: 100, what: `${this.httpUrl}/healthz` });
    } catch (e) {
      await this.stop();
      throw new Error(`server did not become healthy (${exitedEarly ? `exited ${JSON.stringify(exitedEarly)}` : e.message});` +
        ` log ${this.logFile}:\n${this.logTail()}`);
    }
    if (exitedEarly) throw new Error(`server exited: ${JSON.stringify(exitedEarly)}\n${this.logTail()}`);
    return this;
  }

  logTail(lines = 40) {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /**
   * The log's lines from between two wall-clock times (ms since the epoch) whose text matches
   * `pattern`, colours stripped, each as "+<ms after fromMs> <text>": for explaining a failure.
   */
  logBetween(fromMs, toMs, pattern) {
    let text;
    try {
      text = readFileSync(this.logFile, 'utf8');
    } catch {
      return [];
    }
    const lines = [];
    for (const raw of text.split('\n')) {
      const line = raw.replace(/\x1b\[[0-9;]*m/g, '');
      const at = Date.parse(line.slice(0, 27));
      if (Number.isNaN(at) || at < fromMs || at > toMs || !pattern.test(line)) continue;
      lines.push(`+${Math.round(at - fromMs)} ${line.slice(28).trim()}`);
    }
    return lines;
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(t);
  }

  /** A token from the dev endpoint. */
  async token(room, identity) {
    const u = new URL('/dev/token', this.httpUrl);
    u.searchParams.set('room', room);
    u.searchParams.set('identity', identity);
    const res = await fetch(u);
    if (res.status !== 200) throw new Error(`GET ${u}: HTTP ${res.status}`);
    const body = await res.json();
    if (typeof body.token !== 'string') throw new Error(`GET ${u}: no token in ${JSON.stringify(body)}`);
    return body.token;
  }

  /** Runs the server binary's CLI (e.g. `token --room r ...`) with the server's environment. */
  cli(args, { timeoutMs = 15_000 } = {}) {
    return new Promise((resolve, reject) => {
      execFile(SFU_BIN, args, { cwd: REPO_ROOT, env: this.env, timeout: timeoutMs }, (err, stdout, stderr) => {
        if (err) reject(new Error(`sfu ${args.join(' ')}: ${err.message}\n${stderr}`));
        else resolve({ stdout, stderr });
      });
    });
  }
}

/** Starts a server for one test file. */
export async function startServer(opts) {
  const s = new SfuServer(opts);
  await s.start();
  return s;
}

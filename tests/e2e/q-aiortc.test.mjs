// A non-browser WebRTC stack (aiortc, Python) publishes over WHIP and plays over WHEP for
// Q_AIORTC_SECONDS (default 30) of viewing. aiortc checks consent only every 4-6 s and sends no
// other STUN, so this is the client that finds out whether the server keeps a connection up on
// those checks alone. Asserted: the viewer decodes frames throughout; neither aiortc peer reports
// `disconnected` or `failed`; the server logs no Disconnected peer connection state for them; and
// once the viewer is up the server drops no packet for a subscriber not being connected.
//
// aiortc never offers a loopback candidate, so the server binds an address on a veth pair made in
// the namespace this file runs in (scripts/test runs the e2e files inside `unshare -n`).
// The client needs a Python with aiortc at target/py (or E2E_AIORTC_PYTHON).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createWriteStream, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { useServerAndBrowser } from './lib/harness.mjs';
import { REPO_ROOT, LOG_DIR } from './lib/server.mjs';

const SLOT = 17;
const HOST = '10.88.0.1';
const DEV = 'aq0';
const ROOM = 'aiortc';
const PUBLISHER = 'aiortc-pub';
const SECONDS = Number(process.env.Q_AIORTC_SECONDS ?? 30);
const PYTHON = process.env.E2E_AIORTC_PYTHON ?? path.join(REPO_ROOT, 'target/py/bin/python');
const SCRIPT = path.join(REPO_ROOT, 'tests/clients/aiortc_whip_whep.py');
const FPS = 30;

const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
function dropLink() {
  try {
    ip('link', 'del', DEV); // takes its peer with it
  } catch {}
}

// Before the server starts (useServerAndBrowser's hook is registered after this one).
before(() => {
  dropLink();
  ip('link', 'add', DEV, 'type', 'veth', 'peer', 'name', `${DEV}p`);
  ip('addr', 'add', `${HOST}/24`, 'dev', DEV);
  ip('link', 'set', `${DEV}p`, 'up');
  ip('link', 'set', DEV, 'up');
});
after(dropLink);

const ctx = useServerAndBrowser('q-aiortc', SLOT, {
  browser: false,
  host: HOST,
  // Dev keys for `sfu token`, said explicitly: the server is not on loopback.
  env: { SFU_DEV: 'true', SFU_LOG: 'info' },
});

/** The sum over shards of a counter with the given labels, from /metrics. */
async function counter(name, labels) {
  const text = await (await fetch(`${ctx.server.httpUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.split(' ').pop());
  }
  return sum;
}

const notConnectedDrops = () => counter('sfu_dropped_packets_total', { reason: 'not_connected' });

async function token(identity) {
  const { stdout } = await ctx.server.cli(['token', '--room', ROOM, '--identity', identity]);
  return stdout.trim().split('\n').pop();
}

/**
 * Runs the aiortc client; samples the not-connected drop counter when it says the viewer is
 * playing and when viewing ends. Resolves with {code, result, drops: {atViewing, atEnd}, phases}
 * (phases: the wall clock of each, in ms).
 */
function runClient(args, timeoutMs) {
  const clientLog = createWriteStream(path.join(LOG_DIR, 'q-aiortc.client.log'));
  const child = spawn(PYTHON, [SCRIPT, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const drops = {};
  const phases = {};
  const samples = [];
  let stdout = '';
  let pending = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => {
    clientLog.write(d);
    pending += d;
    const lines = pending.split('\n');
    pending = lines.pop();
    for (const line of lines) {
      let mark;
      try {
        mark = JSON.parse(line);
      } catch {
        continue;
      }
      if (mark.phase === 'viewing' || mark.phase === 'ending') {
        phases[mark.phase] = mark.wall_ms;
        samples.push(notConnectedDrops().then((v) => (drops[mark.phase === 'viewing' ? 'atViewing' : 'atEnd'] = v)));
      }
    }
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    child.once('exit', async (code, signal) => {
      clearTimeout(timer);
      clientLog.end();
      await Promise.allSettled(samples);
      let result = null;
      try {
        result = JSON.parse(stdout.trim().split('\n').pop());
      } catch {}
      resolve({ code, signal, result, drops, phases });
    });
  });
}

test(`aiortc WHIP publisher and WHEP viewer stay connected for ${SECONDS} s`, { timeout: (SECONDS + 150) * 1000 }, async () => {
  assert.ok(existsSync(PYTHON), `${PYTHON} is missing: python3 -m venv target/py && target/py/bin/pip install aiortc==1.16.0`);
  const [whipToken, whepToken] = [await token(PUBLISHER), await token('aiortc-viewer')];
  const from = Date.now();
  const run = await runClient([
    '--url', ctx.server.httpUrl, '--room', ROOM, '--identity', PUBLISHER,
    '--whip-token', whipToken, '--whep-token', whepToken,
    '--duration', String(SECONDS), '--fps', String(FPS), '--width', '320', '--height', '240',
  ], (SECONDS + 120) * 1000);
  const to = Date.now();
  const r = run.result;
  writeFileSync(path.join(LOG_DIR, 'q-aiortc.client.json'), JSON.stringify(r, null, 1));
  assert.ok(r?.ok, `client exit ${run.code ?? run.signal}: ${r?.error ?? 'no result'} (log target/e2e-logs/q-aiortc.client.log)`);
  const v = r.viewer;

  // Client side: every state change of both peers until viewing ended.
  const states = r.events.filter((e) => e.t <= v.endedAtS);
  console.log('client states:', states.map((e) => `${e.t}s ${e.peer} ${e.kind}=${e.state}`).join(', '));
  // Until viewing ended: closing the connections afterwards is no failure.
  const serverDisconnects = ctx.server.logBetween(from, run.phases.ending ?? to, /peer connection state.*state=(Disconnected|Failed)/);
  const lost = Object.fromEntries(Object.entries(v.inbound).map(([k, s]) => [k, s.packetsLost]));
  const received = Object.fromEntries(Object.entries(v.inbound).map(([k, s]) => [k, s.packetsReceived]));
  const dropped = run.drops.atEnd - run.drops.atViewing;
  console.log(`viewer: ${v.videoFrames} frames ${v.frameSizes} (first after ${v.firstFrameAfterS} s, longest gap ` +
    `${v.maxFrameGapMs} ms, per second min ${Math.min(...v.framesPerSecond)}), packets received ${JSON.stringify(received)}, ` +
    `lost ${JSON.stringify(lost)}; server: ${serverDisconnects.length} Disconnected, ${dropped} not-connected drops ` +
    `while viewing (${run.drops.atViewing} before)`);

  // Frames throughout: the first within 5 s, then no gap of a second and every second at least a
  // third of the frame rate.
  assert.ok(v.firstFrameAfterS !== null && v.firstFrameAfterS < 5, `first frame after ${v.firstFrameAfterS} s`);
  assert.ok(v.framesPerSecond.length >= SECONDS - 1, `frames over ${v.framesPerSecond.length} s of ${SECONDS}`);
  assert.ok(v.maxFrameGapMs < 1000, `a ${v.maxFrameGapMs} ms gap between decoded frames`);
  assert.ok(Math.min(...v.framesPerSecond) >= FPS / 3, `frames per second: ${v.framesPerSecond}`);
  const bad = states.filter((e) => e.state === 'disconnected' || e.state === 'failed' || e.state === 'closed');
  assert.deepEqual(bad, [], 'an aiortc peer left the connected state');
  assert.deepEqual(serverDisconnects, [], 'the server saw these connections go Disconnected');
  assert.ok(Number.isFinite(dropped), `not-connected drops not sampled: ${JSON.stringify(run.drops)}`);
  assert.equal(dropped, 0, 'packets dropped for a subscriber not connected, while it was');
});

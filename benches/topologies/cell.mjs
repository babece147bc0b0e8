// One cell of the topology table: a room of `n` on one topology and transport. Up to four real
// Chromium pages (each its own browser, for its CPU), the rest simulated by `sfu-loadtest
// meeting` in the same room; a warm-up, then a steady window over which every figure is taken.

import { spawn } from 'node:child_process';
import { createWriteStream, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOG_DIR, poll, sleep } from '../../tests/e2e/lib/server.mjs';
import { launchBrowser } from '../../tests/e2e/lib/browser.mjs';
import { startTopology } from './setups.mjs';
import { treeSeconds, chromiumRoot } from './cpu.mjs';
import { summarize } from './summary.mjs';
import { serverCounters, countersRate } from './server-metrics.mjs';

const PROBE_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'probe.js');
export const LOADTEST_BIN = process.env.LOADTEST_BIN ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '../../target/release/sfu-loadtest');
const ROOM_PREFIX = 'topo';
const ROOM = `${ROOM_PREFIX}-0`; // sfu-loadtest's first room (plan.rs: PREFIX-i)
const PROBE = 'page-0';
export const MAX_PAGES = 4;
/** Gap between the probe's tone bursts: longer than any delay seen, so onsets pair unambiguously. */
const BURST_PERIOD_MS = 750;
/** TOPO_CHECK_DELAY_MS: a known delay the probe adds to what it publishes (a check of the latency method). */
const CHECK_DELAY_MS = Number(process.env.TOPO_CHECK_DELAY_MS ?? 0);

/** The video layer every participant asks for: what a grid of that size shows. */
export function layerFor(n) {
  if (n <= 4) return 'high';
  if (n <= 8) return 'medium';
  return 'low';
}

/** Starts the simulated participants; returns the child (killed by the caller). */
function startLoadtest(urls, count, layer, name) {
  const log = createWriteStream(path.join(LOG_DIR, `${name}.loadtest.log`), { flags: 'w' });
  const args = ['meeting', '--url', urls.join(','), '--subscribers', String(count), '--rooms', '1',
    '--room-prefix', ROOM_PREFIX, '--layer', layer, '--duration', '600s', '--settle', '30s', '--ramp', '50/s', '--workers', process.env.LOADTEST_WORKERS ?? '1'];
  const child = spawn(LOADTEST_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  child.exited = new Promise((r) => child.once('exit', r));
  return child;
}

async function stopChild(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await child.exited;
  clearTimeout(t);
}

/** What the running cell has started, so a cell over its time can be stopped from outside. */
const running = { browsers: [], loadtest: null, setup: null };

/** Stops whatever the running cell started (browsers, simulated participants, servers). */
export async function stopRunningCell() {
  for (const b of running.browsers.splice(0)) await b.close();
  await stopChild(running.loadtest);
  running.loadtest = null;
  const setup = running.setup;
  running.setup = null;
  await setup?.stop();
}

/** Each page's SDK log and events (T.logs), to LOG_DIR/NAME-pI.sdk.log: what a cell that fell short did. */
async function saveSdkLogs(pages, name) {
  for (const [i, p] of pages.entries()) {
    const lines = await p.page.evaluate(() => (T.logs.k ?? []).map((e) => JSON.stringify(e))).catch((e) => [`no log: ${e.message}`]);
    writeFileSync(path.join(LOG_DIR, `${name}-p${i}.sdk.log`), lines.join('\n') + '\n');
  }
}

/**
 * Runs one cell; returns its figures (see summary.mjs). `windowS` and `warmupS` in seconds.
 * Everything it starts is stopped before it returns, also when it fails.
 */
export async function runCell({ topology, transport = 'udp', n, windowS, warmupS, log = console.log }) {
  const name = `topo-${topology}-${transport}-${n}`;
  const pagesN = Math.min(n, MAX_PAGES);
  const sims = n - pagesN;
  const layer = layerFor(n);
  const setup = await startTopology(topology, transport, name);
  running.setup = setup;
  const browsers = running.browsers;
  try {
    if (sims > 0) running.loadtest = startLoadtest(setup.nodeUrls, sims, layer, name);
    const pages = [];
    for (let i = 0; i < pagesN; i++) {
      const browser = await launchBrowser(`${name}-p${i}`, setup.browserOptions);
      browsers.push(browser);
      await browser.context.addInitScript({ path: PROBE_SCRIPT });
      const page = await browser.openPage(setup.pageUrl(i), `p${i}`);
      await page.evaluate(async ([room, identity, probe, options, checkDelayMs]) => {
        const stream = await P.stream({ probe, video: true, checkDelayMs });
        await T.join('k', { room, identity, publish: { stream }, options: { ...options, captureLog: true } });
      }, [ROOM, `page-${i}`, i === 0, setup.joinOptions, CHECK_DELAY_MS]);
      // The MCU sends one mixed track, whoever speaks: watch every audio track there.
      await page.evaluate(([identity, l]) => P.watch('k', { identity, layer: l }), [topology === 'mcu' ? null : PROBE, layer]);
      pages.push({ page, browser, root: chromiumRoot(browser.userDataDir) });
    }
    log(`${name}: ${pagesN} pages joined${sims ? `, ${sims} simulated` : ''}; waiting for video from all ${n - 1} others`);
    let decodingNote = null;
    try {
      await poll(async () => {
        for (const p of pages) {
          const v = await p.page.evaluate(() => P.videoIn());
          if (v.receiving < n - 1 || v.decoding < pagesN - 1) return false;
        }
        return true;
      }, { timeoutMs: 60_000 + 1000 * n, intervalMs: 1000, what: `every page receiving ${n - 1} videos and decoding the ${pagesN - 1} other pages'` });
    } catch (e) {
      decodingNote = e.message;
      log(`${name}: ${e.message}; measuring anyway`);
    }
    await sleep(warmupS * 1000);

    const snap = async () => ({
      wall: Date.now(),
      pages: await Promise.all(pages.map((p) => p.page.evaluate(() => P.counters()))),
      cpuPages: treeSeconds(pages.map((p) => p.root)).map((t) => t.seconds),
      cpuServers: treeSeconds(setup.serverPids()).map((t) => t.seconds),
      counters: await serverCounters(setup.nodeUrls),
    });
    const before = await snap();
    const bursts = Math.max(4, Math.floor((windowS * 1000 - 500) / BURST_PERIOD_MS));
    await pages[0].page.evaluate(([c, ms]) => P.startBursts(c, ms), [bursts, BURST_PERIOD_MS]);
    await sleep(windowS * 1000);
    const after = await snap();
    await sleep(1500); // the last bursts' onsets
    const sendOnsets = await pages[0].page.evaluate(() => P.sendOnsets());
    const received = await Promise.all(pages.slice(1).map((p) => p.page.evaluate(() => P.receiveOnsets())));
    const videoIn = await Promise.all(pages.map((p) => p.page.evaluate(() => P.videoIn())));
    await saveSdkLogs(pages, name);
    return summarize({
      topology, transport, n, pagesN, sims, layer, windowS, bursts, burstPeriodMs: BURST_PERIOD_MS,
      before, after, sendOnsets, received, videoIn, decodingNote, udpDropped: setup.udpDropped(),
      server: countersRate(before.counters, after.counters, (after.wall - before.wall) / 1000),
    });
  } finally {
    await stopRunningCell();
  }
}

// Server CPU with one browser publisher (3 simulcast layers + audio) and N browser subscribers.
//
// Run inside a fresh network namespace, after `cargo build --release`:
//   unshare -n sh -c 'ip link set lo up && node benches/browser-fanout.mjs [subscribers=16] [seconds=20]'
// Prints the server's CPU (percent of one core), RSS and forwarded packets/s over the window.
// The subscribers share one page (Chromium decodes 16 360p-720p streams comfortably that way).

import fs from 'node:fs';
import { startServer, poll } from '../tests/e2e/lib/server.mjs';
import { launchBrowser } from '../tests/e2e/lib/browser.mjs';

const subscribers = Number(process.argv[2] ?? 16);
const seconds = Number(process.argv[3] ?? 20);
const TICKS = 100; // USER_HZ on Linux

function cpuTicks(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}
function rssMb(pid) {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS'));
  return Number(line.split(/\s+/)[1]) / 1024;
}
async function forwarded(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith('sfu_forwarded_packets_total'))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

const server = await startServer({ name: 'bench-fanout', slot: 8 });
const browser = await launchBrowser('bench-fanout');
try {
  const pub = await browser.openPage(server.httpUrl, 'pub');
  await pub.evaluate(() => T.join('p', { room: 'bench', identity: 'publisher', publish: true }));
  const subs = await browser.openPage(server.httpUrl, 'subs');
  for (let i = 0; i < subscribers; i++) {
    await subs.evaluate((i) => T.join(`s${i}`, { room: 'bench', identity: `sub${i}` }), i);
  }
  // Everyone decoding before the window opens.
  await poll(async () => {
    const decoding = await subs.evaluate(async (n) => {
      let ok = 0;
      for (let i = 0; i < n; i++) {
        const s = await T.stats(`s${i}`, 'video');
        if (s && s.framesDecoded > 30) ok++;
      }
      return ok;
    }, subscribers);
    return decoding === subscribers;
  }, { timeoutMs: 90_000, intervalMs: 1000, what: `${subscribers} subscribers decoding` });

  const pid = server.proc.pid;
  const [t0, c0, f0] = [Date.now(), cpuTicks(pid), await forwarded(server.httpUrl)];
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const [t1, c1, f1] = [Date.now(), cpuTicks(pid), await forwarded(server.httpUrl)];
  const wall = (t1 - t0) / 1000;
  const cpuPct = ((c1 - c0) / TICKS / wall) * 100;
  const pps = (f1 - f0) / wall;
  const widths = await subs.evaluate(async (n) => {
    const out = [];
    for (let i = 0; i < n; i++) out.push((await T.stats(`s${i}`, 'video'))?.frameWidth);
    return out;
  }, subscribers);
  console.log(JSON.stringify({
    subscribers, seconds: wall, server_cpu_pct: +cpuPct.toFixed(1), server_rss_mb: +rssMb(pid).toFixed(1),
    forwarded_pps: Math.round(pps), cpu_us_per_forwarded_packet: +((cpuPct / 100) * 1e6 / pps).toFixed(2),
    subscriber_widths: [...new Set(widths)],
  }));
} finally {
  await browser.close();
  await server.stop();
}

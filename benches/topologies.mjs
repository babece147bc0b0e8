// The measured topology table of docs/topologies.md: mesh, SFU, audio MCU and a 2-node cluster
// side by side for rooms of N, and the transports at N = 4 on the SFU. Each cell: up to four
// real Chromium pages (camera + a WebAudio tone, simulcast as the SDK publishes), the rest of
// the room simulated by sfu-loadtest; per page uplink/downlink kbit/s (getStats transport bytes),
// CPU (its own Chromium's process tree, /proc), end-to-end audio latency (tone onsets), and the
// servers' CPU seconds per second; each beside the simple formula's prediction.
//
// Run through benches/topologies.sh (a network namespace of its own, plots). Directly:
//   unshare -n sh -c 'ip link set lo up && node benches/topologies.mjs OUT'
// Environment: TOPOLOGIES ("sfu cluster mesh mcu"), NS ("2 4 8 16 32 50"), TRANSPORTS ("udp ice-tcp
// turn-udp turn-tcp", at N = 4 on sfu), WINDOW (15 s), WARMUP (10 s), E2E_SFU_BIN, LOADTEST_BIN,
// MESH_SFU_BIN + MESH_WEB_DIR, MCU_SFU_BIN (+ MCU_WEB_DIR), CELL_TIMEOUT (s per cell, 300),
// TOPO_SERVER_ENV (extra server settings for every node, e.g. "SFU_RTC__BANDWIDTH_ESTIMATION=false"),
// TOPO_CHECK_DELAY_MS (the probe delays what it publishes by this much: the latency must grow by it),
// LOADTEST_WORKERS (sfu-loadtest media threads, 1: the browsers and the server need the other core).
// Writes OUT/results.json, OUT/results.csv and OUT/table.md (rows appended as cells finish).

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCell, stopRunningCell, MAX_PAGES } from './topologies/cell.mjs';
import { unavailable, transportUnavailable, SERVER_ENV } from './topologies/setups.mjs';
import { toCsv, toMarkdown } from './topologies/report.mjs';

const OUT = process.argv[2] ?? 'target/topologies';
const list = (v, d) => (v ?? d).split(/[\s,]+/).filter(Boolean);
const TOPOLOGIES = list(process.env.TOPOLOGIES, 'sfu cluster mesh mcu');
const NS = list(process.env.NS, '2 4 8 16 32 50').map(Number);
const TRANSPORTS = list(process.env.TRANSPORTS, 'udp ice-tcp turn-udp turn-tcp');
const WINDOW = Number(process.env.WINDOW ?? 15);
const WARMUP = Number(process.env.WARMUP ?? 10);
const CELL_TIMEOUT = Number(process.env.CELL_TIMEOUT ?? 300);

/** The cells to run: [{topology, transport, n}] and the rows skipped, with why. */
function plan() {
  const cells = [];
  const skipped = [];
  for (const topology of TOPOLOGIES) {
    const why = unavailable(topology);
    for (const n of NS) {
      if (topology === 'mesh' && n > MAX_PAGES) continue; // a mesh is Chromium pages only, at most 4
      if (why) skipped.push({ topology, transport: 'udp', n, why });
      else cells.push({ topology, transport: 'udp', n });
    }
  }
  if (TOPOLOGIES.includes('sfu')) {
    for (const transport of TRANSPORTS.filter((t) => t !== 'udp')) {
      const why = transportUnavailable(transport);
      if (why) skipped.push({ topology: 'sfu', transport, n: 4, why });
      else cells.push({ topology: 'sfu', transport, n: 4 });
    }
  }
  return { cells, skipped };
}

function withTimeout(promise, seconds, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: over ${seconds} s`)), seconds * 1000); }),
  ]);
}

mkdirSync(OUT, { recursive: true });
const { cells, skipped } = plan();
for (const s of skipped) console.log(`skip ${s.topology}/${s.transport} N=${s.n}: ${s.why}`);
const results = [];
const meta = { date: new Date().toISOString(), window_s: WINDOW, warmup_s: WARMUP, cpus: (await import('node:os')).cpus().length, server_env: SERVER_ENV, check_delay_ms: Number(process.env.TOPO_CHECK_DELAY_MS ?? 0), skipped };
const save = () => {
  writeFileSync(path.join(OUT, 'results.json'), JSON.stringify({ meta, results }, null, 1));
  writeFileSync(path.join(OUT, 'results.csv'), toCsv(results));
  writeFileSync(path.join(OUT, 'table.md'), toMarkdown(results, meta));
};
for (const cell of cells) {
  const label = `${cell.topology}/${cell.transport} N=${cell.n}`;
  console.log(`== ${label}`);
  try {
    const r = await withTimeout(runCell({ ...cell, windowS: WINDOW, warmupS: WARMUP }), CELL_TIMEOUT, label);
    results.push(r);
    const { per_page: _p, latencies_ms: _l, video_in: _v, ...brief } = r;
    console.log(JSON.stringify(brief));
  } catch (e) {
    console.log(`${label} failed: ${e.stack ?? e.message}`);
    results.push({ ...cell, error: e.message });
    await stopRunningCell(); // a cell over its time is still running: end it before the next starts
  }
  save();
}
save();
console.log(`results in ${OUT}/results.json, ${OUT}/results.csv, ${OUT}/table.md`);
// A cell that timed out may still hold timers or page handles: everything it started is stopped.
process.exit(0);

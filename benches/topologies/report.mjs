// The topology results as CSV and as the markdown table of docs/topologies.md.

const COLUMNS = ['topology', 'transport', 'n', 'pages', 'simulated', 'layer', 'window_s', 'up_kbps', 'up_pred_kbps',
  'down_kbps', 'down_pred_kbps', 'client_cpu_pct', 'server_cpu_s_per_s', 'latency_p50_ms', 'latency_p95_ms',
  'latency_samples', 'latency_expected', 'jitter_buffer_ms', 'error'];

export function toCsv(results) {
  const cell = (v) => (v === undefined || v === null ? '' : /[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
  return [COLUMNS.join(','), ...results.map((r) => COLUMNS.map((c) => cell(r[c])).join(','))].join('\n') + '\n';
}

const v = (x) => (x === null || x === undefined ? '-' : String(x));

/** "measured (predicted)". */
const pair = (m, p) => `${v(m)} (${v(p)})`;

export function toMarkdown(results, meta) {
  const lines = [];
  lines.push('| topology | N | pages + simulated | layer | uplink kbit/s (formula) | downlink kbit/s (formula) | client CPU % of a core | server CPU s/s | latency p50 / p95 ms (samples) | audio jitter buffer ms |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results.filter((x) => x.transport === 'udp')) {
    if (r.error) {
      lines.push(`| ${r.topology} | ${r.n} | | | failed: ${r.error.replace(/\|/g, '/').slice(0, 120)} | | | | | |`);
      continue;
    }
    lines.push(`| ${r.topology} | ${r.n} | ${r.pages} + ${r.simulated} | ${r.layer} | ${pair(r.up_kbps, r.up_pred_kbps)} | ${pair(r.down_kbps, r.down_pred_kbps)} | ` +
      `${v(r.client_cpu_pct)} | ${v(r.server_cpu_s_per_s)} | ${v(r.latency_p50_ms)} / ${v(r.latency_p95_ms)} (${r.latency_samples}/${r.latency_expected}) | ${v(r.jitter_buffer_ms)} |`);
  }
  // One line per topology not run, naming its room sizes.
  const notRun = new Map();
  for (const s of meta.skipped.filter((x) => x.transport === 'udp')) {
    if (!notRun.has(s.topology)) notRun.set(s.topology, { ns: [], why: s.why });
    notRun.get(s.topology).ns.push(s.n);
  }
  for (const [topology, { ns, why }] of notRun) lines.push(`| ${topology} | ${ns.join(', ')} | not run: ${why} | | | | | | | |`);
  const transports = results.filter((x) => x.n === 4 && x.topology === 'sfu');
  if (transports.length > 1) {
    lines.push('');
    lines.push('| transport (SFU, N = 4) | selected pairs (local) | uplink kbit/s (formula) | downlink kbit/s (formula) | client CPU % of a core | server CPU s/s | latency p50 / p95 ms (samples) | audio jitter buffer ms |');
    lines.push('|---|---|---|---|---|---|---|---|');
    for (const r of transports) {
      if (r.error) {
        lines.push(`| ${r.transport} | failed: ${r.error.replace(/\|/g, '/').slice(0, 120)} | | | | | | |`);
        continue;
      }
      const pairs = [...new Set(r.per_page.flatMap((p) => p.pairs.map((x) => `${x.type}/${x.protocol}${x.relayProtocol ? `/${x.relayProtocol}` : ''}`)))].join(', ');
      lines.push(`| ${r.transport} | ${pairs} | ${pair(r.up_kbps, r.up_pred_kbps)} | ${pair(r.down_kbps, r.down_pred_kbps)} | ${v(r.client_cpu_pct)} | ` +
        `${v(r.server_cpu_s_per_s)} | ${v(r.latency_p50_ms)} / ${v(r.latency_p95_ms)} (${r.latency_samples}/${r.latency_expected}) | ${v(r.jitter_buffer_ms)} |`);
    }
    for (const s of meta.skipped.filter((x) => x.transport !== 'udp')) lines.push(`| ${s.transport} | not run: ${s.why} | | | | | | |`);
  }
  return lines.join('\n') + '\n';
}

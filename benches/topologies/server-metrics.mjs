// The servers' own counters over the window, from /metrics: packets received and forwarded,
// packets dropped by reason, the transport's own losses (the kernel's receive drops, full
// forward queues, failed sends) and the uplink's (duplicates, NACKs given up, ingress limits hit),
// and PLIs sent to publishers, summed over the nodes, to say why a downlink falls short of its
// formula.

/** Counters read as plain sums: name in the output -> metric name. */
const SUMS = {
  received: 'sfu_received_packets_total',
  received_bytes: 'sfu_received_bytes_total',
  forwarded: 'sfu_forwarded_packets_total',
  forwarded_bytes: 'sfu_forwarded_bytes_total',
  kernel_receive_drops: 'sfu_udp_receive_drops_total',
  forward_queue_drops: 'sfu_forward_queue_drops_total',
  send_failures: 'sfu_udp_send_failures_total',
  uplink_duplicates: 'sfu_uplink_duplicates_total',
  uplink_nack_give_ups: 'sfu_uplink_nack_give_ups_total',
  ingress_limits_hit: 'sfu_ingress_limits_hit_total',
  plis_sent: 'sfu_pli_sent_total',
};

/** {<SUMS key>: n, dropped: {reason: count}} summed over `urls`; a node that does not answer counts nothing. */
export async function serverCounters(urls) {
  const out = { dropped: {} };
  for (const key of Object.keys(SUMS)) out[key] = 0;
  for (const url of urls) {
    let text = '';
    try {
      text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (line.startsWith('#')) continue;
      const value = Number(line.split(' ').pop());
      const name = line.split(/[{ ]/)[0];
      for (const [key, metric] of Object.entries(SUMS)) if (name === metric) out[key] += value;
      const m = /^sfu_dropped_packets_total\{.*reason="([^"]+)"/.exec(line);
      if (m) out.dropped[m[1]] = (out.dropped[m[1]] ?? 0) + value;
    }
  }
  return out;
}

/** Per second over the window: {forwarded_pps, received_pps, ..., dropped_pps: {reason: pps}} (zeros left out). */
export function countersRate(before, after, seconds) {
  const rate = (a, b) => Math.round((a - (b ?? 0)) / seconds);
  const out = {};
  for (const key of Object.keys(SUMS)) {
    const r = rate(after[key] ?? 0, before[key]);
    if (key.endsWith('_bytes')) out[`${key.replace(/_bytes$/, '')}_kbps`] = Math.round((r * 8) / 1000);
    else if (r > 0 || key === 'forwarded') out[`${key}_pps`] = r;
  }
  const dropped = {};
  for (const [reason, n] of Object.entries(after.dropped)) {
    const d = rate(n, before.dropped[reason]);
    if (d > 0) dropped[reason] = d;
  }
  out.dropped_pps = dropped;
  return out;
}

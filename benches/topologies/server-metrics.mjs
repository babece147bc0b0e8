// The servers' own counters over the window, from /metrics: packets forwarded and packets dropped
// by reason (summed over the nodes), to say why a downlink falls short of its formula.

/** {forwarded, dropped: {reason: count}} summed over `urls`; a node that does not answer counts nothing. */
export async function serverCounters(urls) {
  const out = { forwarded: 0, dropped: {} };
  for (const url of urls) {
    let text = '';
    try {
      text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      const value = Number(line.split(' ').pop());
      if (line.startsWith('sfu_forwarded_packets_total')) out.forwarded += value;
      const m = /^sfu_dropped_packets_total\{.*reason="([^"]+)"/.exec(line);
      if (m) out.dropped[m[1]] = (out.dropped[m[1]] ?? 0) + value;
    }
  }
  return out;
}

/** Per second over the window: {forwarded_pps, dropped_pps: {reason: pps}} (reasons that dropped nothing left out). */
export function countersRate(before, after, seconds) {
  const dropped = {};
  for (const [reason, n] of Object.entries(after.dropped)) {
    const d = n - (before.dropped[reason] ?? 0);
    if (d > 0) dropped[reason] = Math.round(d / seconds);
  }
  return { forwarded_pps: Math.round((after.forwarded - before.forwarded) / seconds), dropped_pps: dropped };
}

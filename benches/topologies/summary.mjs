// The figures of one cell from two snapshots of the pages' counters and /proc, and the value the
// simple formula predicts for each, with the stream rates read from the same run.

/** Audio above this many participants goes to each listener from the loudest few only (top-N defaults). */
const TOP_N_ABOVE = 12;
const TOP_N = 3;
/** What one simulated participant sends per layer and for audio, kbit/s (sfu-loadtest synth.rs, payload). */
const SIM_KBPS = { q: 150, h: 500, f: 1500, audio: 40 };
const RID_OF = { low: 'q', medium: 'h', high: 'f' };

const kbps = (bytes, ms) => (bytes * 8) / ms; // bytes per ms -> kbit/s
const round = (x, d = 0) => (x === null || Number.isNaN(x) ? null : +x.toFixed(d));
const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/** Per-page rates over the window: only connections open at both ends count. */
function pageRates(b, a) {
  const ms = a.t - b.t;
  const out = { up: 0, down: 0, outbound: {}, inAudio: 0, inVideo: 0, perPcUp: [], jbDelay: 0, jbEmitted: 0, pairs: [] };
  for (const pa of a.pcs) {
    const pb = b.pcs.find((x) => x.i === pa.i);
    if (!pb) continue;
    out.up += kbps(pa.sent - pb.sent, ms);
    out.down += kbps(pa.recv - pb.recv, ms);
    out.inAudio += kbps(pa.inbound.audio - pb.inbound.audio, ms);
    out.inVideo += kbps(pa.inbound.video - pb.inbound.video, ms);
    out.jbDelay += pa.jb.delay - pb.jb.delay;
    out.jbEmitted += pa.jb.emitted - pb.jb.emitted;
    if (pa.pair) out.pairs.push(pa.pair);
    let pcUp = 0;
    for (const [k, o] of Object.entries(pa.outbound)) {
      const ob = pb.outbound[k];
      if (!ob) continue;
      const r = kbps(o.bytes - ob.bytes, ms);
      pcUp += r;
      const key = o.kind === 'audio' ? 'audio' : (o.rid ?? 'video');
      out.outbound[key] = (out.outbound[key] ?? 0) + r;
    }
    if (pcUp > 1) out.perPcUp.push(pcUp);
  }
  return out;
}

/** Pairs each received onset with the latest sent one before it (within one burst period). */
function latencies(sendOnsets, received, periodMs) {
  const sends = [...sendOnsets].sort((x, y) => x - y);
  const out = [];
  for (const r of received) {
    let best = null;
    for (const s of sends) if (s <= r && r - s < periodMs) best = s;
    if (best !== null) out.push(r - best);
  }
  return out.sort((x, y) => x - y);
}

/** What the simple formulas predict, from this run's own stream rates. */
export function predict({ topology, n, pagesN, sims, layer, rates }) {
  const pageLayer = (rid) => mean(rates.map((r) => r.outbound[rid] ?? 0));
  const audio = mean(rates.map((r) => r.outbound.audio ?? 0));
  const rid = RID_OF[layer];
  if (topology === 'mesh') {
    // One stream (camera + microphone) per other peer each way; the stream as one connection carries it.
    const stream = mean(rates.flatMap((r) => r.perPcUp));
    return { up: (n - 1) * stream, down: (n - 1) * stream, stream };
  }
  const simulcast = ['q', 'h', 'f'].reduce((s, r) => s + (pageLayer(r) ?? 0), 0);
  const up = simulcast + audio;
  const video = (pagesN - 1) * pageLayer(rid) + sims * SIM_KBPS[rid];
  if (topology === 'mcu') return { up, down: video + audio, audio, layerKbps: pageLayer(rid) };
  // Audio: every other participant's, or above TOP_N_ABOVE only the loudest few (the pages speak;
  // the simulated participants send no audio level, so they never take a place).
  const audioDown = n > TOP_N_ABOVE
    ? Math.min(TOP_N, pagesN - 1) * audio
    : (pagesN - 1) * audio + sims * SIM_KBPS.audio;
  return { up, down: video + audioDown, audio, layerKbps: pageLayer(rid) };
}

export function summarize(c) {
  const { before, after } = c;
  const wallS = (after.wall - before.wall) / 1000;
  const rates = after.pages.map((a, i) => pageRates(before.pages[i], a));
  const cpuPct = after.cpuPages.map((s, i) => (100 * (s - before.cpuPages[i])) / wallS);
  const serverCpu = after.cpuServers.reduce((s, x, i) => s + x - before.cpuServers[i], 0) / wallS;
  // The probe's onsets, as each receiver saw them: on the probe's track (by identity), or on
  // whichever watched track carried them (the MCU's one mixed track).
  const receivedOnsets = c.received.map((tracks) => {
    const mine = tracks.filter((t) => t.label.startsWith('page-0') || !t.label.startsWith('page-'));
    return mine.flatMap((t) => t.onsets);
  });
  const lat = latencies(c.sendOnsets.map((o) => o.t), receivedOnsets.flat().map((o) => o.t), c.burstPeriodMs);
  // The same pairs stamped when the detector's message reached the page (a check of the mapping).
  const latAt = latencies(c.sendOnsets.map((o) => o.at), receivedOnsets.flat().map((o) => o.at), c.burstPeriodMs);
  const receivers = c.pagesN - 1;
  const pred = predict({ ...c, rates });
  const jb = rates.filter((r) => r.jbEmitted > 0).map((r) => (1000 * r.jbDelay) / r.jbEmitted);
  return {
    topology: c.topology, transport: c.transport, n: c.n, pages: c.pagesN, simulated: c.sims, layer: c.layer,
    window_s: round(wallS, 1),
    up_kbps: round(mean(rates.map((r) => r.up))),
    up_pred_kbps: round(pred.up),
    down_kbps: round(mean(rates.map((r) => r.down))),
    down_pred_kbps: round(pred.down),
    client_cpu_pct: round(mean(cpuPct), 1),
    server_cpu_s_per_s: round(serverCpu, 3),
    latency_p50_ms: round(percentile(lat, 0.5)),
    latency_p95_ms: round(percentile(lat, 0.95)),
    latency_samples: lat.length,
    latency_p50_by_arrival_ms: round(percentile(latAt, 0.5)),
    latency_expected: c.bursts * receivers,
    bursts_sent_seen: c.sendOnsets.length,
    jitter_buffer_ms: round(mean(jb)),
    stream_rates_kbps: {
      per_layer: Object.fromEntries(['q', 'h', 'f', 'audio'].map((k) => [k, round(mean(rates.map((r) => r.outbound[k] ?? 0)))])),
      mesh_stream: pred.stream ? round(pred.stream) : null,
      in_audio: round(mean(rates.map((r) => r.inAudio))),
      in_video: round(mean(rates.map((r) => r.inVideo))),
    },
    per_page: rates.map((r, i) => ({ up: round(r.up), down: round(r.down), cpu_pct: round(cpuPct[i], 1), pairs: r.pairs })),
    video_in: c.videoIn,
    server_packets: c.server,
    decoding_note: c.decodingNote,
    // The mesh SDK keeps a peer on the SFU when its mesh connection carries nothing: then simulcast layers go up.
    mesh_fallback_to_sfu: c.topology === 'mesh' ? rates.some((r) => (r.outbound.q ?? 0) + (r.outbound.h ?? 0) + (r.outbound.f ?? 0) > 5) : null,
    udp_dropped: c.udpDropped,
    latencies_ms: lat.map((x) => round(x)),
  };
}

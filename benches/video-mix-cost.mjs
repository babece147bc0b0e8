// What mixing video on the server would cost, from real encoder and decoder timings on this
// machine (docs/topologies.md, "Why video is never mixed"): Chromium's VP8 (libvpx) encodes a
// simulcast camera and decodes each layer, and getStats says how long each frame took.
//
// Run inside a fresh network namespace, after `cargo build --release`:
//   unshare -n sh -c 'ip link set lo up && node benches/video-mix-cost.mjs [seconds=15]'
// Prints, per layer, ms of CPU per encoded and per decoded frame, and what an MCU would spend per
// second on a room of N at 30 fps: decode every sender, encode one composed picture per layout.

import { startServer, poll, sleep } from '../tests/e2e/lib/server.mjs';
import { launchBrowser } from '../tests/e2e/lib/browser.mjs';

const seconds = Number(process.argv[2] ?? 15);
const LAYERS = { low: 320, medium: 640, high: 1280 };

/** The publisher's encoder totals per width: {width: {frames, seconds}}. */
function encoded(page) {
  return page.evaluate(async () => {
    const out = {};
    (await T.room('p').publisherPc.getStats()).forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video' && s.frameWidth) {
        out[s.frameWidth] = { frames: s.framesEncoded ?? 0, seconds: s.totalEncodeTime ?? 0 };
      }
    });
    return out;
  });
}

/** Subscriber `key`'s decoder totals: {width, frames, seconds}. */
function decoded(page, key) {
  return page.evaluate(async (k) => {
    let out = null;
    (await T.room(k).subscriberPc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video' && (s.framesDecoded ?? 0) > (out?.frames ?? -1)) {
        out = { width: s.frameWidth, frames: s.framesDecoded ?? 0, seconds: s.totalDecodeTime ?? 0 };
      }
    });
    return out;
  }, key);
}

const server = await startServer({ name: 'bench-video-mix', slot: 9 });
const browser = await launchBrowser('bench-video-mix');
try {
  const pub = await browser.openPage(server.httpUrl, 'pub');
  await pub.evaluate(() => T.join('p', { room: 'mix', identity: 'publisher', publish: true, options: { dynacast: false } }));
  const subs = await browser.openPage(server.httpUrl, 'subs');
  for (const layer of Object.keys(LAYERS)) {
    await subs.evaluate((l) => T.join(l, { room: 'mix', identity: `sub-${l}` }), layer);
  }
  for (const layer of Object.keys(LAYERS)) {
    const trackId = await poll(() => subs.evaluate((l) => T.tracks(l, 'video')[0]?.trackId, layer), { what: `${layer} subscribed` });
    await subs.evaluate(([l, id]) => T.room(l).setSubscription(id, { layer: l }), [layer, trackId]);
  }
  await poll(async () => {
    for (const [layer, width] of Object.entries(LAYERS)) {
      const d = await decoded(subs, layer);
      if (!d || d.width !== width || d.frames < 30) return false;
    }
    return true;
  }, { timeoutMs: 90_000, intervalMs: 1000, what: 'each subscriber decoding its layer' });

  const [e0, d0] = [await encoded(pub), Object.fromEntries(await Promise.all(Object.keys(LAYERS).map(async (l) => [l, await decoded(subs, l)])))];
  await sleep(seconds * 1000);
  const [e1, d1] = [await encoded(pub), Object.fromEntries(await Promise.all(Object.keys(LAYERS).map(async (l) => [l, await decoded(subs, l)])))];
  const perLayer = {};
  for (const [layer, width] of Object.entries(LAYERS)) {
    const ef = (e1[width]?.frames ?? 0) - (e0[width]?.frames ?? 0);
    const es = (e1[width]?.seconds ?? 0) - (e0[width]?.seconds ?? 0);
    const df = d1[layer].frames - d0[layer].frames;
    const ds = d1[layer].seconds - d0[layer].seconds;
    perLayer[layer] = {
      width, encoded_frames: ef, encode_ms_per_frame: +((es * 1000) / ef).toFixed(2),
      decoded_frames: df, decode_ms_per_frame: +((ds * 1000) / df).toFixed(2),
    };
  }
  // An MCU for a room of N at 30 fps, 720p: decode every sender's top layer, then encode the
  // composed picture once per layout (one shared layout: 1; everyone without themselves: N),
  // each as three simulcast layers for the receivers' bandwidths. Chromium's libvpx encodes the
  // three layers in one call and reports that call's time on each layer, so one simulcast frame
  // costs the largest of the three, not their sum. Compositing and scaling are left out (they
  // only add).
  const high = perLayer.high;
  const encodeAll = Math.max(perLayer.low.encode_ms_per_frame, perLayer.medium.encode_ms_per_frame, high.encode_ms_per_frame);
  const mcu = [4, 8, 16, 50].map((n) => ({
    participants: n,
    cores_shared_layout: +((30 * (n * high.decode_ms_per_frame + encodeAll)) / 1000).toFixed(2),
    cores_per_viewer_layouts: +((30 * (n * high.decode_ms_per_frame + n * encodeAll)) / 1000).toFixed(2),
  }));
  console.log(JSON.stringify({ seconds, per_layer: perLayer, simulcast_frame_encode_ms: encodeAll, mcu_cores_at_30fps: mcu }, null, 1));
} finally {
  await browser.close();
  await server.stop();
}

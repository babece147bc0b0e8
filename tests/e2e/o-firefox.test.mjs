// Firefox ESR and Chromium in one room through the SDK, each way: Firefox publishes simulcast
// (its SDP signals SSRCs and rids, unlike Chromium's) and Chromium decodes it on the low and the
// high layer; Chromium publishes and Firefox decodes, on the low and a higher layer.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  useServerAndBrowser, waitForTracks, waitDecoding, waitRising, waitPublisherLayers,
} from './lib/harness.mjs';
import { poll } from './lib/server.mjs';
import { launchFirefox, ensureLoopbackDefaultRoute } from './lib/firefox.mjs';

const ctx = useServerAndBrowser('o-firefox', 15);
let firefox = null;
let undoRoute = () => {};

before(async () => {
  undoRoute = ensureLoopbackDefaultRoute();
  firefox = await launchFirefox('o-firefox');
});
after(async () => {
  await firefox?.close();
  undoRoute();
});

const foxPage = (label) => firefox.openPage(ctx.server.httpUrl, label);

/**
 * Joins `key` in `page` as a subscriber and times (page clock) its first decoded video frame:
 * `ms` after the join began, `afterConnectedMs` after its subscriber connection connected.
 */
async function joinAndTimeFirstFrame(page, key, room, identity) {
  const first = await page.evaluate(async ([k, r, id]) => {
    const { t0 } = await T.join(k, { room: r, identity: id });
    const f = await T.firstFrame(k, 60_000);
    if (!f) return null;
    return { ms: f.tFrame - t0, afterConnectedMs: f.tConnected === null ? null : f.tFrame - f.tConnected, width: f.width };
  }, [key, room, identity]);
  assert.ok(first, `${identity} decoded no video frame within 60 s`);
  return first;
}

const describeFirst = (f) => `first frame ${Math.round(f.ms)} ms after the subscriber joined, ` +
  `${f.afterConnectedMs === null ? '?' : Math.round(f.afterConnectedMs)} ms after its connection connected ` +
  `(width ${f.width})`;

async function waitWidth(page, key, trackId, accept, what) {
  return poll(async () => {
    const s = await page.evaluate(([k, id]) => T.stats(k, 'video', id), [key, trackId]);
    return s && accept(s.frameWidth) && s;
  }, { timeoutMs: 30_000, intervalMs: 100, what });
}

test('Firefox publishes simulcast, Chromium decodes the low and the high layer', { timeout: 300_000 }, async () => {
  const room = 'fox-publishes';
  const pub = await foxPage('fox-pub');
  const published = Date.now();
  await pub.evaluate((r) => T.join('p', { room: r, identity: 'fox', publish: true }), room);
  const sub = await ctx.page('chromium-sub');
  const first = await joinAndTimeFirstFrame(sub, 's', room, 'chromium');
  console.log(`Firefox -> Chromium: ${describeFirst(first)}`);

  const [video] = await waitForTracks(sub, 's', ['video']).then((ts) => ts.filter((t) => t.kind === 'video'));
  await waitRising(sub, 's', { more: 20, trackId: video.trackId });

  // Firefox's own bandwidth estimate decides when it sends its top layer (1 to 31 s in, on this
  // machine): when it does, 'high' must give 1280; until then, the largest layer it sends.
  const layersMs = await waitPublisherLayers(pub, 'p').then(() => Date.now() - published, (e) => {
    console.log(`Firefox is not encoding all three layers: ${e.message}`);
    return null;
  });
  if (layersMs !== null) console.log(`Firefox encodes all three layers ${layersMs} ms after it began to publish`);

  const widths = new Set();
  await sub.evaluate((id) => T.room('s').setSubscription(id, { layer: 'low' }), video.trackId);
  const low = await waitWidth(sub, 's', video.trackId, (w) => w === 320, "width 320 on the 'low' layer");
  widths.add(low.frameWidth);
  await waitDecoding(sub, 's', { frames: low.framesDecoded + 10, trackId: video.trackId });

  const t0 = Date.now();
  await sub.evaluate((id) => T.room('s').setSubscription(id, { layer: 'high' }), video.trackId);
  const high = layersMs === null
    ? await waitWidth(sub, 's', video.trackId, (w) => w > 320, "a width over 320 on the 'high' layer")
    : await waitWidth(sub, 's', video.trackId, (w) => w === 1280, "width 1280 on the 'high' layer");
  widths.add(high.frameWidth);
  const highMs = Date.now() - t0;
  console.log(`Chromium saw widths ${[...widths].join(', ')}; 'high' gave ${high.frameWidth} after ${highMs} ms`);
  await waitDecoding(sub, 's', { frames: high.framesDecoded + 20, trackId: video.trackId });

  assert.ok(widths.size >= 2, `one layer only: ${[...widths]}`);
  assert.deepEqual(await sub.evaluate(() => T.events('s', 'error')), []);
  assert.deepEqual(await pub.evaluate(() => T.events('p', 'error')), []);
  await pub.close();
  await sub.close();
});

test('Chromium publishes, Firefox decodes, also across a layer switch', { timeout: 240_000 }, async () => {
  const room = 'fox-subscribes';
  const pub = await ctx.page('chromium-pub');
  await pub.evaluate((r) => T.join('p', { room: r, identity: 'chromium', publish: true }), room);
  const sub = await foxPage('fox-sub');
  const first = await joinAndTimeFirstFrame(sub, 's', room, 'fox');
  console.log(`Chromium -> Firefox: ${describeFirst(first)}`);

  const rising = await waitRising(sub, 's', { more: 30 });
  assert.ok(rising.frameWidth > 0, `no frame size in Firefox's stats: ${JSON.stringify(rising)}`);

  // A layer switch changes the stream Firefox's decoder is fed (SSRC, sequence numbers and
  // timestamps rewritten by the server): it must keep decoding across it.
  const [video] = (await waitForTracks(sub, 's', ['video'])).filter((t) => t.kind === 'video');
  const widths = new Set([rising.frameWidth]);
  for (const [layer, accept] of [['low', (w) => w === 320], ['high', (w) => w > 320]]) {
    const t0 = Date.now();
    await sub.evaluate(([id, l]) => T.room('s').setSubscription(id, { layer: l }), [video.trackId, layer]);
    const s = await waitWidth(sub, 's', video.trackId, accept, `Firefox: a matching width on the '${layer}' layer`);
    const ms = Date.now() - t0;
    await waitDecoding(sub, 's', { frames: s.framesDecoded + 10, trackId: video.trackId });
    widths.add(s.frameWidth);
    console.log(`Firefox on '${layer}': ${s.frameWidth}x${s.frameHeight} after ${ms} ms`);
  }
  assert.ok(widths.size >= 2, `one layer only: ${[...widths]}`);
  assert.deepEqual(await sub.evaluate(() => T.events('s', 'error')), []);
  assert.deepEqual(await pub.evaluate(() => T.events('p', 'error')), []);
  await pub.close();
  await sub.close();
});

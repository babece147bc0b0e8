// Dynacast: the publisher encodes only the simulcast layers some subscriber asks for. A subscriber
// that wants the low layer makes the publisher stop its medium and high encodings (after the
// server's pause delay); asking for high turns them back on at once; pausing the track stops
// every layer, and un-pausing brings the picture back.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser, openPublisherAndSubscriber, publisherEncodings } from './lib/harness.mjs';
import { poll, sleep } from './lib/server.mjs';

const ctx = useServerAndBrowser('l-dynacast', 12);
const ROOM = 'dynacast';

const encodings = (page) => publisherEncodings(page, 'p');

/** Bytes sent so far per simulcast rid. */
async function bytesByRid(page) {
  return page.evaluate(async () => {
    const out = {};
    (await T.room('p').publisherPc.getStats()).forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video') out[s.rid] = s.bytesSent;
    });
    return out;
  });
}

async function waitEncodings(page, want, what, timeoutMs = 20_000) {
  const t0 = Date.now();
  let last = null;
  try {
    await poll(async () => {
      last = await encodings(page);
      return Object.entries(want).every(([rid, active]) => last[rid] === active);
    }, { timeoutMs, intervalMs: 100, what });
  } catch (e) {
    e.message += `; encodings ${JSON.stringify(last)}`;
    throw e;
  }
  return Date.now() - t0;
}

async function waitWidth(page, width, what, timeoutMs = 30_000) {
  const t0 = Date.now();
  await poll(async () => {
    const s = await page.evaluate(() => T.stats('s', 'video'));
    return s && s.frameWidth === width;
  }, { timeoutMs, intervalMs: 100, what });
  return Date.now() - t0;
}

test('dynacast: publishers encode only the layers subscribers ask for', { timeout: 240_000 }, async () => {
  const { pub, sub, video } = await openPublisherAndSubscriber(ctx, ROOM);
  assert.deepEqual(await encodings(pub), { q: true, h: true, f: true }, 'a subscriber on auto wants every layer');

  // Low only: medium and high stop after the pause delay (3 s), not before.
  let t0 = Date.now();
  await sub.evaluate((id) => T.room('s').setSubscription(id, { layer: 'low' }), video.trackId);
  await waitWidth(sub, 320, 'subscriber on 320 after asking for low');
  await sleep(Math.max(0, 2000 - (Date.now() - t0)));
  assert.deepEqual(await encodings(pub), { q: true, h: true, f: true }, 'layers are not paused within 2 s');
  await waitEncodings(pub, { q: true, h: false, f: false }, 'medium and high paused');
  const pausedMs = Date.now() - t0;
  const before = await bytesByRid(pub);
  await sleep(1500);
  const after = await bytesByRid(pub);
  console.log(`low only: medium+high paused ${pausedMs} ms after the request; bytes sent in 1.5 s: ` +
    ['q', 'h', 'f'].map((rid) => `${rid}=${(after[rid] ?? 0) - (before[rid] ?? 0)}`).join(' '));
  assert.ok(after.q > before.q, 'the low layer keeps flowing');
  // A frame or two may still leave the encoder right after the switch; far less than a layer's flow.
  assert.ok((after.f ?? 0) - (before.f ?? 0) < 20_000, `high layer still sending: ${JSON.stringify({ before, after })}`);
  const lowStats = await sub.evaluate(() => T.stats('s', 'video'));
  assert.equal(lowStats.frameWidth, 320);

  // High again: the layers come back at once and the subscriber climbs to 1280.
  t0 = Date.now();
  await sub.evaluate((id) => T.room('s').setSubscription(id, { layer: 'high' }), video.trackId);
  const resumedMs = await waitEncodings(pub, { q: true, h: true, f: true }, 'layers resumed', 5_000);
  const highMs = await waitWidth(sub, 1280, 'subscriber back on 1280 after asking for high');
  console.log(`high: layers resumed after ${resumedMs} ms, subscriber at 1280 after ${Date.now() - t0} ms (wait ${highMs} ms)`);

  // Paused by its only subscriber: nothing is encoded; un-paused, the picture returns.
  t0 = Date.now();
  await sub.evaluate((id) => T.room('s').setSubscription(id, { paused: true }), video.trackId);
  await waitEncodings(pub, { q: false, h: false, f: false }, 'every layer paused');
  console.log(`subscriber paused: every layer paused after ${Date.now() - t0} ms`);
  const frames = (await sub.evaluate(() => T.stats('s', 'video'))).framesDecoded;
  t0 = Date.now();
  await sub.evaluate((id) => T.room('s').setSubscription(id, { layer: 'auto' }), video.trackId);
  await waitEncodings(pub, { q: true, h: true, f: true }, 'layers back after un-pausing', 5_000);
  await poll(async () => (await sub.evaluate(() => T.stats('s', 'video'))).framesDecoded > frames + 10,
    { timeoutMs: 15_000, intervalMs: 100, what: 'decoding again after un-pausing' });
  console.log(`un-paused: decoding again after ${Date.now() - t0} ms`);

  const events = await pub.evaluate(() => T.events('p', 'publisherLayers'));
  assert.ok(events.length >= 4, `publisherLayers events: ${events.length}`);
  const metrics = await (await fetch(`${ctx.server.httpUrl}/metrics`)).text();
  const changes = metrics.split('\n').filter((l) => l.startsWith('sfu_dynacast_changes_total'))
    .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
  assert.ok(changes >= 4, `sfu_dynacast_changes_total = ${changes}`);
  assert.deepEqual(await sub.evaluate(() => T.events('s', 'error')), []);
  assert.deepEqual(await pub.evaluate(() => T.events('p', 'error')), []);
});

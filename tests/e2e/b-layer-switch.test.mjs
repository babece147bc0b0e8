// A subscriber picks low / medium / high and gets 320 / 640 / 1280 pixels wide; the video never stalls
// for more than a second across the switches.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser, openPublisherAndSubscriber, longestStall } from './lib/harness.mjs';
import { poll, sleep } from './lib/server.mjs';

const ctx = useServerAndBrowser('b-layer-switch', 2);
const ROOM = 'layers';
const WIDTH = { low: 320, medium: 640, high: 1280 };

test('layer switches: low/medium/high give 320/640/1280 with no stall', { timeout: 240_000 }, async () => {
  const { pub, sub, video, layersMs } = await openPublisherAndSubscriber(ctx, ROOM);
  console.log(`publisher encodes all three layers ${layersMs} ms after the subscriber's first frames`);

  await sub.evaluate((id) => T.startSampler('s', id, 200), video.trackId);
  const sampleStart = Date.now();
  const timings = [];
  for (const layer of ['low', 'medium', 'high', 'low']) {
    const t0 = Date.now();
    await sub.evaluate(([id, l]) => T.room('s').setSubscription(id, { layer: l }), [video.trackId, layer]);
    const s = await poll(async () => {
      const st = await sub.evaluate(() => T.stats('s', 'video'));
      return st && st.frameWidth === WIDTH[layer] && st;
    }, { timeoutMs: 25_000, intervalMs: 100, what: `frameWidth ${WIDTH[layer]} after asking for '${layer}'` });
    const ms = Date.now() - t0;
    timings.push({ layer, ms });
    console.log(`switch to ${layer}: ${s.frameWidth}x${s.frameHeight} after ${ms} ms`);
    await sleep(1000); // let it run on this layer
  }
  const samples = await sub.evaluate(() => T.stopSampler('s'));
  assert.ok(samples.length >= ((Date.now() - sampleStart) / 200) * 0.5, `too few samples: ${samples.length}`);

  const stall = longestStall(samples);
  const maxGap = stall.ms;
  console.log(`${samples.length} samples, longest time without a new frame: ${Math.round(maxGap)} ms` +
    (stall.at ? ` (ending at sample ${stall.at}, width ${samples[stall.at].frameWidth})` : ''));
  console.log(`switch times: ${timings.map((t) => `${t.layer}=${t.ms}ms`).join(' ')}`);
  assert.ok(maxGap <= 1000, `video stalled for ${Math.round(maxGap)} ms`);
  assert.deepEqual(await sub.evaluate(() => T.events('s', 'error')), []);
});

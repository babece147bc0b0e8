// Adaptive stream: the subscriber's SDK reports the size its <video> element is shown at. A small
// tile gets the small layer and, being the only viewer, makes the publisher stop encoding the
// larger ones (dynacast); a large tile gets 1280 wide and every layer back; a hidden tile gets
// nothing, and decodes again once shown.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser, openPublisherAndSubscriber, publisherEncodings } from './lib/harness.mjs';
import { poll } from './lib/server.mjs';

const ctx = useServerAndBrowser('n-adaptive-stream', 14);
const ROOM = 'adaptive';

/** Which of the publisher's layers (q, h, f) are encoded, lowest first. */
const encodings = async (page) => Object.values(await publisherEncodings(page, 'p'));

async function waitFor(page, check, what, timeoutMs = 20_000) {
  const t0 = Date.now();
  await poll(check, { timeoutMs, intervalMs: 100, what });
  return Date.now() - t0;
}

const width = async (page) => (await page.evaluate(() => T.stats('s', 'video')))?.frameWidth;

test('adaptive stream: the tile size picks the layer, and a hidden tile gets nothing', { timeout: 240_000 }, async () => {
  const { pub, sub, video } = await openPublisherAndSubscriber(ctx, ROOM);

  // A 320x180 tile: the 320 layer, and the publisher stops the two larger ones.
  await sub.evaluate((id) => T.attachVideo('s', id, 320, 180), video.trackId);
  const smallMs = await waitFor(sub, async () => (await width(sub)) === 320, 'a 320x180 tile gets 320 wide');
  const pausedMs = await waitFor(pub, async () => JSON.stringify(await encodings(pub)) === '[true,false,false]',
    'publisher encodes only the low layer');
  console.log(`320x180 tile: 320 wide after ${smallMs} ms; medium and high paused ${pausedMs} ms later`);

  // Grown to 1280x720: every layer again, and the top one.
  await sub.evaluate(() => T.resizeVideo('s', 1280, 720));
  const bigMs = await waitFor(sub, async () => (await width(sub)) === 1280, 'a 1280x720 tile gets 1280 wide', 30_000);
  assert.deepEqual(await encodings(pub), [true, true, true]);
  console.log(`1280x720 tile: 1280 wide after ${bigMs} ms`);

  // 700x394 needs more than 640 but less than 1280: the server sends no more than it needs.
  await sub.evaluate(() => T.resizeVideo('s', 700, 394));
  const midMs = await waitFor(sub, async () => (await width(sub)) === 640, 'a 700x394 tile gets 640 wide');
  console.log(`700x394 tile: 640 wide after ${midMs} ms`);

  // Hidden: nothing is decoded and, after the dynacast delay, nothing is encoded.
  await sub.evaluate(() => T.setVideoShown('s', false));
  const hiddenMs = await waitFor(pub, async () => JSON.stringify(await encodings(pub)) === '[false,false,false]',
    'publisher encodes nothing for a hidden tile');
  const frames = (await sub.evaluate(() => T.stats('s', 'video'))).framesDecoded;
  await new Promise((r) => setTimeout(r, 1000));
  const still = (await sub.evaluate(() => T.stats('s', 'video'))).framesDecoded;
  assert.ok(still - frames <= 2, `a hidden tile keeps decoding: ${frames} -> ${still}`);
  console.log(`hidden tile: publisher stopped every layer ${hiddenMs} ms after hiding`);

  // Shown again: decoding resumes.
  await sub.evaluate(() => T.setVideoShown('s', true));
  const shownMs = await waitFor(sub, async () => (await sub.evaluate(() => T.stats('s', 'video'))).framesDecoded > still + 10,
    'decoding again once shown');
  console.log(`shown again: decoding after ${shownMs} ms at ${await width(sub)} wide`);
  assert.deepEqual(await sub.evaluate(() => T.events('s', 'error')), []);
});

// One publisher (simulcast video + audio), four subscribers in separate pages: every subscriber
// decodes the video and receives the audio. Two subscribers are in the room before the publisher
// arrives, two join after it publishes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser, waitForTracks, waitRising } from './lib/harness.mjs';
import { poll } from './lib/server.mjs';

const ctx = useServerAndBrowser('a-fanout', 1);
const ROOM = 'fanout';

test('one publisher, four subscribers: all decode video and receive audio', { timeout: 240_000 }, async () => {
  const subs = [];
  for (const i of [1, 2]) {
    const page = await ctx.page(`sub${i}`);
    await page.evaluate(([room, id]) => T.join('s', { room, identity: id }), [ROOM, `sub${i}`]);
    subs.push(page);
  }
  const pub = await ctx.page('pub');
  const alice = await pub.evaluate((room) => T.join('p', { room, identity: 'alice', publish: true }), ROOM);
  for (const i of [3, 4]) {
    const page = await ctx.page(`sub${i}`);
    const joined = await page.evaluate(([room, id]) => T.join('s', { room, identity: id }), [ROOM, `sub${i}`]);
    assert.ok(joined.others.includes('alice'), `sub${i} sees alice in 'joined': ${JSON.stringify(joined.others)}`);
    subs.push(page);
  }
  await poll(async () => (await pub.evaluate(() => T.pcState('p'))).publisher.connectionState === 'connected',
    { timeoutMs: 30_000, what: 'publisher pc connected' });

  for (const [i, page] of subs.entries()) {
    const tracks = await waitForTracks(page, 's', ['video', 'audio'], 45_000);
    for (const t of tracks) assert.equal(t.participantId, alice.participantId, `sub${i + 1}: track of alice`);
  }
  for (const [i, page] of subs.entries()) {
    const v = await waitRising(page, 's', { more: 30, timeoutMs: 45_000 });
    // By now the participant is known, whatever order its events came in.
    for (const t of await page.evaluate(() => T.tracks('s'))) assert.equal(t.identity, 'alice', `sub${i + 1}`);
    const audio = await poll(async () => {
      const a = await page.evaluate(() => T.stats('s', 'audio'));
      return a && a.packetsReceived > 0 && a;
    }, { timeoutMs: 30_000, what: `sub${i + 1}: audio packets` });
    const audio2 = await poll(async () => {
      const a = await page.evaluate(() => T.stats('s', 'audio'));
      return a && a.packetsReceived > audio.packetsReceived && a;
    }, { timeoutMs: 15_000, what: `sub${i + 1}: audio packets rising` });
    console.log(`sub${i + 1}: video ${v.frameWidth}x${v.frameHeight} framesDecoded=${v.framesDecoded};` +
      ` audio packetsReceived=${audio2.packetsReceived}`);
  }
  for (const page of [pub, ...subs]) {
    const errors = await page.evaluate(() => Object.keys(T.logs).flatMap((k) => T.events(k, 'error')));
    assert.deepEqual(errors, []);
  }
});

// A participant joining a room where video is already flowing decodes its first frame soon after its
// subscriber connection is up (the server asks the publisher for a keyframe as soon as it is).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser, waitForTracks, waitRising } from './lib/harness.mjs';
import { poll, sleep } from './lib/server.mjs';

const ctx = useServerAndBrowser('c-late-joiner', 3);
const ROOM = 'late';

test('late joiners decode their first frame within 5 s of connecting', { timeout: 240_000 }, async () => {
  const pub = await ctx.page('pub');
  await pub.evaluate((room) => T.join('p', { room, identity: 'alice', publish: true }), ROOM);
  // An early subscriber proves that media flows before the late ones arrive.
  const early = await ctx.page('early');
  await early.evaluate((room) => T.join('s', { room, identity: 'early' }), ROOM);
  await waitForTracks(early, 's', ['video']);
  await waitRising(early, 's', { more: 30 });
  await sleep(3000); // well past the publisher's first keyframes

  const late = await ctx.page('late');
  const connectedToFrames = [];
  for (const i of [1, 2, 3]) {
    const key = `late${i}`;
    const joined = await late.evaluate(([room, k]) => T.join(k, { room, identity: k }), [ROOM, key]);
    const r = await late.evaluate((k) => T.firstFrame(k, 30_000), key);
    assert.ok(r, `${key}: no frame decoded within 30 s`);
    assert.ok(r.tConnected !== null, `${key}: subscriber pc never reported 'connected'`);
    const connectedToFrame = r.tFrame - r.tConnected;
    const joinToFrame = r.tFrame - joined.t0;
    console.log(`${key}: join ${Math.round(joined.joinMs)} ms; subscriber connected -> first frame ` +
      `${Math.round(connectedToFrame)} ms; join -> first frame ${Math.round(joinToFrame)} ms (${r.width}px)`);
    assert.ok(connectedToFrame < 5000, `${key}: first frame ${Math.round(connectedToFrame)} ms after connecting`);
    connectedToFrames.push(connectedToFrame);
    await late.evaluate((k) => T.room(k).leave(), key);
    await poll(async () => (await pub.evaluate((k) => T.events('p', 'participantLeft').some((e) => e.identity === k), key)),
      { timeoutMs: 10_000, what: `publisher sees ${key} leave` });
  }
  // A joiner starts on a layer the publisher is sending. If it waited for one the publisher
  // does not send (the headless publisher here often sends no top layer), it would see its
  // first frame only once that layer counted as silent, 1.5 s after connecting.
  const median = [...connectedToFrames].sort((a, b) => a - b)[1];
  assert.ok(median < 1200, `median late joiner: first frame ${Math.round(median)} ms after connecting`);
});

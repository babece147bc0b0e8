// WHIP and WHEP sessions that end badly: a publisher posting again with the same identity
// replaces its first session without losing the room, and a WHEP viewer whose connection never
// comes up is removed, closing the room it was the last one in.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser, waitForTracks } from './lib/harness.mjs';
import { poll } from './lib/server.mjs';

const ctx = useServerAndBrowser('v-whip-whep-sessions', 22);

async function metric(name) {
  const text = await (await fetch(`${ctx.server.httpUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(/\s+/).pop()) : 0;
}

test('a WHIP re-POST with the same identity replaces the session: it plays and deletes, the first is gone',
  { timeout: 120_000 }, async () => {
    const room = 'repost';
    const page = await ctx.page('whip');
    const token = await ctx.server.token(room, 'again');
    const first = await page.evaluate(([r, t]) => T.whipPublish('first', { room: r, token: t }), [room, token]);
    assert.equal(first.status, 201, JSON.stringify(first));
    const second = await page.evaluate(([r, t]) => T.whipPublish('second', { room: r, token: t }), [room, token]);
    assert.equal(second.status, 201, JSON.stringify(second));
    assert.notEqual(first.location, second.location, 'the second POST is a new session');
    await poll(async () => (await page.evaluate(() => T.rawState('second'))).connectionState === 'connected',
      { timeoutMs: 30_000, what: 'second WHIP pc connected' });

    // The room is the one the second session is in: an SDK client sees one "again", with media.
    const viewer = await ctx.page('viewer');
    await viewer.evaluate((r) => T.join('v', { room: r, identity: 'viewer' }), room);
    const tracks = await waitForTracks(viewer, 'v', ['video', 'audio'], 30_000);
    assert.ok(tracks.every((t) => t.identity === 'again'), JSON.stringify(tracks));

    // WHEP plays the replacing session.
    const whepToken = await ctx.server.token(room, 'whep');
    const play = await page.evaluate(([r, t]) => T.whepPlay('play', { room: r, publisher: 'again', token: t }),
      [room, whepToken]);
    assert.equal(play.status, 201, `WHEP POST: ${JSON.stringify(play)}`);
    await poll(async () => ((await page.evaluate(() => T.rawStats('play', 'video')))?.framesDecoded ?? 0) > 0,
      { timeoutMs: 30_000, what: 'WHEP frames decoded' });
    assert.equal(await page.evaluate((t) => T.rawDelete('play', t), whepToken), 200);

    // The replaced session's resource is gone; the replacing one deletes.
    assert.equal(await page.evaluate((t) => T.rawDelete('first', t), token), 404, 'the first session is gone');
    assert.equal(await page.evaluate((t) => T.rawDelete('second', t), token), 200);
    await poll(() => viewer.evaluate(() => T.events('v', 'participantLeft').some((e) => e.identity === 'again')),
      { timeoutMs: 15_000, what: 'viewer sees "again" leave' });
  });

test('a WHEP viewer that never connects is removed once its consent lapses, and its room closes',
  { timeout: 120_000 }, async () => {
    const room = 'ghost';
    const others = await metric('sfu_rooms'); // rooms the test before left open
    const page = await ctx.page('ghost');
    const token = await ctx.server.token(room, 'pub');
    const pub = await page.evaluate(([r, t]) => T.whipPublish('pub', { room: r, token: t }), [room, token]);
    assert.equal(pub.status, 201, JSON.stringify(pub));
    const whepToken = await ctx.server.token(room, 'ghost-viewer');
    const play = await page.evaluate(([r, t]) => T.whepPlay('ghost', { room: r, publisher: 'pub', token: t, connect: false }),
      [room, whepToken]);
    assert.equal(play.status, 201, `WHEP POST: ${JSON.stringify(play)}`);
    // The publisher leaves: only the viewer that never connected holds the room.
    assert.equal(await page.evaluate((t) => T.rawDelete('pub', t), token), 200);
    const rooms = await metric('sfu_rooms');
    assert.equal(rooms, others + 1, 'the viewer keeps its room for now');
    const t0 = Date.now();
    // Consent lapses 30 s after the connection was made (RFC 7675): then the viewer is removed.
    await poll(async () => (await metric('sfu_rooms')) === others, { timeoutMs: 60_000, intervalMs: 1000,
      what: 'the ghost viewer removed and its room closed' });
    console.log(`ghost viewer's room closed ${Date.now() - t0} ms after its publisher left`);
    assert.equal(await page.evaluate((t) => T.rawDelete('ghost', t), whepToken), 404, 'the viewer session is gone');
  });

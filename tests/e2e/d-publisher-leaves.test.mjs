// The publisher leaves: each subscriber is told (participant_left, track_unpublished), its subscriber
// pc is renegotiated back to 'stable' with the old media sections inactive or gone, and nothing errs.
// A new publisher afterwards is received on the same subscriber pcs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser, waitForTracks, waitRising } from './lib/harness.mjs';
import { poll } from './lib/server.mjs';

const ctx = useServerAndBrowser('d-publisher-leaves', 4);
const ROOM = 'leaving';

test('publisher leaves: subscribers renegotiate cleanly', { timeout: 240_000 }, async () => {
  const pub = await ctx.page('pub');
  const alice = await pub.evaluate((room) => T.join('p', { room, identity: 'alice', publish: true }), ROOM);
  const subs = [];
  for (const name of ['bob', 'carol']) {
    const page = await ctx.page(name);
    await page.evaluate(([room, id]) => T.join('s', { room, identity: id }), [ROOM, name]);
    subs.push(page);
  }
  const before = [];
  for (const page of subs) {
    const tracks = await waitForTracks(page, 's', ['video', 'audio']);
    await waitRising(page, 's', { more: 10 });
    const offers = (await page.evaluate(() => T.messages('s', 'offer'))).length;
    before.push({ tracks, offers });
  }

  await pub.evaluate(() => T.room('p').leave());
  const gone = await pub.evaluate(() => T.events('p', 'disconnected'));
  assert.equal(gone[0]?.reason, 'left');

  for (const [i, page] of subs.entries()) {
    const { tracks, offers } = before[i];
    const trackIds = tracks.map((t) => t.trackId).sort();
    const mids = tracks.map((t) => t.mid);
    const left = await poll(() => page.evaluate(() => T.messages('s', 'participant_left')[0]),
      { timeoutMs: 15_000, what: 'participant_left' });
    assert.equal(left.participant_id, alice.participantId);
    assert.equal(left.identity, 'alice');
    assert.equal(left.reason, 'left');
    const unpublished = await poll(async () => {
      const m = await page.evaluate(() => T.messages('s', 'track_unpublished'));
      return m.length >= trackIds.length && m;
    }, { timeoutMs: 15_000, what: 'track_unpublished for both tracks' });
    assert.deepEqual(unpublished.map((m) => m.track_id).sort(), trackIds);
    assert.ok(unpublished.every((m) => m.participant_id === alice.participantId));

    const unsubscribed = await poll(async () => {
      const e = await page.evaluate(() => T.events('s', 'trackUnsubscribed'));
      return e.length >= trackIds.length && e;
    }, { timeoutMs: 15_000, what: 'trackUnsubscribed for both tracks' });
    assert.deepEqual(unsubscribed.map((e) => e.trackId).sort(), trackIds);

    const state = await poll(async () => {
      const n = (await page.evaluate(() => T.messages('s', 'offer'))).length;
      const s = await page.evaluate(() => T.pcState('s'));
      return n > offers && s.subscriber.signalingState === 'stable' && s;
    }, { timeoutMs: 15_000, what: 'a new subscriber offer, answered (signalingState stable)' });
    for (const mid of mids) {
      const tr = state.subscriber.transceivers.find((t) => t.mid === mid);
      assert.ok(!tr || tr.stopped || ['inactive', 'stopped'].includes(tr.currentDirection),
        `transceiver ${mid} still receiving: ${JSON.stringify(tr)}`);
    }
    assert.notEqual(state.subscriber.connectionState, 'failed');
    assert.equal(await page.evaluate((id) => T.room('s').participants.has(id), alice.participantId), false);
    assert.deepEqual(await page.evaluate(() => T.events('s', 'error')), []);
  }

  // Someone else publishes: the same subscriber pcs receive it.
  const pub2 = await ctx.page('pub2');
  const dave = await pub2.evaluate((room) => T.join('p', { room, identity: 'dave', publish: true }), ROOM);
  for (const page of subs) {
    await poll(async () => {
      const t = await page.evaluate(() => T.tracks('s', 'video'));
      return t.some((x) => x.participantId === dave.participantId);
    }, { timeoutMs: 30_000, what: 'dave\'s video subscribed' });
    await waitRising(page, 's', { more: 10 });
    assert.deepEqual(await page.evaluate(() => T.events('s', 'error')), []);
  }
});

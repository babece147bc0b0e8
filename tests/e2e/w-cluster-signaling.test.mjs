// A room across three nodes (docs/cluster.md, "Test plan" a and f, signaling): SDK pages on
// nodes A, B and C in one room see every participant and the same room_sid; a data message from
// C reaches A and B; a mute on A is seen on B and C. Then the last participant on A leaves while
// B holds five: the room lives on, and a new join on A lists those five under the same room_sid.
//
// Unless E2E_CLUSTER_MEDIA=0: pages on B and C decode A's video across the relay.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCluster, CLUSTER_MEDIA, sleep } from './lib/cluster.mjs';
import { joinAt, where, waitSees, waitEvent, waitDataOpen, ownTrackIds } from './lib/cluster-pages.mjs';
import { waitForTracks, waitRising } from './lib/harness.mjs';
import { SignalClient } from './lib/ws.mjs';

const ctx = useCluster('w-cluster-signaling', { a: {}, b: {}, c: {} });
const ROOM = 'across';
const PEOPLE = { alice: 'a', bob: 'b', carol: 'c' };
const pages = {};

test('pages on A, B and C in one room: everyone seen, one room_sid, data and mutes cross', { timeout: 120_000 }, async () => {
  for (const [identity, node] of Object.entries(PEOPLE)) {
    pages[identity] = await ctx.page(node, identity);
    // Alice publishes a microphone (to mute it), and a camera when media is checked too.
    const publish = identity === 'alice' ? { audio: true, video: CLUSTER_MEDIA, simulcast: CLUSTER_MEDIA } : false;
    const joined = await joinAt(pages[identity], identity, { room: ROOM, identity, urls: ctx.nodes[node].wsUrl, publish });
    assert.equal(joined.url, ctx.nodes[node].wsUrl, `${identity} joined where it was sent`);
    assert.equal(joined.redirects, 0);
  }
  const sids = new Set();
  for (const identity of Object.keys(PEOPLE)) {
    const w = await waitSees(pages[identity], identity, Object.keys(PEOPLE).filter((x) => x !== identity));
    assert.match(w.roomSid ?? '', /^RM_/, `${identity}: room_sid ${w.roomSid}`);
    sids.add(w.roomSid);
  }
  assert.equal(sids.size, 1, `room_sid differs between nodes: ${[...sids].join(' ')}`);

  // A data message from C reaches A and B, with C's identity and id.
  for (const identity of Object.keys(PEOPLE)) await waitDataOpen(pages[identity], identity);
  const carolId = (await where(pages.carol, 'carol')).participantId;
  await pages.carol.evaluate(() => T.room('carol').sendData('hello from C'));
  for (const identity of ['alice', 'bob']) {
    const got = await waitEvent(pages[identity], identity, 'data', (e) => e.data === 'hello from C',
      { what: `${identity}: carol's message` });
    assert.deepEqual({ from: got.from, participantId: got.participantId }, { from: 'carol', participantId: carolId });
  }

  // A mute on A is seen on B and C.
  const { microphone } = await ownTrackIds(pages.alice, 'alice', ['microphone']);
  for (const identity of ['bob', 'carol']) {
    await waitEvent(pages[identity], identity, 'trackPublished', (e) => e.track?.id === microphone,
      { what: `${identity}: alice's microphone published` });
  }
  await pages.alice.evaluate(() => T.room('alice').mute('microphone', true));
  for (const identity of ['bob', 'carol']) {
    const muted = await waitEvent(pages[identity], identity, 'trackMuted', (e) => e.trackId === microphone,
      { what: `${identity}: alice's microphone muted` });
    assert.equal(muted.muted, true);
    assert.equal(muted.identity, 'alice');
  }
});

test('media: B and C decode A\'s video across the relay', { timeout: 120_000, skip: !CLUSTER_MEDIA && 'media relay checks are off (E2E_CLUSTER_MEDIA=0)' }, async () => {
  for (const identity of ['bob', 'carol']) {
    const tracks = await waitForTracks(pages[identity], identity, ['video'], 30_000);
    assert.ok(tracks.some((t) => t.kind === 'video' && t.identity === 'alice'), JSON.stringify(tracks));
    await waitRising(pages[identity], identity, { more: 20 });
  }
});

test('the last participant on A leaves while B holds five: the room lives on, a new join on A lists the five', { timeout: 120_000 }, async () => {
  const room = 'persists';
  const { a, b } = ctx.nodes;
  const page = pages.alice;
  const first = await joinAt(page, 'last', { room, identity: 'last-on-a', urls: a.wsUrl });
  const five = [];
  for (let i = 1; i <= 5; i++) {
    const c = await SignalClient.open(b.wsUrl);
    c.send({ type: 'join', token: await b.token(room, `held-${i}`) });
    const j = await c.next('joined');
    assert.equal(j.room_sid, first.roomSid, `held-${i} on B got room_sid ${j.room_sid}, A had ${first.roomSid}`);
    five.push(c);
  }
  const names = five.map((_, i) => `held-${i + 1}`);
  try {
    await waitSees(page, 'last', names);
    const leftAt = Date.now();
    await page.evaluate(() => T.room('last').leave());
    // B must keep the room while A, whose last local participant left, lets its own hold go.
    await sleep(3000); // longer than a beat: A's leave has reached Redis
    assert.ok(ctx.redis.exists(`sfu:room:${room}`), 'the room record is gone from Redis');
    for (const c of five) assert.ok(c.isOpen, 'a participant on B lost its socket');

    const again = await joinAt(page, 'again', { room, identity: 'newcomer-on-a', urls: a.wsUrl });
    console.log(`new join on A ${Date.now() - leftAt} ms after the last one left: its joined lists [${again.others.join(', ')}]`);
    assert.equal(again.roomSid, first.roomSid, 'the room was made again (new room_sid)');
    const t0 = Date.now();
    await waitSees(page, 'again', names, { timeoutMs: 10_000 });
    console.log(`the newcomer on A sees the five ${Date.now() - t0} ms after its joined`);
    // The five on B see the newcomer on A.
    for (const c of five) {
      await c.next((m) => m.type === 'participant_joined' && m.participant.identity === 'newcomer-on-a', 10_000);
    }
    // docs/cluster.md ("What crosses"): a join waits up to 300 ms for the peers' RoomHello, so
    // `joined` itself lists the room's participants on other nodes.
    assert.deepEqual([...again.others].sort(), names, 'the joined of a new join on A does not list the five on B');
    await page.evaluate(() => T.room('again').leave());
  } finally {
    for (const c of five) c.close();
  }
});

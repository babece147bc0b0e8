// Redirects and draining (docs/cluster.md, "Redirects and draining"): node A takes one
// participant (`limits.participants_per_node = 1`) and drains in 2 s.
//   - A second SDK page sent to A ends up joined on B by itself, following A's `redirect`.
//   - WHIP and WHEP POSTs to the full A are answered 307 with an absolute Location on B.
//   - SIGTERM on A: /readyz 503, a new join is sent to B, and at the end of the drain A's
//     participant is sent to B (redirect, 4307), joins there and publishes its tracks again.
// Unless E2E_CLUSTER_MEDIA=0: the page on B decodes the publisher on A across the relay.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCluster, CLUSTER_MEDIA, poll } from './lib/cluster.mjs';
import { joinAt, where, waitSees, waitEvent } from './lib/cluster-pages.mjs';
import { waitDecoding } from './lib/harness.mjs';

const ctx = useCluster('y-cluster-redirect', {
  a: { env: { SFU_LIMITS__PARTICIPANTS_PER_NODE: '1' }, drainTimeoutSecs: 2 },
  b: {},
});
const ROOM = 'moving';
const PUBLISH = { video: { width: 640, height: 360, frameRate: 30 }, audio: true, simulcast: false };
let alice;
let bob;
let aliceJoined;

test('a join sent to the full node A ends up on B by itself', { timeout: 90_000 }, async () => {
  const { a, b } = ctx.nodes;
  alice = await ctx.page('a', 'alice');
  aliceJoined = await joinAt(alice, 'alice', { room: ROOM, identity: 'alice', urls: a.wsUrl, publish: PUBLISH });
  assert.equal(aliceJoined.url, a.wsUrl);
  assert.equal(aliceJoined.redirects, 0);

  const before = await a.metric('sfu_cluster_redirects_total', ['via="websocket"']);
  bob = await ctx.page('a', 'bob');
  const joined = await joinAt(bob, 'bob', { room: ROOM, identity: 'bob', urls: a.wsUrl });
  assert.equal(joined.url, b.wsUrl, 'bob was not sent to B');
  assert.equal(joined.redirects, 1);
  assert.equal(joined.roomSid, aliceJoined.roomSid);
  const [redirected] = await bob.evaluate(() => T.events('bob', 'redirected'));
  assert.deepEqual({ from: redirected.from, url: redirected.url, redirects: redirected.redirects },
    { from: a.wsUrl, url: b.wsUrl, redirects: 1 });
  assert.equal(await a.metric('sfu_cluster_redirects_total', ['via="websocket"']), before + 1);
  await waitSees(bob, 'bob', ['alice']);
  await waitSees(alice, 'alice', ['bob']);
  if (CLUSTER_MEDIA) await waitDecoding(bob, 'bob', { timeoutMs: 30_000 }); // alice's video, from A
});

test('WHIP and WHEP POSTs to the full node A get 307 to B', { timeout: 30_000 }, async () => {
  const { a, b } = ctx.nodes;
  const sdp = 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n';
  for (const [via, path, identity] of [['whip', `/whip/${ROOM}`, 'whip-pub'], ['whep', `/whep/${ROOM}/alice`, 'whep-view']]) {
    const before = await a.metric('sfu_cluster_redirects_total', [`via="${via}"`]);
    const res = await fetch(`${a.httpUrl}${path}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${await a.token(ROOM, identity)}` },
      body: sdp,
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(res.status, 307, `${via.toUpperCase()} POST to A: HTTP ${res.status} ${await res.text()}`);
    assert.equal(res.headers.get('location'), `${b.httpUrl}${path}`);
    assert.equal(await a.metric('sfu_cluster_redirects_total', [`via="${via}"`]), before + 1);
  }
});

test('SIGTERM on A: /readyz 503, joins go to B, and A\'s participant moves to B and publishes again', { timeout: 90_000 }, async () => {
  const { a, b } = ctx.nodes;
  if ((await where(bob, 'bob')).state !== 'connected') {
    // The redirect above failed: bob joins B directly, so that the drain is still checked.
    await joinAt(bob, 'bob', { room: ROOM, identity: 'bob', urls: b.wsUrl });
    await waitSees(bob, 'bob', ['alice']);
  }
  const tracksBefore = await alice.evaluate(() => T.room('alice').localTracks.map((t) => t.track.id));
  const termAt = Date.now();
  a.sigterm();
  const ready = await poll(async () => {
    const r = await a.readyz();
    return r.status === 503 && r;
  }, { timeoutMs: 2000, intervalMs: 50, what: 'A: /readyz 503' });
  assert.deepEqual(ready.body, { status: 'draining' });

  // A newcomer sent to the draining A lands on B.
  const carol = await ctx.page('b', 'carol');
  const carolJoined = await joinAt(carol, 'carol', { room: ROOM, identity: 'carol', urls: a.wsUrl });
  assert.equal(carolJoined.url, b.wsUrl, 'carol was not sent on by the draining A');
  assert.equal(carolJoined.roomSid, aliceJoined.roomSid);

  // At the end of the drain (2 s) alice is sent to B: she joins there with the same tracks.
  const back = await waitEvent(alice, 'alice', 'reconnected', (e) => e.rejoined, { timeoutMs: 15_000, what: 'alice joined again' });
  console.log(`alice joined again on ${back.url} ${Date.now() - termAt} ms after SIGTERM`);
  assert.deepEqual({ reason: back.reason, url: back.url, previous: back.previousParticipantId },
    { reason: 'redirected', url: b.wsUrl, previous: aliceJoined.participantId });
  const w = await where(alice, 'alice');
  assert.equal(w.roomSid, aliceJoined.roomSid);
  assert.deepEqual(await alice.evaluate(() => T.room('alice').localTracks.map((t) => t.track.id)), tracksBefore);

  // bob (on B) sees the old alice leave and the new one publish camera and microphone.
  const left = await waitEvent(bob, 'bob', 'participantLeft', (e) => e.participantId === aliceJoined.participantId,
    { what: 'bob: the old alice left' });
  assert.equal(left.reason, 'shutdown');
  for (const kind of ['video', 'audio']) {
    await waitEvent(bob, 'bob', 'trackPublished', (e) => e.participantId === back.participantId && e.track?.kind === kind,
      { timeoutMs: 15_000, what: `bob: the new alice's ${kind} track` });
  }
  await waitSees(bob, 'bob', ['alice', 'carol']);
  const trackId = await poll(async () => (await bob.evaluate(() => T.tracks('bob', 'video')))
    .find((t) => t.participantId === back.participantId)?.trackId, { timeoutMs: 15_000, what: 'bob subscribed to the new alice\'s video' });
  const decoded = await waitDecoding(bob, 'bob', { trackId, timeoutMs: 20_000 });
  console.log(`bob decodes alice's video again ${Date.now() - termAt} ms after SIGTERM (${decoded.frameWidth} px)`);

  // A is done: it exits cleanly and leaves the registry.
  const exit = await a.waitExit(15_000);
  console.log(`A exited ${JSON.stringify(exit)} ${Date.now() - termAt} ms after SIGTERM`);
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.equal(ctx.redis.exists(a.redisKey), false, 'A\'s key is still in Redis');
});

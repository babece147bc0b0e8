// Failures in a cluster (docs/cluster.md, "Failures" and "Test plan" h, e, d and the Redis pause;
// media relayed between nodes checked unless E2E_CLUSTER_MEDIA=0):
//   h  node C with another secret: A and B count authentication failures; C sees nobody of theirs.
//   -  Redis stopped (SIGSTOP) for 30 s mid-call: /healthz 200 throughout, /readyz degraded, A and
//      B's participants still exchange data, a new join works; ready again after SIGCONT.
//   e  Redis killed and restarted empty: video from A keeps decoding on B (no gap over 500 ms), node
//      keys (and the room) back within 3 s, a new join works.
//   d  kill -9 of node B: its page, given [B, A], joins again on A within 5 s under the same
//      room_sid, and the others see it leave and come back.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCluster, CLUSTER_MEDIA, OTHER_SECRET, poll, sleep } from './lib/cluster.mjs';
import { joinAt, where, waitSees, waitEvent, waitDataOpen } from './lib/cluster-pages.mjs';
import { waitDecoding, waitSteady, longestStall } from './lib/harness.mjs';

const ctx = useCluster('x-cluster-failures', { a: {}, b: {}, c: { secret: OTHER_SECRET } }, { start: ['a', 'b'] });

test('h: node C with another secret gets no link; A and B count authentication failures', { timeout: 90_000 }, async () => {
  const { a, b, c } = ctx.nodes;
  await c.start();
  const failures = async () => [await a.metric('sfu_relay_auth_failures_total'), await b.metric('sfu_relay_auth_failures_total')];
  const first = await poll(async () => {
    const f = await failures();
    return f.every((n) => n > 0) && f;
  }, { timeoutMs: 30_000, intervalMs: 500, what: 'sfu_relay_auth_failures_total > 0 on A and B' });

  const alice = await ctx.page('a', 'h-alice');
  const carol = await ctx.page('c', 'h-carol');
  // Both publish a microphone: had they a link, its media would cross.
  const publish = { audio: true, video: false };
  await joinAt(alice, 'alice', { room: 'h', identity: 'alice', urls: a.wsUrl, publish });
  await joinAt(carol, 'carol', { room: 'h', identity: 'carol', urls: c.wsUrl, publish });
  // The handshake is tried again (backing off) while both are in the room: still refused.
  const later = await poll(async () => {
    const f = await failures();
    return f.every((n, i) => n > first[i]) && f;
  }, { timeoutMs: 40_000, intervalMs: 500, what: `auth failures growing on A and B past ${first}` });
  console.log(`sfu_relay_auth_failures_total on A, B: ${first} then ${later}`);
  await sleep(2000);
  assert.deepEqual((await where(carol, 'carol')).others, [], 'C sees participants of A');
  assert.deepEqual((await where(alice, 'alice')).others, [], 'A sees participants of C');
  for (const node of [a, b]) {
    assert.equal(await node.linkedTo(c), false, `${node.id} has a link to C`);
    assert.equal(await node.relayBytesWith(c), 0, `relay bytes between ${node.id} and C`);
  }
  assert.equal(await c.metric('sfu_relay_link_up'), 0, 'C has a link up');
  await alice.close();
  await carol.close();
  await c.kill();
});

const ROOM = 'outage';
const pages = {};
let roomSid = null;

/** Polls /healthz of `nodes` every 500 ms in the background; stop() returns what was seen. */
function watchHealth(nodes) {
  const seen = [];
  const timer = setInterval(() => {
    for (const n of nodes) {
      n.get('/healthz', 1000).then((r) => seen.push({ node: n.id, status: r.status }),
        (e) => seen.push({ node: n.id, status: `error: ${e.message}` }));
    }
  }, 500);
  return { stop: () => { clearInterval(timer); return seen; } };
}

test('Redis stopped for 30 s: /healthz 200, /readyz degraded, data crosses, a new join works; ready after SIGCONT', { timeout: 120_000 }, async () => {
  const { a, b } = ctx.nodes;
  pages.alice = await ctx.page('a', 'alice');
  pages.bob = await ctx.page('b', 'bob');
  roomSid = (await joinAt(pages.alice, 'alice', { room: ROOM, identity: 'alice', urls: a.wsUrl })).roomSid;
  await joinAt(pages.bob, 'bob', { room: ROOM, identity: 'bob', urls: b.wsUrl });
  await waitSees(pages.alice, 'alice', ['bob']);
  await waitSees(pages.bob, 'bob', ['alice']);
  await waitDataOpen(pages.alice, 'alice');
  await waitDataOpen(pages.bob, 'bob');

  const health = watchHealth([a, b]);
  const pausedAt = Date.now();
  ctx.redis.pause();
  try {
    for (const node of [a, b]) {
      const r = await poll(async () => {
        const x = await node.readyz();
        return x.body?.status === 'degraded' && x;
      }, { timeoutMs: 10_000, intervalMs: 200, what: `${node.id}: /readyz degraded` });
      console.log(`${node.id}: /readyz ${r.status} ${JSON.stringify(r.body)} ${Date.now() - pausedAt} ms into the pause`);
      assert.deepEqual(r, { status: 200, body: { status: 'degraded', redis: 'unreachable' } });
    }
    // The room goes on: data crosses both ways.
    await pages.alice.evaluate(() => T.room('alice').sendData('during the pause, from A'));
    await pages.bob.evaluate(() => T.room('bob').sendData('during the pause, from B'));
    await waitEvent(pages.bob, 'bob', 'data', (e) => e.data === 'during the pause, from A', { what: 'bob: alice\'s message' });
    await waitEvent(pages.alice, 'alice', 'data', (e) => e.data === 'during the pause, from B', { what: 'alice: bob\'s message' });
    // A new join works.
    pages.carol = await ctx.page('a', 'carol');
    const t0 = Date.now();
    const carol = await joinAt(pages.carol, 'carol', { room: ROOM, identity: 'carol', urls: a.wsUrl });
    console.log(`carol joined on A in ${Date.now() - t0} ms during the pause (room_sid ${carol.roomSid})`);
    assert.equal(carol.roomSid, roomSid);
    await waitSees(pages.carol, 'carol', ['alice', 'bob']);
    await waitSees(pages.bob, 'bob', ['alice', 'carol']);
    await sleep(Math.max(0, pausedAt + 30_000 - Date.now()));
    for (const node of [a, b]) assert.equal((await node.readyz()).body?.status, 'degraded', `${node.id} before SIGCONT`);
  } finally {
    ctx.redis.resume();
  }
  const resumedAt = Date.now();
  for (const node of [a, b]) {
    await poll(async () => (await node.readyz()).body?.status === 'ready',
      { timeoutMs: 10_000, intervalMs: 100, what: `${node.id}: /readyz ready after SIGCONT` });
    console.log(`${node.id}: /readyz ready ${Date.now() - resumedAt} ms after SIGCONT`);
  }
  await sleep(1000);
  const seen = health.stop();
  const bad = seen.filter((s) => s.status !== 200);
  console.log(`/healthz: ${seen.length} answers during the pause, ${bad.length} not 200`);
  assert.ok(seen.length >= 100, `only ${seen.length} /healthz answers in 30 s`);
  assert.deepEqual(bad, [], '/healthz not 200 during the Redis pause');
  // Nobody left meanwhile, and the room's record is written back.
  await poll(() => ctx.redis.exists(`sfu:room:${ROOM}`), { timeoutMs: 5000, what: 'the room record after SIGCONT' });
  assert.equal(ctx.redis.cli('HGET', `sfu:room:${ROOM}`, 'sid').trim(), roomSid);
  for (const k of ['alice', 'bob']) assert.deepEqual((await events(k, 'participantLeft')).map((e) => e.identity), []);
});

/** `key`'s events of `type` in its page. */
function events(key, type) {
  return pages[key].evaluate(([k, t]) => T.events(k, t), [key, type]);
}

test('e: Redis killed and restarted empty: media never pauses over 500 ms, node keys back within 3 s, the room too, a new join works', { timeout: 90_000 }, async () => {
  const { a, b } = ctx.nodes;
  const pids = [a.pid, b.pid];
  // erin on A publishes video; bob on B decodes it across the relay through the restart.
  let erinVideo = null;
  if (CLUSTER_MEDIA) {
    pages.erin = await ctx.page('a', 'erin');
    await joinAt(pages.erin, 'erin', { room: ROOM, identity: 'erin', urls: a.wsUrl,
      publish: { video: { width: 640, height: 360, frameRate: 30 }, audio: false, simulcast: false } });
    erinVideo = await newVideoOf(pages.bob, 'bob', (await where(pages.erin, 'erin')).participantId);
    await waitSteady(pages.bob, 'bob', erinVideo, { windowMs: 3000, maxGapMs: 400 });
    await pages.bob.evaluate((id) => T.startSampler('bob', id, 50), erinVideo);
  }
  const killedAt = performance.now();
  await ctx.redis.restartEmpty();
  const upAt = Date.now();
  const back = {};
  await poll(() => {
    for (const [what, key] of [['node a', a.redisKey], ['node b', b.redisKey], ['room', `sfu:room:${ROOM}`],
      ['leases', `sfu:room:${ROOM}:leases`]]) {
      if (back[what] === undefined && ctx.redis.exists(key)) back[what] = Date.now() - upAt;
    }
    return Object.keys(back).length === 4;
  }, { timeoutMs: 10_000, intervalMs: 50, what: 'node keys, room record and leases in the new Redis' }).catch((e) => {
    e.message += ` (back so far, ms after the restart: ${JSON.stringify(back)})`;
    throw e;
  });
  console.log(`back in the empty Redis, ms after it answered: ${JSON.stringify(back)}`);
  for (const what of ['node a', 'node b']) assert.ok(back[what] <= 3000, `${what}'s key back after ${back[what]} ms`);
  for (const what of ['room', 'leases']) assert.ok(back[what] <= 3000, `the ${what} back after ${back[what]} ms`);
  assert.equal(ctx.redis.cli('HGET', `sfu:room:${ROOM}`, 'sid').trim(), roomSid, 'the room record came back with another sid');
  if (CLUSTER_MEDIA) {
    await sleep(3000); // a beat and more after the keys came back
    const samples = await pages.bob.evaluate(() => T.stopSampler('bob'));
    // The whole window counts: from just before the kill to 3 s after the keys were back.
    const stall = longestStall(samples);
    const span = samples.length ? samples.at(-1).t - samples[0].t : 0;
    console.log(`bob decoding erin's video through the Redis restart: longest gap ${Math.round(stall.ms)} ms over ` +
      `${samples.length} samples in ${Math.round(span)} ms (${Math.round(performance.now() - killedAt)} ms since the kill)`);
    assert.ok(samples.length >= 20, `only ${samples.length} samples`);
    assert.ok(stall.ms <= 500, `media stopped for ${Math.round(stall.ms)} ms while Redis restarted`);
  }

  pages.dave = await ctx.page('b', 'dave');
  const dave = await joinAt(pages.dave, 'dave', { room: ROOM, identity: 'dave', urls: b.wsUrl });
  assert.equal(dave.roomSid, roomSid);
  const present = CLUSTER_MEDIA ? ['erin'] : [];
  await waitSees(pages.dave, 'dave', ['alice', 'bob', 'carol', ...present]);
  await waitSees(pages.alice, 'alice', ['bob', 'carol', 'dave', ...present]);
  assert.deepEqual([a.pid, b.pid], pids, 'a node restarted');
  assert.ok(a.running && b.running, 'a node exited');
  for (const k of ['carol', 'dave', ...present]) {
    await pages[k].evaluate((key) => T.room(key).leave(), k);
    await pages[k].close();
  }
});

test('d: kill -9 of node B: its page, given [B, A], joins again on A within 5 s under the same room_sid', { timeout: 90_000 }, async () => {
  const { a, b } = ctx.nodes;
  const room = 'failover';
  const publish = { video: { width: 640, height: 360, frameRate: 30 }, audio: true, simulcast: false };
  const alice = pages.alice;
  const bob = pages.bob;
  // alice on A and bob on B both publish; bob knows both nodes.
  const aliceJoined = await joinAt(alice, 'fa', { room, identity: 'alice', urls: a.wsUrl, publish });
  const bobJoined = await joinAt(bob, 'fb', { room, identity: 'bob', urls: [b.wsUrl, a.wsUrl], publish });
  assert.equal(bobJoined.url, b.wsUrl);
  await waitSees(alice, 'fa', ['bob']);
  await waitSees(bob, 'fb', ['alice']);
  if (CLUSTER_MEDIA) {
    await waitDecoding(bob, 'fb', { timeoutMs: 30_000 }); // alice's video, relayed from A to B
    await waitDecoding(alice, 'fa', { timeoutMs: 30_000 }); // bob's, from B to A
  }

  const killedAt = Date.now();
  b.kill9();
  const moved = await poll(async () => {
    const w = await where(bob, 'fb');
    return w.state === 'connected' && w.url === a.wsUrl && w.participantId !== bobJoined.participantId && w;
  }, { timeoutMs: 20_000, intervalMs: 50, what: 'bob joined again on A' });
  const rejoinMs = Date.now() - killedAt;
  console.log(`bob joined again on A ${rejoinMs} ms after B was killed (room_sid ${moved.roomSid})`);
  const back = await waitEvent(bob, 'fb', 'reconnected', (e) => e.rejoined, { timeoutMs: 1000 });
  assert.equal(back.reason, 'session_not_found');
  assert.equal(back.previousParticipantId, bobJoined.participantId);
  assert.ok(rejoinMs <= 5000, `bob joined again ${rejoinMs} ms after the kill`);
  assert.equal(moved.roomSid, aliceJoined.roomSid, 'room_sid changed');
  // Until A gives B up (2 s), A still lists B's old bob, to the new bob too.
  console.log(`the new bob first sees ${moved.others.join(', ')}`);
  const settled = await waitSees(bob, 'fb', ['alice'], { timeoutMs: 10_000 });
  console.log(`the new bob sees only alice ${Date.now() - killedAt} ms after the kill`);
  assert.equal(settled.participantId, moved.participantId);

  // alice sees the old bob leave and the new one come.
  const left = await waitEvent(alice, 'fa', 'participantLeft', (e) => e.participantId === bobJoined.participantId,
    { timeoutMs: 10_000, what: 'alice: the old bob left' });
  console.log(`alice saw the old bob leave (${left.reason}) ${Date.now() - killedAt} ms after the kill`);
  await waitEvent(alice, 'fa', 'participantJoined', (e) => e.participantId === moved.participantId,
    { timeoutMs: 10_000, what: 'alice: the new bob joined' });
  await waitSees(alice, 'fa', ['bob']);
  assert.equal((await where(alice, 'fa')).roomSid, aliceJoined.roomSid);

  // bob published the same camera again: alice (on A with him now) decodes it, and he decodes hers.
  const aliceDecodes = await waitDecoding(alice, 'fa', { timeoutMs: 20_000, trackId: await newVideoOf(alice, 'fa', moved.participantId) });
  const aliceMs = Date.now() - killedAt;
  const bobDecodes = await waitDecoding(bob, 'fb', { timeoutMs: 20_000 });
  const bobMs = Date.now() - killedAt;
  console.log(`after the kill: alice decodes bob's new video at ${aliceMs} ms (${aliceDecodes.frameWidth} px), bob decodes alice at ${bobMs} ms`);
  if (CLUSTER_MEDIA) {
    assert.ok(aliceMs <= 5000, `alice decoded bob again ${aliceMs} ms after the kill`);
    assert.ok(bobMs <= 5000, `bob decoded again ${bobMs} ms after the kill`);
  }
});

/** The id of `participantId`'s video track once `key` has subscribed to it. */
function newVideoOf(page, key, participantId) {
  return poll(async () => (await page.evaluate((k) => T.tracks(k, 'video'), key))
    .find((t) => t.participantId === participantId)?.trackId, { timeoutMs: 20_000, what: `${key}: subscribed to ${participantId}'s video` });
}

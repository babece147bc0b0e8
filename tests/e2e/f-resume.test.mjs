// Resume: a participant whose signaling socket drops reconnects with its session token, keeps its
// participant id, restarts ICE, and media keeps flowing. Nobody sees it leave.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser, waitForTracks, waitRising, waitDecoding } from './lib/harness.mjs';
import { poll } from './lib/server.mjs';

const ctx = useServerAndBrowser('f-resume', 6);
const ROOM = 'resume';
let pub;
let sub;
let alice;
let bob;

test('a subscriber resumes after its socket drops and keeps decoding', { timeout: 180_000 }, async () => {
  pub = await ctx.page('pub');
  alice = await pub.evaluate((room) => T.join('p', { room, identity: 'alice', publish: true }), ROOM);
  sub = await ctx.page('sub');
  bob = await sub.evaluate((room) => T.join('s', { room, identity: 'bob' }), ROOM);
  await waitForTracks(sub, 's', ['video', 'audio']);
  await waitRising(sub, 's', { more: 10 });
  const offersBefore = (await sub.evaluate(() => T.messages('s', 'offer'))).length;

  const t0 = Date.now();
  assert.equal(await sub.evaluate(() => T.room('s')._dropSocketForTest()), true);
  await poll(() => sub.evaluate(() => T.events('s', 'reconnected').length === 1),
    { timeoutMs: 30_000, what: 'reconnected' });
  console.log(`subscriber resumed ${Date.now() - t0} ms after the drop`);
  assert.ok((await sub.evaluate(() => T.events('s', 'reconnecting'))).length >= 1);
  assert.equal(await sub.evaluate(() => T.room('s').localParticipant.id), bob.participantId);

  // The server offers the subscriber pc again (ICE restart) and media keeps coming.
  await poll(async () => {
    const n = (await sub.evaluate(() => T.messages('s', 'offer'))).length;
    const s = await sub.evaluate(() => T.pcState('s'));
    return n > offersBefore && s.subscriber.signalingState === 'stable';
  }, { timeoutMs: 20_000, what: 'a new subscriber offer after the resume, answered' });
  const after = await waitDecoding(sub, 's');
  const s2 = await waitDecoding(sub, 's', { frames: after.framesDecoded + 30 });
  console.log(`framesDecoded ${after.framesDecoded} -> ${s2.framesDecoded} after the resume`);
  // The publisher pc (data channel only here) came back after its ICE restart.
  await poll(async () => (await sub.evaluate(() => T.pcState('s'))).publisher.connectionState === 'connected',
    { timeoutMs: 20_000, what: 'subscriber\'s publisher pc connected after the ICE restart' });
  assert.equal(await sub.evaluate(() => T.room('s').state), 'connected');
  assert.deepEqual(await sub.evaluate(() => T.events('s', 'error')), []);
  assert.deepEqual(await pub.evaluate(() => T.events('p', 'participantLeft')), []);
});

test('a publisher resumes after its socket drops; its video keeps reaching the subscriber', { timeout: 180_000 }, async () => {
  const before = await sub.evaluate(() => T.stats('s', 'video'));
  const t0 = Date.now();
  assert.equal(await pub.evaluate(() => T.room('p')._dropSocketForTest()), true);
  await poll(() => pub.evaluate(() => T.events('p', 'reconnected').length === 1),
    { timeoutMs: 30_000, what: 'publisher reconnected' });
  console.log(`publisher resumed ${Date.now() - t0} ms after the drop`);
  assert.equal(await pub.evaluate(() => T.room('p').localParticipant.id), alice.participantId);
  await poll(async () => {
    const s = await pub.evaluate(() => T.pcState('p'));
    return s.publisher.signalingState === 'stable' && s.publisher.connectionState === 'connected';
  }, { timeoutMs: 20_000, what: 'publisher pc stable and connected after the ICE restart' });
  await poll(async () => {
    const s = await sub.evaluate(() => T.stats('s', 'video'));
    return s && s.framesDecoded > before.framesDecoded + 60;
  }, { timeoutMs: 30_000, what: 'subscriber keeps decoding alice' });
  // Still the same track: no unsubscribe on the subscriber, nobody left.
  assert.deepEqual(await sub.evaluate(() => T.events('s', 'trackUnsubscribed')), []);
  assert.deepEqual(await sub.evaluate(() => T.events('s', 'participantLeft')), []);
  assert.deepEqual(await pub.evaluate(() => T.events('p', 'error')), []);
});

test('a publisher ICE restart (what resume does when the media path broke) keeps its video flowing', { timeout: 180_000 }, async () => {
  const before = await sub.evaluate(() => T.stats('s', 'video'));
  const ufrag = (sdp) => sdp.match(/a=ice-ufrag:(\S+)/)[1];
  const oldUfrag = ufrag(await pub.evaluate(() => T.room('p').publisherPc.localDescription.sdp));
  await pub.evaluate(() => T.room('p')._negotiatePublisher({ iceRestart: true }));
  await poll(async () => {
    const s = await pub.evaluate(() => T.pcState('p'));
    return s.publisher.signalingState === 'stable' && s.publisher.connectionState === 'connected';
  }, { timeoutMs: 20_000, what: 'publisher pc stable and connected after the ICE restart' });
  assert.notEqual(ufrag(await pub.evaluate(() => T.room('p').publisherPc.localDescription.sdp)), oldUfrag);
  // The re-offer must not cost the server its knowledge of which SSRC is which simulcast layer.
  await poll(async () => {
    const s = await sub.evaluate(() => T.stats('s', 'video'));
    return s && s.framesDecoded > before.framesDecoded + 60;
  }, { timeoutMs: 30_000, what: 'subscriber keeps decoding after the publisher ICE restart' });
  assert.deepEqual(await sub.evaluate(() => T.events('s', 'trackUnsubscribed')), []);
  assert.deepEqual(await pub.evaluate(() => T.events('p', 'error')), []);
});

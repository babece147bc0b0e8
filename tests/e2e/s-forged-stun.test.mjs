// Someone who learned a publisher connection's server-side ICE ufrag (it is in the SDP answer)
// sends STUN binding requests naming it from another address, without valid credentials: 10 a
// second for 5 s. An unauthenticated check must not move the connection's media path. The
// subscriber's received packet rate during the attack stays within 10 % of the 5 s before it, and
// its video keeps decoding.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { useServerAndBrowser, waitForTracks, waitRising, longestStall } from './lib/harness.mjs';
import { poll, sleep } from './lib/server.mjs';
import { metric, lostConnections, checks } from './lib/ingress.mjs';

const ctx = useServerAndBrowser('s-forged-stun', 19);
const ROOM = 'forged';
const ATTACK_RATE = 10; // per second
const ATTACK_MS = 5000;
const WINDOW_MS = 5000;

/** One STUN attribute, padded to 4 bytes. */
function attribute(type, value) {
  const out = Buffer.alloc(4 + Math.ceil(value.length / 4) * 4);
  out.writeUInt16BE(type, 0);
  out.writeUInt16BE(value.length, 2);
  value.copy(out, 4);
  return out;
}

/**
 * A binding request as a controlling ICE agent would send it, naming `username`, with no
 * MESSAGE-INTEGRITY or with one of random bytes.
 */
function forgedBindingRequest(username, wrongIntegrity) {
  const priority = Buffer.alloc(4);
  priority.writeUInt32BE(0x6e7f1eff);
  const attributes = [
    attribute(0x0006, Buffer.from(username)), // USERNAME
    attribute(0x0024, priority), // PRIORITY
    attribute(0x802a, randomBytes(8)), // ICE-CONTROLLING (tie-breaker)
  ];
  if (wrongIntegrity) attributes.push(attribute(0x0008, randomBytes(20))); // MESSAGE-INTEGRITY
  const body = Buffer.concat(attributes);
  const header = Buffer.alloc(20);
  header.writeUInt16BE(0x0001, 0); // Binding request
  header.writeUInt16BE(body.length, 2);
  header.writeUInt32BE(0x2112a442, 4); // magic cookie
  randomBytes(12).copy(header, 8);
  return Buffer.concat([header, body]);
}

/** The server side of the publisher connection as its browser has it: {ufrag, address, port}. */
async function publisherServerSide(page) {
  return page.evaluate(async () => {
    const pc = T.room('p').publisherPc;
    const ufrag = /^a=ice-ufrag:(.+)$/m.exec(pc.remoteDescription.sdp)[1].trim();
    const report = await pc.getStats();
    const byId = new Map();
    report.forEach((s) => byId.set(s.id, s));
    let pairId = null;
    report.forEach((s) => { if (s.type === 'transport') pairId = s.selectedCandidatePairId; });
    const remote = byId.get(byId.get(pairId)?.remoteCandidateId);
    return { ufrag, address: remote?.address, port: remote?.port };
  });
}

/** Sends `count` forged requests to `target`, one every 1000/ATTACK_RATE ms; counts the replies. */
async function attack(target, username, count) {
  const socket = dgram.createSocket('udp4');
  const replies = {};
  socket.on('message', (m) => {
    const type = m.length >= 2 ? `0x${m.readUInt16BE(0).toString(16).padStart(4, '0')}` : 'short';
    replies[type] = (replies[type] ?? 0) + 1;
  });
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const start = Date.now();
  for (let i = 0; i < count; i++) {
    await sleep(start + (i * 1000) / ATTACK_RATE - Date.now());
    socket.send(forgedBindingRequest(username, i % 2 === 1), target.port, target.address);
  }
  await sleep(start + (count * 1000) / ATTACK_RATE - Date.now());
  await sleep(200); // late replies
  socket.close();
  return replies;
}

/** The sampler's last sample at or before page time `t`. */
const at = (samples, t) => samples.filter((s) => s.t <= t).at(-1) ?? samples[0];

test('forged STUN naming the publisher\'s ufrag does not move its media path', { timeout: 150_000 }, async () => {
  const url = ctx.server.httpUrl;
  const pub = await ctx.page('pub');
  await pub.evaluate((room) => T.join('p', { room, identity: 'alice', publish: true }), ROOM);
  const sub = await ctx.page('sub');
  await sub.evaluate((room) => T.join('s', { room, identity: 'bob' }), ROOM);
  const [video] = (await waitForTracks(sub, 's', ['video'])).filter((t) => t.kind === 'video');
  // The middle layer reaches its full rate within seconds, where the top one may take the
  // publisher's estimate much longer: the rate compared is then the server's, not the ramp's.
  await sub.evaluate((id) => T.room('s').setSubscription(id, { layer: 'medium' }), video.trackId);
  await poll(async () => (await sub.evaluate(() => T.stats('s', 'video')))?.frameWidth === 640,
    { timeoutMs: 30_000, intervalMs: 250, what: 'the subscriber on 640' });
  await waitRising(sub, 's', { more: 30 });

  const target = await publisherServerSide(pub);
  console.log(`publisher connection: server ufrag ${target.ufrag}, media at ${target.address}:${target.port}`);
  assert.ok(target.ufrag && target.port, 'no server-side ufrag or port for the publisher connection');

  await sub.evaluate((id) => T.startSampler('s', id, 100), video.trackId);
  await sleep(WINDOW_MS);
  const unroutableBefore = await metric(url, 'sfu_unroutable_datagrams_total');
  const attackStart = await sub.evaluate(() => performance.now());
  const replies = await attack(target, `${target.ufrag}:forged`, (ATTACK_RATE * ATTACK_MS) / 1000);
  const attackEnd = await sub.evaluate(() => performance.now());
  const unroutableDuring = await metric(url, 'sfu_unroutable_datagrams_total') - unroutableBefore;
  await sleep(WINDOW_MS); // and after: how long until it recovers, if it stalled
  const samples = await sub.evaluate(() => T.stopSampler('s'));

  const rate = (from, to) => ((at(samples, to).packetsReceived - at(samples, from).packetsReceived) * 1000) / (to - from);
  const before = rate(attackStart - WINDOW_MS, attackStart);
  const during = rate(attackStart, attackEnd);
  const after = rate(attackEnd, attackEnd + WINDOW_MS);
  const decodedDuring = at(samples, attackEnd).framesDecoded - at(samples, attackStart).framesDecoded;
  const stall = longestStall(samples.filter((s) => s.t <= attackEnd + WINDOW_MS), attackStart);
  const drop = 1 - during / before;
  console.log(`received video packets/s: ${before.toFixed(1)} in the 5 s before the attack, ${during.toFixed(1)} during it ` +
    `(${(drop * 100).toFixed(1)} % drop), ${after.toFixed(1)} in the 5 s after`);
  console.log(`frames decoded during the attack: ${decodedDuring}; longest stall from the attack on ${Math.round(stall.ms)} ms ` +
    `(from ${Math.round(stall.since - attackStart)} ms after it began; the attack lasted ${Math.round(attackEnd - attackStart)} ms)`);
  console.log(`replies to the forged requests: ${JSON.stringify(replies)}; unroutable datagrams during the attack: ${unroutableDuring}; ` +
    `server-side connections lost: ${lostConnections(ctx.server.logFile).join(', ') || 'none'}`);

  assert.ok(before > 20, `too few packets before the attack to compare (${before.toFixed(1)}/s)`);
  const check = checks();
  check(drop <= 0.1, `packet rate fell ${(drop * 100).toFixed(1)} % during the attack`);
  check(decodedDuring > 0 && stall.ms <= 1000, `video stalled ${Math.round(stall.ms)} ms (${decodedDuring} frames decoded during the attack)`);
  check((replies['0x0101'] ?? 0) === 0, 'the server answered a forged request with a binding success');
  check.assertAll();
});

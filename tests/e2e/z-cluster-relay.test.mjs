// The relay between two nodes carries each track once and only the layers used (docs/cluster.md,
// "Test plan" a, b, c and g). A Chromium publisher on node A sends three simulcast layers; its
// subscribers are Chromium pages on node B.
//   c  B's subscribers all on low: only low crosses the link; one asks for high and decodes 1280
//      wide within 1 s; switches low/medium/high across the nodes never stall over 1 s.
//   a  a late joiner on B decodes soon after connecting.
//   b  with 1 and then 10 subscribers on B, the link carries the same bytes per byte one subscriber
//      receives (within 5 %): one copy per track per link.
//   g  5 % loss on the relay path (nftables in A's namespace, both ways): NACK/RTX across the link
//      leaves B's subscriber under 0.5 % loss.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { useCluster, CLUSTER_MEDIA, poll, sleep } from './lib/cluster.mjs';
import { joinAt } from './lib/cluster-pages.mjs';
import { waitForTracks, waitRising, waitPublisherLayers, longestStall } from './lib/harness.mjs';

const skip = !CLUSTER_MEDIA && 'media relay checks are off (E2E_CLUSTER_MEDIA=0)';
const ctx = useCluster('z-cluster-relay', { a: {}, b: {} }, { browser: !skip });
const ROOM = 'relayed';
const WIDTH = { low: 320, medium: 640, high: 1280 };
const LAYER_INDEX = { low: 0, medium: 1, high: 2 };
let pub = null;
let subs = null;
let video = null;

/** B's relay media from A, by layer (packets), and bytes, summed over B's shards. */
async function relayIn() {
  const { a, b } = ctx.nodes;
  const peer = `peer="${a.nodeId}"`;
  const packets = [];
  for (const layer of [0, 1, 2]) {
    packets.push(await b.metric('sfu_relay_packets_total', [peer, 'direction="in"', `layer="${layer}"`]));
  }
  const bytes = await b.metric('sfu_relay_bytes_total', [peer, 'direction="in"']);
  return { packets, bytes };
}

/** Waits until subscriber `key` on page `page` decodes `layer` of alice's video; returns ms taken. */
async function waitWidth(page, key, layer, timeoutMs = 25_000) {
  const t0 = Date.now();
  await poll(async () => (await page.evaluate(([k, id]) => T.stats(k, 'video', id), [key, video.trackId]))?.frameWidth === WIDTH[layer],
    { timeoutMs, intervalMs: 50, what: `${key}: frameWidth ${WIDTH[layer]} (${layer})` });
  return Date.now() - t0;
}

function setLayer(page, key, layer) {
  return page.evaluate(([k, id, l]) => T.room(k).setSubscription(id, { layer: l }), [key, video.trackId, layer]);
}

/** Joins subscriber `key` on B in `page` and waits until it decodes alice's video. */
async function subscribeOnB(page, key) {
  const joined = await joinAt(page, key, { room: ROOM, identity: key, urls: ctx.nodes.b.wsUrl });
  await waitForTracks(page, key, ['video'], 30_000);
  return joined;
}

test('c: all on low, only low crosses; one asks for high and decodes 1280 wide within 1 s; switches never stall', { timeout: 240_000, skip }, async () => {
  const { a } = ctx.nodes;
  pub = await ctx.page('a', 'publisher');
  // Every layer encoded whatever the server asks (no dynacast at the publisher), so the switch
  // times measure the relay, not an encoder starting a layer again.
  await joinAt(pub, 'alice', { room: ROOM, identity: 'alice', urls: a.wsUrl,
    publish: { video: true, audio: false, simulcast: true }, options: { dynacast: false } });
  subs = await ctx.page('b', 'subscribers');
  for (const key of ['bob', 'bea']) await subscribeOnB(subs, key);
  [video] = (await waitForTracks(subs, 'bob', ['video'])).filter((t) => t.kind === 'video');
  await waitRising(subs, 'bob', { more: 10 });
  console.log(`publisher encodes all three layers ${await waitPublisherLayers(pub, 'alice')} ms after B decoded`);

  for (const key of ['bob', 'bea']) await setLayer(subs, key, 'low');
  for (const key of ['bob', 'bea']) await waitWidth(subs, key, 'low');
  await sleep(2000); // layers dropped from the link stop arriving
  const before = await relayIn();
  await sleep(3000);
  const after = await relayIn();
  const crossed = after.packets.map((n, i) => n - before.packets[i]);
  console.log(`relay A->B in 3 s with both subscribers on low: packets by layer ${JSON.stringify(crossed)}`);
  assert.ok(crossed[0] > 30, `low layer: only ${crossed[0]} packets crossed in 3 s`);
  assert.deepEqual(crossed.slice(1), [0, 0], 'medium or high crossed the link while nobody on B used them');

  await subs.evaluate((id) => T.startSampler('bob', id, 100), video.trackId);
  const sampleFrom = Date.now();
  const timings = [];
  for (const layer of ['high', 'medium', 'low', 'high']) {
    await setLayer(subs, 'bob', layer);
    const ms = await waitWidth(subs, 'bob', layer);
    timings.push(`${layer}=${ms}ms`);
    await sleep(1500);
  }
  const samples = await subs.evaluate(() => T.stopSampler('bob'));
  const stall = longestStall(samples);
  console.log(`switches on B (asked -> decoded at that width): ${timings.join(' ')}; longest gap ${Math.round(stall.ms)} ms ` +
    `over ${samples.length} samples in ${Date.now() - sampleFrom} ms`);
  const [firstHigh] = timings;
  assert.ok(Number(firstHigh.match(/=(\d+)ms/)[1]) <= 1000, `the first switch to high took ${firstHigh}`);
  assert.ok(stall.ms <= 1000, `video on B stalled ${Math.round(stall.ms)} ms across the switches`);
  // bea still on low, bob on high: low and high cross, medium does not.
  await sleep(2000);
  const b1 = await relayIn();
  await sleep(2000);
  const b2 = await relayIn();
  const mix = b2.packets.map((n, i) => n - b1.packets[i]);
  console.log(`relay A->B in 2 s with one subscriber on low and one on high: packets by layer ${JSON.stringify(mix)}`);
  assert.ok(mix[0] > 0 && mix[2] > 0 && mix[1] === 0, `layers crossing: ${JSON.stringify(mix)}`);
  await setLayer(subs, 'bob', 'low');
  await waitWidth(subs, 'bob', 'low');
});

test('a: a late joiner on B decodes its first frame soon after connecting', { timeout: 120_000, skip }, async () => {
  const joined = await subscribeOnB(subs, 'late');
  const r = await subs.evaluate(() => T.firstFrame('late', 30_000));
  assert.ok(r && r.tConnected !== null, 'the late joiner on B decoded nothing');
  const connectedToFrame = r.tFrame - r.tConnected;
  console.log(`late joiner on B: join -> first frame ${Math.round(r.tFrame - joined.t0)} ms, ` +
    `connected -> first frame ${Math.round(connectedToFrame)} ms (${r.width} px)`);
  assert.ok(connectedToFrame < 5000, `first frame ${Math.round(connectedToFrame)} ms after connecting`);
  await subs.evaluate(() => T.room('late').leave());
});

/**
 * Relay bytes and packets into B per byte and packet that one subscriber on B (bob) receives of
 * alice's video, over `ms`. Normalised by what one subscriber gets, so the encoder's rate, which
 * wanders from one window to the next, cancels out: one copy per link is 1, one per subscriber 10.
 * (The publisher's own counters would not do: its bandwidth probes resend media, which the
 * server drops as duplicates.)
 */
async function relayPerReceived(ms) {
  const stats = () => subs.evaluate(([k, id]) => T.stats(k, 'video', id), ['bob', video.trackId]);
  const [r0, s0] = [await relayIn(), await stats()];
  await sleep(ms);
  const [r1, s1] = [await relayIn(), await stats()];
  const received = { packets: s1.packetsReceived - s0.packetsReceived, bytes: s1.bytesReceived - s0.bytesReceived };
  const sum = (xs) => xs.reduce((x, y) => x + y);
  const crossed = { packets: sum(r1.packets) - sum(r0.packets), bytes: r1.bytes - r0.bytes };
  return { received, crossed, bytes: crossed.bytes / received.bytes, packets: crossed.packets / received.packets };
}

test('b: 1 and then 10 subscribers on B: the link carries the same bytes (within 5 %) per byte a subscriber receives', { timeout: 240_000, skip }, async () => {
  // bob and bea are on low; bea leaves, so one subscriber remains.
  await subs.evaluate(() => T.room('bea').leave());
  await sleep(2000);
  const one = await relayPerReceived(6000);
  console.log(`1 subscriber on B: ${JSON.stringify(one)}`);
  const more = await ctx.page('b', 'nine-more');
  for (let i = 1; i <= 9; i++) {
    const key = `s${i}`;
    await subscribeOnB(more, key);
    await setLayer(more, key, 'low');
  }
  for (let i = 1; i <= 9; i++) await waitWidth(more, `s${i}`, 'low', 30_000);
  await sleep(2000);
  const ten = await relayPerReceived(6000);
  console.log(`10 subscribers on B: ${JSON.stringify(ten)}`);
  for (const what of ['bytes', 'packets']) {
    assert.ok(one[what] > 0.9 && one[what] < 1.1, `1 subscriber: ${one[what]} relay ${what} per ${what} it receives`);
    const ratio = ten[what] / one[what];
    assert.ok(Math.abs(ratio - 1) <= 0.05, `relay ${what} per ${what} one subscriber receives: ${ten[what]} with 10 subscribers, ${one[what]} with 1`);
  }
  for (let i = 1; i <= 9; i++) await more.evaluate((k) => T.room(k).leave(), `s${i}`);
  await more.close();
});

/**
 * `percent` random loss both ways on UDP between A and B, in A's namespace. Returns {counts, remove}:
 * counts() gives the datagrams seen and dropped from A to B so far (nftables counters).
 */
function lossyRelayPath(percent) {
  const { a, b } = ctx.nodes;
  const nft = (script) => execFileSync('ip', ['netns', 'exec', a.namespace, 'nft', '-f', '-'], { input: script });
  nft(`table inet relayloss {
  chain out {
    type filter hook output priority 0;
    ip daddr ${b.addr} meta l4proto udp counter;
    ip daddr ${b.addr} meta l4proto udp numgen random mod 100 < ${percent} counter drop;
  }
  chain in { type filter hook input priority 0; ip saddr ${b.addr} meta l4proto udp numgen random mod 100 < ${percent} drop; }
}`);
  const counts = () => {
    const listed = execFileSync('ip', ['netns', 'exec', a.namespace, 'nft', 'list', 'chain', 'inet', 'relayloss', 'out'],
      { encoding: 'utf8' });
    const [seen, dropped] = [...listed.matchAll(/counter packets (\d+)/g)].map((m) => Number(m[1]));
    return { seen, dropped };
  };
  return { counts, remove: () => nft('delete table inet relayloss') };
}

/** Subscriber `key`'s received and lost packets of alice's video (Chromium's inbound-rtp). */
async function received(page, key) {
  const s = await page.evaluate(([k, id]) => T.stats(k, 'video', id), [key, video.trackId]);
  return { received: s.packetsReceived, lost: s.packetsLost };
}

test('g: 5 % loss on the relay path: B\'s subscriber loses under 0.5 %', { timeout: 120_000, skip }, async () => {
  const { a, b } = ctx.nodes;
  await setLayer(subs, 'bob', 'high');
  await waitWidth(subs, 'bob', 'high');
  const loss = lossyRelayPath(5);
  try {
    await sleep(2000);
    const [s0, lost0, rtx0] = [await received(subs, 'bob'), await b.metric('sfu_relay_lost_packets_total'),
      await a.metric('sfu_relay_retransmissions_total')];
    await sleep(15_000);
    const [s1, lost1, rtx1] = [await received(subs, 'bob'), await b.metric('sfu_relay_lost_packets_total'),
      await a.metric('sfu_relay_retransmissions_total')];
    const got = s1.received - s0.received;
    const lost = s1.lost - s0.lost;
    const lossPct = (100 * lost) / (got + lost);
    console.log(`15 s with 5 % loss on the relay path: B saw ${lost1 - lost0} relay packets missing, A retransmitted ` +
      `${rtx1 - rtx0}; bob received ${got} packets and lost ${lost} (${lossPct.toFixed(3)} %)`);
    assert.ok(got > 500, `bob received only ${got} packets in 15 s`);
    assert.ok(lost1 - lost0 > 0, 'no relay loss was seen: the impairment did nothing');
    assert.ok(rtx1 - rtx0 > 0, 'A retransmitted nothing across the link');
    assert.ok(lossPct < 0.5, `bob lost ${lossPct.toFixed(3)} % of alice's video`);
  } finally {
    const { seen, dropped } = loss.counts();
    console.log(`nftables dropped ${dropped} of ${seen} datagrams from A to B (${((100 * dropped) / seen).toFixed(2)} %)`);
    loss.remove();
  }
});

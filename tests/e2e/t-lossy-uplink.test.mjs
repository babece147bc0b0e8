// A publisher whose uplink loses 5 % of its RTP packets (a seeded userspace relay between the
// browsers and the server: the server announces 127.0.0.2, where the relay listens, and binds
// 127.0.0.1). The subscriber's connections pass the same relay but send no RTP upstream, so only
// the publisher's uplink loses packets. The server NACKs the losses, the publisher resends them,
// and the server takes the resent packets (no SRTP replay refusals): a subscriber on the top
// layer sees almost no loss and keeps >= 20 of the fake camera's 30 frames per second. Also
// prints how long the publisher took to encode its top layer after publishing.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser, waitForTracks } from './lib/harness.mjs';
import { poll, sleep, portsFor } from './lib/server.mjs';
import { metric, metricOrNull, replayRefusals, publisherOutbound, waitEncodedWidths, lostConnections, checks } from './lib/ingress.mjs';
import { LossyRelay } from './lib/udp-relay.mjs';

const SLOT = 20;
const SHARDS = 2;
const LOSS = 0.05;
const WINDOW_MS = 10_000;
const ROOM = 'lossy';

const ctx = useServerAndBrowser('t-lossy-uplink', SLOT, {
  env: { SFU_ANNOUNCE: '127.0.0.2', SFU_RTC__SHARDS: String(SHARDS) },
  // The fake camera runs at 20 frames/s unless told otherwise (the last copy of a switch wins).
  browserOptions: { extraArgs: ['--use-fake-device-for-media-stream=fps=30'] },
});
const { udpPortStart } = portsFor(SLOT);
const relay = new LossyRelay({
  listenHost: '127.0.0.2',
  targetHost: '127.0.0.1',
  ports: Array.from({ length: SHARDS }, (_, i) => udpPortStart + i),
  loss: LOSS,
  seed: 16,
});
after(() => relay.close());

/** What the subscriber's video has received so far (inbound-rtp). */
async function inbound(page) {
  const s = await page.evaluate(() => T.stats('s', 'video'));
  return { packetsReceived: s.packetsReceived ?? 0, packetsLost: s.packetsLost ?? 0, framesDropped: s.framesDropped ?? 0,
    framesDecoded: s.framesDecoded ?? 0, nackCount: s.nackCount ?? 0, width: s.frameWidth };
}

const sum = (layers, field) => layers.reduce((n, l) => n + (l[field] ?? 0), 0);

test('5 % uplink loss is repaired: no replays, the top layer keeps its frame rate', { timeout: 150_000 }, async () => {
  const url = ctx.server.httpUrl;
  await relay.start();

  const pub = await ctx.page('pub');
  await pub.evaluate((room) => T.join('p', { room, identity: 'alice' }), ROOM);
  const publishAt = Date.now();
  await pub.evaluate(() => T.room('p').publish());
  const sub = await ctx.page('sub');
  await sub.evaluate((room) => T.join('s', { room, identity: 'bob' }), ROOM);
  const [video] = (await waitForTracks(sub, 's', ['video'])).filter((t) => t.kind === 'video');
  await sub.evaluate((id) => T.room('s').setSubscription(id, { layer: 'high' }), video.trackId);

  const topLayerMs = await waitEncodedWidths(pub, [1280], { since: publishAt, timeoutMs: 45_000 });
  console.log(`publisher encodes its top layer (1280 wide) ${topLayerMs ?? 'never (45 s)'} ms after publish()`);
  assert.ok(topLayerMs !== null, 'the publisher never encoded its top layer');
  await poll(async () => (await inbound(sub)).width === 1280,
    { timeoutMs: 20_000, intervalMs: 250, what: 'the subscriber on 1280' });

  const nacksName = 'sfu_uplink_nacks_sent_total';
  const repairsName = 'sfu_uplink_repairs_total';
  const rtxName = 'sfu_uplink_rtx_packets_total';
  const before = {
    sub: await inbound(sub), pub: await publisherOutbound(pub), relay: { ...relay.counts },
    nacks: await metricOrNull(url, nacksName), repairs: await metricOrNull(url, repairsName),
    rtx: await metricOrNull(url, rtxName),
    misses: await metric(url, 'sfu_retransmission_misses_total'),
  };
  await sub.evaluate((id) => T.startSampler('s', id, 200), video.trackId);
  await sleep(WINDOW_MS);
  const samples = await sub.evaluate(() => T.stopSampler('s'));
  const end = {
    sub: await inbound(sub), pub: await publisherOutbound(pub), relay: { ...relay.counts },
    nacks: await metricOrNull(url, nacksName), repairs: await metricOrNull(url, repairsName),
    rtx: await metricOrNull(url, rtxName),
    misses: await metric(url, 'sfu_retransmission_misses_total'),
  };
  const replays = await replayRefusals(ctx.server);

  // Frames decoded while the subscriber was on the top layer, over the window.
  let topFrames = 0;
  for (let i = 1; i < samples.length; i++) {
    if (samples[i].frameWidth === 1280 && samples[i - 1].frameWidth === 1280) topFrames += samples[i].framesDecoded - samples[i - 1].framesDecoded;
  }
  const windowS = samples.length > 1 ? (samples.at(-1).t - samples[0].t) / 1000 : WINDOW_MS / 1000;
  const topFps = topFrames / windowS;
  const delta = (field) => end.sub[field] - before.sub[field];
  const received = delta('packetsReceived');
  const lost = delta('packetsLost');
  const top = (s) => s.pub.find((l) => l.rid === 'f') ?? {};
  const retransmitted = sum(end.pub, 'retransmitted');
  const retransmittedInWindow = retransmitted - sum(before.pub, 'retransmitted');
  const publisherNacks = sum(end.pub, 'nacks');
  const publisherNacksInWindow = publisherNacks - sum(before.pub, 'nacks');
  const dropped = end.relay.dropped - before.relay.dropped;
  const rtp = end.relay.rtp - before.relay.rtp;
  const nacksSent = end.nacks === null ? null : end.nacks - before.nacks;
  const repairs = end.repairs === null ? null : end.repairs - before.repairs;
  const rtx = end.rtx === null ? null : end.rtx - before.rtx;

  console.log(`relay over the ${WINDOW_MS / 1000} s window: ${dropped} of ${rtp} RTP packets dropped (${((dropped / rtp) * 100).toFixed(1)} %); ` +
    `whole session ${end.relay.dropped} of ${end.relay.rtp}`);
  console.log(`subscriber (layer high): ${received} packets received, ${lost} lost, ${delta('framesDropped')} frames dropped, ` +
    `${delta('nackCount')} NACKs sent; ${topFps.toFixed(1)} frames/s decoded at 1280 ` +
    `(publisher sent ${top(end).framesEncoded - (top(before).framesEncoded ?? 0)} top-layer frames)`);
  console.log(`publisher: ${publisherNacksInWindow} NACKs received and ${retransmittedInWindow} packets retransmitted in the window ` +
    `(${publisherNacks} and ${retransmitted} in all)`);
  console.log(`server: ${nacksName} ${nacksSent ?? 'absent'}, ${repairsName} ${repairs ?? 'absent'}, ${rtxName} ${rtx ?? 'absent'}, ` +
    `subscriber NACKs it could not answer ${end.misses - before.misses}; ` +
    `SRTP replay refusals ${replays.count} (${replays.source}; ${replays.logged} in the log); ` +
    `server-side connections lost: ${lostConnections(ctx.server.logFile).join(', ') || 'none'}`);

  assert.ok(dropped > 0, 'the relay dropped nothing: the loss is not on the path');
  const check = checks();
  check(replays.count === 0, `${replays.count} SRTP replay refusals (${replays.source})`);
  if (nacksSent !== null) check(nacksSent > 0, `${nacksName} did not rise`);
  else check(publisherNacksInWindow > 0, 'the publisher received no NACKs');
  if (repairs !== null) check(repairs > 0, `${repairsName} did not rise`);
  // The repairs come on the publisher's RTX streams (named by repaired-rid), not as replays.
  if (rtx !== null) check(rtx > 0, `${rtxName} did not rise: no retransmission came over RTX`);
  check(retransmitted > 0, 'the publisher retransmitted nothing');
  check(lost <= received * 0.01, `the subscriber lost ${lost} of ${received + lost} packets`);
  check(topFps >= 20, `the subscriber decoded ${topFps.toFixed(1)} frames/s at 1280`);
  check.assertAll();
});

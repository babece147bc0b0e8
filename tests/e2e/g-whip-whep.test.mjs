// WHIP publish and WHEP play from raw RTCPeerConnections (no SDK): the WHEP player gets each simulcast
// layer it asks for; resources are deleted with DELETE on their Location.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser, waitForTracks, waitRising } from './lib/harness.mjs';
import { poll } from './lib/server.mjs';

const ctx = useServerAndBrowser('g-whip-whep', 7);
const ROOM = 'whipwhep';
const WIDTH = { low: 320, medium: 640, high: 1280 };

test('WHIP publish, WHEP play at each layer, DELETE', { timeout: 300_000 }, async () => {
  const page = await ctx.page('whip');
  const whipToken = await ctx.server.token(ROOM, 'whip1');
  const pub = await page.evaluate(([room, token]) => T.whipPublish('whip', { room, token }), [ROOM, whipToken]);
  assert.equal(pub.status, 201, `WHIP POST: ${JSON.stringify(pub)}`);
  assert.ok(pub.location, 'WHIP response has a Location');
  assert.match(pub.contentType ?? '', /^application\/sdp/);
  await poll(async () => (await page.evaluate(() => T.rawState('whip'))).connectionState === 'connected',
    { timeoutMs: 30_000, what: 'WHIP pc connected' });

  // The WHIP publisher is an ordinary participant to SDK clients.
  const viewer = await ctx.page('viewer');
  await viewer.evaluate((room) => T.join('v', { room, identity: 'viewer' }), ROOM);
  const tracks = await waitForTracks(viewer, 'v', ['video', 'audio'], 30_000);
  assert.ok(tracks.every((t) => t.identity === 'whip1'), JSON.stringify(tracks));
  await waitRising(viewer, 'v', { more: 10 });
  // WHEP times measure the server: first let the publishing browser's own bandwidth estimate
  // allow all three layers (it can take many seconds on a busy machine).
  await poll(async () => {
    const widths = await page.evaluate(() => T.rawLiveLayers('whip'));
    return [320, 640, 1280].every((w) => widths.includes(w));
  }, { timeoutMs: 90_000, intervalMs: 500, what: 'the WHIP publisher encoding all three layers' });

  for (const layer of ['low', 'medium', 'high']) {
    const key = `whep-${layer}`;
    const token = await ctx.server.token(ROOM, key);
    const t0 = Date.now();
    const play = await page.evaluate(([room, l, k, tok]) => T.whepPlay(k, { room, publisher: 'whip1', layer: l, token: tok }),
      [ROOM, layer, key, token]);
    assert.equal(play.status, 201, `WHEP POST (${layer}): ${JSON.stringify(play)}`);
    assert.ok(play.location, 'WHEP response has a Location');
    const s = await poll(async () => {
      const st = await page.evaluate((k) => T.rawStats(k, 'video'), key);
      return st && st.framesDecoded > 0 && st.frameWidth === WIDTH[layer] && st;
    }, { timeoutMs: 30_000, intervalMs: 250, what: `WHEP ${layer}: frameWidth ${WIDTH[layer]}` });
    console.log(`WHEP ${layer}: ${s.frameWidth}x${s.frameHeight} after ${Date.now() - t0} ms`);
    await poll(async () => {
      const a = await page.evaluate((k) => T.rawStats(k, 'audio'), key);
      return a && a.packetsReceived > 0;
    }, { timeoutMs: 20_000, what: `WHEP ${layer}: audio packets` });
    const del = await page.evaluate(([k, tok]) => T.rawDelete(k, tok), [key, token]);
    assert.ok([200, 204].includes(del), `WHEP DELETE: HTTP ${del}`);
  }

  const del = await page.evaluate((tok) => T.rawDelete('whip', tok), whipToken);
  assert.ok([200, 204].includes(del), `WHIP DELETE: HTTP ${del}`);
  // Deleting the WHIP resource removes the publisher from the room.
  await poll(() => viewer.evaluate(() => T.events('v', 'participantLeft').some((e) => e.identity === 'whip1')),
    { timeoutMs: 15_000, what: 'viewer sees whip1 leave' });
});

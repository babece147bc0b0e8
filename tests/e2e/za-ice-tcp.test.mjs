// ICE-TCP (issue 20, tests a and f's TCP part). Bob's Chromium runs as a user whose UDP is dropped
// (nftables in this test's network namespace, lib/noudp.mjs); alice's is a normal one. Bob joins,
// publishes and subscribes: his browser can only reach the server's passive TCP candidate, so both
// of his peer connections run over ICE-TCP, and his video and alice's must still decode on the
// other side. Then peers that are not WebRTC clients connect to the ICE-TCP port (garbage, a
// 64 KiB frame, nothing at all): each is closed, the silent one after the 5 s it has to prove
// itself, every close is counted, and bob's video does not stall meanwhile.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { useServerAndBrowser, waitForTracks, waitRising, longestStall } from './lib/harness.mjs';
import { launchBrowser, CHROMIUM_PATH } from './lib/browser.mjs';
import { cannotBlockUdp, UdpBlockedUser } from './lib/noudp.mjs';
import { portsFor, sleep } from './lib/server.mjs';
import { metric } from './lib/ingress.mjs';

const SLOT = 31;
const ROOM = 'ice-tcp';
const { tcpPort } = portsFor(SLOT);
/** How long the server gives a connection to prove itself (tcp/sockets.rs AUTH_TIMEOUT). */
const AUTH_TIMEOUT_MS = 5000;

let skip = cannotBlockUdp();
let blocked = null;
if (!skip) {
  try {
    blocked = new UdpBlockedUser().create();
  } catch (e) {
    // A user namespace (scripts/test when not root) can neither add users nor switch to them.
    skip = `cannot run a browser as a user whose UDP is dropped: ${e.message}`;
  }
}
after(() => blocked?.destroy());

// Nothing starts when the test cannot run.
const ctx = skip ? null : useServerAndBrowser('za-ice-tcp', SLOT);
let noUdpBrowser = null;
before(async () => {
  if (!blocked) return;
  noUdpBrowser = await launchBrowser('za-ice-tcp-noudp', {
    executablePath: blocked.chromiumWrapper(CHROMIUM_PATH),
    owner: blocked.owner,
  });
});
after(async () => noUdpBrowser?.close());

/** The selected ICE pair of one of `key`'s peer connections, as its browser reports it. */
async function selectedPair(page, key, pc) {
  return page.evaluate(async ([k, which]) => {
    const report = await T.room(k)[which].getStats();
    const byId = new Map();
    report.forEach((s) => byId.set(s.id, s));
    let pairId = null;
    report.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId; });
    const pair = byId.get(pairId);
    if (!pair) return null;
    const side = (c) => c && { protocol: c.protocol, type: c.candidateType, tcpType: c.tcpType ?? null, port: c.port };
    return { state: pair.state, local: side(byId.get(pair.localCandidateId)), remote: side(byId.get(pair.remoteCandidateId)) };
  }, [key, pc]);
}

/** Opens a TCP connection to the ICE-TCP port, writes `bytes`, and resolves with the ms until the server closes it. */
function closedAfter(bytes) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const socket = net.connect({ host: '127.0.0.1', port: tcpPort }, () => {
      if (bytes.length) socket.write(bytes);
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`still open after 20 s (wrote ${bytes.length} bytes)`));
    }, 20_000);
    socket.on('data', () => {});
    socket.on('error', () => {}); // a reset closes it too
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - t0);
    });
  });
}

let bob = null;
let bobVideo = null;

test('a browser whose UDP is blocked joins over ICE-TCP, and video decodes both ways', { skip: skip ?? false }, async () => {
  const alice = await ctx.page('alice');
  await alice.evaluate((room) => T.join('a', { room, identity: 'alice', publish: true }), ROOM);
  bob = await noUdpBrowser.openPage(ctx.server.httpUrl, 'bob');
  await bob.evaluate((room) => T.join('b', {
    room, identity: 'bob', publish: { video: { width: 640, height: 360, frameRate: 30 }, simulcast: false },
  }), ROOM);

  [bobVideo] = (await waitForTracks(bob, 'b', ['video'], 60_000)).filter((t) => t.kind === 'video');
  const decoded = await waitRising(bob, 'b', { more: 30, timeoutMs: 60_000 });
  assert.ok(decoded.frameWidth > 0, 'bob decodes alice');
  await waitForTracks(alice, 'a', ['video'], 60_000);
  await waitRising(alice, 'a', { more: 30, timeoutMs: 60_000 });

  for (const pc of ['subscriberPc', 'publisherPc']) {
    const pair = await selectedPair(bob, 'b', pc);
    assert.ok(pair, `bob's ${pc} has a selected pair`);
    assert.equal(pair.local.protocol, 'tcp', `bob's ${pc}: local candidate over TCP (${JSON.stringify(pair)})`);
    assert.equal(pair.remote.protocol, 'tcp');
    assert.equal(pair.remote.port, tcpPort, 'the server\'s passive TCP candidate');
    assert.equal(pair.state, 'succeeded');
  }
  const alicePair = await selectedPair(alice, 'a', 'subscriberPc');
  assert.equal(alicePair.local.protocol, 'udp', 'alice, who can, stays on UDP (TCP ranks lower)');

  assert.ok(blocked.droppedPackets() > 0, 'bob\'s browser did try UDP, and it was dropped');
  const url = ctx.server.httpUrl;
  assert.ok(await metric(url, 'sfu_tcp_authenticated_total') >= 2, 'both of bob\'s connections proved themselves');
  assert.ok(await metric(url, 'sfu_tcp_connections', ['state="authenticated"']) >= 2);
  assert.ok(await metric(url, 'sfu_tcp_frames_received_total') > 100);
});

test('peers that are not WebRTC clients are closed, counted, and bob\'s video goes on', { skip: skip ?? false }, async () => {
  assert.ok(bob && bobVideo, 'needs the first test\'s session');
  const url = ctx.server.httpUrl;
  const closes = async (reason) => metric(url, 'sfu_tcp_closed_total', [`reason="${reason}"`]);
  const before = { notStun: await closes('not_stun'), oversized: await closes('oversized'), timeout: await closes('auth_timeout') };

  await bob.evaluate(([k, id]) => T.startSampler(k, id, 100), ['b', bobVideo.trackId]);
  await sleep(1000);
  // Garbage in a well-formed frame (16 bytes, not STUN). Unframed text would read as a length.
  const garbage = closedAfter(Buffer.concat([Buffer.from([0x00, 0x10]), Buffer.from('not a stun check')]));
  // A 64 KiB frame: its length says 65535, and some of it follows.
  const oversized = closedAfter(Buffer.concat([Buffer.from([0xff, 0xff]), Buffer.alloc(4096, 0x80)]));
  const silent = closedAfter(Buffer.alloc(0));
  const [garbageMs, oversizedMs, silentMs] = await Promise.all([garbage, oversized, silent]);
  await sleep(1000);
  const samples = await bob.evaluate((k) => T.stopSampler(k), 'b');

  assert.ok(garbageMs < 2000, `garbage closed at once (${garbageMs} ms)`);
  assert.ok(oversizedMs < 2000, `the 64 KiB frame closed at once (${oversizedMs} ms)`);
  assert.ok(silentMs >= AUTH_TIMEOUT_MS - 500 && silentMs < AUTH_TIMEOUT_MS + 5000,
    `the silent peer closed by the timeout (${silentMs} ms)`);
  assert.equal(await closes('not_stun'), before.notStun + 1);
  assert.equal(await closes('oversized'), before.oversized + 1);
  assert.equal(await closes('auth_timeout'), before.timeout + 1);

  const stall = longestStall(samples);
  assert.ok(samples.length > 40, `sampled bob's video (${samples.length} samples)`);
  assert.ok(stall.ms < 1000, `bob's video kept decoding (longest gap ${Math.round(stall.ms)} ms)`);
  assert.equal((await selectedPair(bob, 'b', 'subscriberPc')).local.protocol, 'tcp');
});

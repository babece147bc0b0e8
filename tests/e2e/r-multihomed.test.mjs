// A publisher on a machine with three addresses (three links, each its own /30, into the
// server's namespace). Its browser gathers a host candidate on each and runs ICE checks from all
// of them; a check from another address must not take the connection's media away from the
// path it is on. The server counts no unroutable datagram and no SRTP replay, a subscriber
// decodes its first frame within 1 s of connecting, and the publisher encodes all three layers
// within 10 s of publishing.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { useServerAndBrowser, longestStall } from './lib/harness.mjs';
import { launchBrowser, CHROMIUM_PATH } from './lib/browser.mjs';
import { PeerNamespace } from './lib/netns.mjs';
import { poll, sleep, portsFor } from './lib/server.mjs';
import { metric, replayRefusals, waitEncodedWidths, lostConnections, checks } from './lib/ingress.mjs';

const ROOM = 'multihomed';
const SLOT = 18;
const LINKS = 3;
const HOLD_AFTER_CONNECT_MS = 32_000;
const hostAddr = (i) => `10.78.${i}.1`;
const peerAddr = (i) => `10.78.${i}.2`;

const ns = new PeerNamespace('r', { hostAddr: hostAddr(0), peerAddr: peerAddr(0) }).create();
after(() => ns.destroy());
const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const inPeer = (cmd) => execFileSync('ip', ['netns', 'exec', ns.name, 'sh', '-c', cmd], { stdio: ['ignore', 'ignore', 'pipe'] });
// Links 1.. join the same two namespaces (the veth pairs go with the peer namespace when it is
// deleted). Each peer address sends through its own link (source routing), as a laptop on
// Ethernet and Wi-Fi would, so the server sees each check arrive from a different address.
for (let i = 1; i < LINKS; i++) {
  const hostDev = `vh-r${i}`;
  const peerDev = `vp-r${i}`;
  ip('link', 'add', hostDev, 'type', 'veth', 'peer', 'name', peerDev, 'netns', ns.name);
  ip('addr', 'add', `${hostAddr(i)}/30`, 'dev', hostDev);
  ip('link', 'set', hostDev, 'up');
  ip('-n', ns.name, 'addr', 'add', `${peerAddr(i)}/30`, 'dev', peerDev);
  ip('-n', ns.name, 'link', 'set', peerDev, 'up');
  ip('-n', ns.name, 'rule', 'add', 'from', peerAddr(i), 'table', String(100 + i));
  ip('-n', ns.name, 'route', 'add', hostAddr(0), 'via', hostAddr(i), 'dev', peerDev, 'table', String(100 + i));
}
inPeer('for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > $f; done');
ns.settle();

// The server binds the first link's host address; pages are not on localhost, so Chromium is
// told to treat that origin as secure (getUserMedia needs it).
const secureOrigin = `--unsafely-treat-insecure-origin-as-secure=http://${hostAddr(0)}:${portsFor(SLOT).httpPort}`;
const ctx = useServerAndBrowser('r-multihomed', SLOT, {
  host: hostAddr(0),
  // Dev mode (the dev token endpoint) on a non-loopback address must be asked for explicitly.
  env: { SFU_DEV: 'true' },
  browserOptions: { extraArgs: [secureOrigin] },
});

/** The host candidates' addresses in a pc's local description. */
async function hostCandidates(page) {
  const sdp = await page.evaluate(() => T.room('p').publisherPc.localDescription.sdp);
  return [...new Set(sdp.split(/\r?\n/).filter((l) => l.startsWith('a=candidate:') && / typ host/.test(l))
    .map((l) => l.split(' ')[4]))];
}

/** A pc's ICE pairs as its browser has them: {local, state, nominated, selected, ...}. */
async function icePairs(page, key, pc) {
  return page.evaluate(async ([k, which]) => {
    const report = await T.room(k)[which].getStats();
    const byId = new Map();
    report.forEach((s) => byId.set(s.id, s));
    let selected = null;
    report.forEach((s) => { if (s.type === 'transport') selected = s.selectedCandidatePairId; });
    const pairs = [];
    report.forEach((s) => {
      if (s.type !== 'candidate-pair') return;
      const local = byId.get(s.localCandidateId);
      pairs.push({ local: local?.address, state: s.state, nominated: !!s.nominated, selected: s.id === selected,
        requestsSent: s.requestsSent, responsesReceived: s.responsesReceived });
    });
    return pairs;
  }, [key, pc]);
}

/** Reads a counter every 250 ms in the background; stop() returns each change as {at, value}. */
function watchCounter(url, name) {
  const w = { startedAt: Date.now(), connectedAt: null, changes: [], last: null };
  const timer = setInterval(async () => {
    try {
      const value = await metric(url, name);
      if (value !== w.last) w.changes.push({ at: Date.now(), value });
      w.last = value;
    } catch {}
  }, 250);
  timer.unref();
  w.stop = () => {
    clearInterval(timer);
    return w.changes;
  };
  return w;
}

test('a multihomed publisher: no unroutable media, no replays, first frame in 1 s, layers in 10 s', { timeout: 150_000 }, async () => {
  const url = ctx.server.httpUrl;
  const peer = await launchBrowser('r-multihomed-peer', { executablePath: ns.chromiumWrapper(CHROMIUM_PATH), extraArgs: [secureOrigin] });
  after(() => peer.close());
  const unroutableAtStart = await metric(url, 'sfu_unroutable_datagrams_total');

  const pub = await peer.openPage(url, 'pub');
  // A page with a live capture gathers candidates on every interface, not only the default
  // route's: capture first (what publish() would ask for), join, then publish that capture.
  await pub.evaluate(async () => {
    window.capture = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } }, audio: true,
    });
  });
  const unroutableLog = watchCounter(url, 'sfu_unroutable_datagrams_total');
  const joining = pub.evaluate((room) => T.join('p', { room, identity: 'alice' }), ROOM);
  await poll(async () => (await pub.evaluate(() => T.rooms.p?.publisherPc?.connectionState)) === 'connected',
    { timeoutMs: 20_000, intervalMs: 50, what: 'publisher pc connected' });
  unroutableLog.connectedAt = Date.now();
  const unroutableAtConnect = await metric(url, 'sfu_unroutable_datagrams_total') - unroutableAtStart;
  await sleep(1000);
  const unroutableFirstSecond = await metric(url, 'sfu_unroutable_datagrams_total') - unroutableAtStart;
  await joining;
  const candidates = await hostCandidates(pub);
  console.log(`publisher host candidates: ${candidates.join(' ')}`);
  console.log(`unroutable datagrams: ${unroutableAtConnect} by the publisher pc's 'connected', ${unroutableFirstSecond} one second later`);

  const publishAt = Date.now();
  await pub.evaluate(() => T.room('p').publish({ stream: window.capture }));
  const layersMs = await waitEncodedWidths(pub, [320, 640, 1280], { since: publishAt, timeoutMs: 30_000 - (Date.now() - publishAt) });
  console.log(`publisher encodes 320+640+1280 ${layersMs ?? 'never (30 s)'} ms after publish()`);

  // The subscriber joins once the layers flow (or that wait gave up): a joiner arriving while
  // the publisher still starts a layer waits for it to count as silent, which is not routing.
  const sub = await ctx.page('sub');
  await sub.evaluate((room) => T.join('s', { room, identity: 'bob' }), ROOM);
  const first = await sub.evaluate(() => T.firstFrame('s', 15_000));
  const firstFrameMs = first && first.tConnected !== null ? first.tFrame - first.tConnected : null;
  console.log(first ? `subscriber: first frame ${Math.round(firstFrameMs)} ms after its pc connected (${first.width} px)` : 'subscriber: no frame in 15 s');

  // The session goes on past the browsers' second round of checks on the pairs they did not
  // select (about 25 s after connecting here), which come from the other addresses.
  const video = (await sub.evaluate(() => T.tracks('s', 'video')))[0];
  if (video) await sub.evaluate((id) => T.startSampler('s', id, 100), video.trackId);
  await sleep(Math.max(10_000, unroutableLog.connectedAt + HOLD_AFTER_CONNECT_MS - Date.now()));
  const samples = video ? await sub.evaluate(() => T.stopSampler('s')) : [];
  const stall = longestStall(samples);
  const pairs = await icePairs(pub, 'p', 'publisherPc');
  const subscriberPairs = await icePairs(sub, 's', 'subscriberPc');
  const unroutable = await metric(url, 'sfu_unroutable_datagrams_total') - unroutableAtStart;
  const received = await metric(url, 'sfu_received_packets_total');
  const replays = await replayRefusals(ctx.server);
  const connectedAt = unroutableLog.connectedAt ?? unroutableLog.startedAt;
  const rises = unroutableLog.stop().map((r) => `${((r.at - connectedAt) / 1000).toFixed(1)}s:${r.value}`);
  console.log(`publisher pairs: ${JSON.stringify(pairs)}`);
  // The test namespace has an address per link too, so the subscriber's checks come from several.
  console.log(`subscriber pairs: ${JSON.stringify(subscriberPairs)}`);
  console.log(`unroutable datagrams counted by time after the publisher connected: ${rises.join(' ') || 'none'}`);
  console.log(`whole session: ${unroutable} unroutable datagrams, ${received} published packets received, ` +
    `${replays.count} SRTP replay refusals (${replays.source}; ${replays.logged} in the log); ` +
    `subscriber's longest stall after its first frame ${Math.round(stall.ms)} ms; ` +
    `server-side connections lost: ${lostConnections(ctx.server.logFile).join(', ') || 'none'}`);

  // The setup itself, without which nothing below means anything.
  assert.ok(candidates.filter((a) => a.startsWith('10.78.')).length >= LINKS,
    `the publisher gathered host candidates ${candidates.join(' ')}, not one per link`);
  const check = checks();
  check(unroutable === 0, `${unroutable} datagrams the server could not route to a connection`);
  check(replays.count === 0, `${replays.count} SRTP replay refusals (${replays.source})`);
  check(firstFrameMs !== null && firstFrameMs <= 1000, `subscriber's first frame ${firstFrameMs === null ? 'never' : `${Math.round(firstFrameMs)} ms`} after connecting`);
  check(layersMs !== null && layersMs <= 10_000, `publisher encoded all three layers after ${layersMs} ms`);
  check(stall.ms <= 1000, `subscriber stalled for ${Math.round(stall.ms)} ms`);
  check.assertAll();
});

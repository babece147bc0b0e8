// TURN for clients whose networks block UDP (issue 20, test b). A publisher page joins as usual
// (host candidates, UDP); a viewer page joins with `iceTransportPolicy: 'relay'`, so its browser
// uses nothing but relay candidates from the TURN servers and credentials of `joined.ice_servers`,
// and must decode the publisher's video through:
//   1. the embedded TURN server over UDP,
//   2. the embedded TURN server over TCP,
//   3. Debian's coturn (use-auth-secret with the server's turn.secret), over UDP.
// Each case steers the browser with nftables rules in the test's network namespace that drop its
// packets to the TURN listeners it must not use (the servers' own traffic leaves from those ports,
// never to them). getStats: the viewer's selected pair has a local `relay` candidate with the
// expected `relayProtocol`, gathered from the expected server URL.
// Then test f's TURN part against the same server: a hand-made client's Allocate with an expired
// or a forged credential gets 401, a permission for anything but the node's media sockets 403,
// and TCP clients sending garbage or a 64 KiB frame are closed while others are served.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import net from 'node:net';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { useServerAndBrowser, waitDecoding } from './lib/harness.mjs';
import { poll, portsFor, sleep } from './lib/server.mjs';
import { metric } from './lib/ingress.mjs';
import { UdpTurnClient, allocate, createPermission, restCredential } from './lib/turn-client.mjs';

const SLOT = 30;
const ROOM = 'turn';
const SECRET = 'zb-turn-test-secret-0123456789';
// Inside this slot's port block (20000 + 100 * slot ..): shards from its start, then TURN.
const BASE = portsFor(SLOT).udpPortStart;
const EMBEDDED_PORT = BASE + 90;
const COTURN_PORT = BASE + 91;
const EMBEDDED_URL_UDP = `turn:127.0.0.1:${EMBEDDED_PORT}?transport=udp`;
const EMBEDDED_URL_TCP = `turn:127.0.0.1:${EMBEDDED_PORT}?transport=tcp`;
const COTURN_URL = `turn:127.0.0.1:${COTURN_PORT}?transport=udp`;
const NFT_TABLE = 'zbturn';

const ctx = useServerAndBrowser('zb-turn', SLOT, {
  env: {
    // Two shards whatever the machine: the TURN ports below sit in this slot's block after them.
    SFU_RTC__SHARDS: '2',
    SFU_TURN__SECRET: SECRET,
    SFU_TURN__ENABLED: 'true',
    SFU_TURN__UDP_PORT: String(EMBEDDED_PORT),
    SFU_TURN__TCP_PORT: String(EMBEDDED_PORT),
    SFU_TURN__RELAY_PORT_MIN: String(BASE + 40),
    SFU_TURN__RELAY_PORT_MAX: String(BASE + 59),
    SFU_TURN__URLS: COTURN_URL,
  },
});

/** Debian's coturn, started here with the server's secret; no config file, no service. */
let coturn = null;
let coturnDir = null;
before(async () => {
  coturnDir = mkdtempSync(path.join(os.tmpdir(), 'zb-coturn-'));
  coturn = spawn('turnserver', [
    '-n', '--listening-ip=127.0.0.1', '--relay-ip=127.0.0.1', `--listening-port=${COTURN_PORT}`,
    `--min-port=${BASE + 60}`, `--max-port=${BASE + 79}`,
    '--use-auth-secret', `--static-auth-secret=${SECRET}`, '--realm=sfu',
    '--allow-loopback-peers', '--no-tls', '--no-dtls', '--no-cli', '--fingerprint',
    `--pidfile=${coturnDir}/turnserver.pid`, `--userdb=${coturnDir}/turndb`,
    `--log-file=${coturnDir}/coturn.log`, '--simple-log', '--no-stdout-log',
  ], { stdio: 'ignore' });
  coturn.on('error', (e) => console.log(`turnserver: ${e.message}`));
  // Listening once it answers a STUN binding request.
  await poll(() => stunAnswers(COTURN_PORT), { timeoutMs: 10_000, what: `coturn on ${COTURN_PORT}` });
});

after(() => {
  nft(['delete', 'table', 'inet', NFT_TABLE], true);
  coturn?.kill('SIGTERM');
  if (coturnDir && existsSync(coturnDir)) rmSync(coturnDir, { recursive: true, force: true });
});

/** Whether a STUN server answers a binding request on 127.0.0.1:`port`. */
async function stunAnswers(port) {
  const dgram = await import('node:dgram');
  const socket = dgram.createSocket('udp4');
  const request = Buffer.alloc(20);
  request.writeUInt16BE(0x0001, 0);
  request.writeUInt32BE(0x2112a442, 4);
  for (let i = 8; i < 20; i++) request[i] = i;
  try {
    return await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 500);
      socket.once('message', (m) => { clearTimeout(timer); resolve(m.readUInt16BE(0) === 0x0101); });
      socket.send(request, port, '127.0.0.1');
    });
  } finally {
    socket.close();
  }
}

function nft(args, quiet = false) {
  try {
    execFileSync('nft', args, { stdio: ['ignore', 'ignore', quiet ? 'ignore' : 'pipe'] });
  } catch (e) {
    if (!quiet) throw e;
  }
}

/** Drops packets to the given `udp`/`tcp` destination ports (replacing earlier rules). */
function blockDestinations(rules) {
  nft(['delete', 'table', 'inet', NFT_TABLE], true);
  nft(['add', 'table', 'inet', NFT_TABLE]);
  nft(['add', 'chain', 'inet', NFT_TABLE, 'out', '{ type filter hook output priority 0 ; }']);
  for (const [proto, port] of rules) nft(['add', 'rule', 'inet', NFT_TABLE, 'out', proto, 'dport', String(port), 'drop']);
}

/** The local candidate of the selected pair of `key`'s subscriber connection. */
async function selectedLocalCandidate(page, key) {
  return page.evaluate(async (k) => {
    const report = await T.room(k).subscriberPc.getStats();
    const byId = new Map();
    report.forEach((s) => byId.set(s.id, s));
    let pairId = null;
    report.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId; });
    const pair = pairId && byId.get(pairId);
    const local = pair && byId.get(pair.localCandidateId);
    return local ? { candidateType: local.candidateType, relayProtocol: local.relayProtocol, url: local.url, address: local.address } : null;
  }, key);
}

let publisher = null;
let viewers = 0;

/** Joins a relay-only viewer and checks it decodes through `url` with `relayProtocol`. */
async function viewThrough({ name, url, relayProtocol }) {
  const page = await ctx.page(`viewer-${name}`);
  const key = `v${++viewers}`;
  await page.evaluate(([k, room, id]) => T.join(k, { room, identity: id, options: { iceTransportPolicy: 'relay' } }),
    [key, ROOM, `viewer-${name}`]);
  const offered = await page.evaluate((k) => T.room(k).subscriberPc?.getConfiguration().iceServers ?? [], key);
  const first = await waitDecoding(page, key, { timeoutMs: 45_000 });
  const later = await waitDecoding(page, key, { frames: first.framesDecoded + 30, timeoutMs: 30_000 });
  const local = await poll(() => selectedLocalCandidate(page, key), { timeoutMs: 10_000, what: 'a selected pair' });
  console.log(`${name}: ${later.framesDecoded} frames decoded (${later.frameWidth}x${later.frameHeight}); ` +
    `selected local candidate ${JSON.stringify(local)}`);
  await page.evaluate((k) => T.room(k).leave(), key);
  await page.close();
  return { local, offered };
}

test('relay-only viewers decode through the embedded TURN (UDP, TCP) and through coturn', { timeout: 300_000 }, async () => {
  const httpUrl = ctx.server.httpUrl;
  publisher = await ctx.page('publisher');
  await publisher.evaluate((room) => T.join('p', { room, identity: 'publisher', publish: { video: true, audio: false } }), ROOM);

  // 1. Embedded, UDP: its TCP listener and coturn are out of reach.
  blockDestinations([['tcp', EMBEDDED_PORT], ['udp', COTURN_PORT]]);
  const allocationsBefore = await metric(httpUrl, 'sfu_turn_allocations_total');
  const udp = await viewThrough({ name: 'embedded-udp' });
  // The server's turn.secret credentials, the embedded server first, then coturn.
  assert.deepEqual(udp.offered.map((s) => s.urls), [[EMBEDDED_URL_UDP, EMBEDDED_URL_TCP], [COTURN_URL]]);
  assert.match(udp.offered[0].username, /^\d+:viewer-embedded-udp$/);
  assert.equal(udp.offered[0].credential, udp.offered[1].credential);
  assert.equal(udp.local.candidateType, 'relay');
  assert.equal(udp.local.relayProtocol, 'udp');
  assert.equal(udp.local.url, EMBEDDED_URL_UDP);

  // 2. Embedded, TCP: UDP to every TURN server is dropped.
  blockDestinations([['udp', EMBEDDED_PORT], ['udp', COTURN_PORT]]);
  const tcp = await viewThrough({ name: 'embedded-tcp' });
  assert.equal(tcp.local.candidateType, 'relay');
  assert.equal(tcp.local.relayProtocol, 'tcp');
  assert.equal(tcp.local.url, EMBEDDED_URL_TCP);
  const allocations = await poll(async () => {
    const n = await metric(httpUrl, 'sfu_turn_allocations_total') - allocationsBefore;
    return n >= 2 && n;
  }, { timeoutMs: 5_000, what: 'sfu_turn_allocations_total to count the viewers' });
  const toClients = await metric(httpUrl, 'sfu_turn_relayed_bytes_total', ['direction="to_client"']);
  console.log(`embedded TURN: ${allocations} allocations, ${toClients} bytes relayed to clients`);
  assert.ok(toClients > 20_000, `video went through the embedded relay (${toClients} bytes)`);

  // 3. coturn, with the same credentials: the embedded server is out of reach.
  blockDestinations([['udp', EMBEDDED_PORT], ['tcp', EMBEDDED_PORT]]);
  const viaCoturn = await viewThrough({ name: 'coturn' });
  assert.equal(viaCoturn.local.candidateType, 'relay');
  assert.equal(viaCoturn.local.relayProtocol, 'udp');
  assert.equal(viaCoturn.local.url, COTURN_URL);

  // The permission rule held: every peer the browsers asked for was one of ours.
  assert.equal(await metric(httpUrl, 'sfu_turn_refused_peers_total'), 0);
  nft(['delete', 'table', 'inet', NFT_TABLE], true);
  await sleep(100);
});

/** Whether the server closes a TCP connection to the embedded TURN after it is sent `bytes`. */
function closedAfter(bytes) {
  return new Promise((resolve) => {
    const socket = net.connect(EMBEDDED_PORT, '127.0.0.1', () => socket.write(bytes));
    const timer = setTimeout(() => { socket.destroy(); resolve(false); }, 5000);
    socket.on('error', () => {}); // a reset while writing: closed too
    socket.on('close', () => { clearTimeout(timer); resolve(true); });
    socket.on('data', () => {});
  });
}

test('the embedded TURN refuses expired and forged credentials (401) and foreign peers (403), closes bad TCP clients', { timeout: 60_000 }, async () => {
  nft(['delete', 'table', 'inet', NFT_TABLE], true);
  const httpUrl = ctx.server.httpUrl;
  const failures = async (reason) => metric(httpUrl, 'sfu_turn_auth_failures_total', [`reason="${reason}"`]);
  const before = { expired: await failures('expired'), rejected: await failures('rejected'),
    refused: await metric(httpUrl, 'sfu_turn_refused_peers_total'),
    badInput: await metric(httpUrl, 'sfu_turn_connections_closed_total', ['reason="bad_input"']) };
  const client = new UdpTurnClient(EMBEDDED_PORT);
  try {
    const challenge = await client.ask(allocate());
    assert.equal(challenge?.error, 401, 'an Allocate without credentials is challenged');
    const { realm, nonce } = challenge;
    const now = Math.floor(Date.now() / 1000);
    const expired = { ...restCredential(SECRET, 'mallory', now - 60), realm, nonce };
    assert.equal((await client.ask(allocate(expired)))?.error, 401, 'expired credential');
    const forged = { ...restCredential('not-the-server-secret', 'mallory', now + 600), realm, nonce };
    assert.equal((await client.ask(allocate(forged)))?.error, 401, 'credential minted with another secret');
    const good = { ...restCredential(SECRET, 'tester', now + 600), realm, nonce };
    const ok = await client.ask(allocate(good));
    assert.equal(ok?.error, null, 'a credential of the server\'s secret allocates');
    assert.match(ok.relayed, /^127\.0\.0\.1:\d+$/);
    // Never an open relay: coturn's port, a closed port, the HTTP port are all refused.
    for (const port of [COTURN_PORT, 9, portsFor(SLOT).httpPort]) {
      assert.equal((await client.ask(createPermission('127.0.0.1', port, good)))?.error, 403, `peer 127.0.0.1:${port}`);
    }
    assert.equal((await client.ask(createPermission('127.0.0.1', BASE, good)))?.error, null, 'the first shard');

    // Bad TCP clients are closed; the UDP client above is still served.
    assert.ok(await closedAfter(Buffer.from('GET / HTTP/1.1\r\nHost: turn\r\n\r\n')), 'garbage closes');
    const oversized = Buffer.alloc(4 + 65532, 7);
    oversized.set([0x40, 0x00, 0xff, 0xfc]);
    assert.ok(await closedAfter(oversized), 'a 64 KiB frame closes');
    assert.equal((await client.ask(createPermission('127.0.0.1', BASE, good)))?.error, null, 'still served');
  } finally {
    client.close();
  }
  // The counters reach /metrics within a second.
  await poll(async () => (await failures('expired')) - before.expired === 1
    && (await failures('rejected')) - before.rejected === 1
    && (await metric(httpUrl, 'sfu_turn_refused_peers_total')) - before.refused === 3
    && (await metric(httpUrl, 'sfu_turn_connections_closed_total', ['reason="bad_input"'])) - before.badInput === 2,
  { timeoutMs: 5_000, what: 'sfu_turn_* counters: 1 expired, 1 rejected, 3 refused peers, 2 bad connections' });
});

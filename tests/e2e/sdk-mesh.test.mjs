// The SDK's mesh connections in a real Chromium without the SFU: two MeshTransports in one page,
// an in-page relay standing in for the server's `peer_signal`. Checks that a signal numbered for
// another connection is dropped (a late one of the connection before an SFU spell must not
// reach the new one), and that when the pair meets again with a new connection number both
// sides open new RTCPeerConnections, which decode each other's video even though the old
// connection's signals are delivered to them late; and that the two tell each other (switch
// notes) when they moved to the mesh; and that a new pair's first offer comes from the impolite
// side only (a glare there could leave Chromium with no candidate for the polite side's answer),
// the polite side offering itself only when none came in time.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser } from './lib/browser.mjs';
import { serveWeb } from './lib/static.mjs';
import { poll } from './lib/server.mjs';

let web;
let browser;
let page;

before(async () => {
  web = await serveWeb();
  browser = await launchBrowser('sdk-mesh');
  page = await browser.openPage(web.url, 'mesh');
  await page.evaluate(async () => {
    const { MeshPeer } = await import('/sdk/mesh-negotiation.js');
    const { MeshTransport } = await import('/sdk/mesh-transport.js');
    const canvas = Object.assign(document.createElement('canvas'), { width: 160, height: 120 });
    const ctx2d = canvas.getContext('2d');
    let n = 0;
    setInterval(() => { ctx2d.fillStyle = `hsl(${(n += 7) % 360} 80% 50%)`; ctx2d.fillRect(0, 0, 160, 120); }, 33);
    const track = canvas.captureStream(30).getVideoTracks()[0];
    const log = [];
    /** All peer_signals each side sent, in order, as the server would relay them. */
    const sent = { A: [], B: [] };
    const sides = {};
    const make = (me, other) => new MeshTransport({}, {
      send: (m) => {
        const relayed = { type: 'peer_signal', from: me, connection: m.connection, description: m.description,
          candidate: m.candidate, tracks: m.tracks, moved: m.moved };
        sent[me].push(relayed);
        setTimeout(() => sides[other].handle(relayed), 5);
        return true;
      },
      emit: () => {},
      log: (level, ...args) => log.push(`${me} ${level} ${args.map(String).join(' ')}`),
      localTracks: () => [{ track, source: 'camera' }],
      setSfuSending: async () => {},
      sfuTracks: () => new Map(),
      participant: () => undefined,
    });
    sides.A = make('A', 'B');
    sides.B = make('B', 'A');
    const decoded = async (side, peer) => {
      let frames = 0;
      const pc = sides[side].peers.get(peer)?.pc;
      (await pc?.getStats())?.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded ?? 0; });
      return frames;
    };
    window.MESH = { MeshPeer, sides, sent, log, decoded, track };
  });
});

after(async () => {
  await browser?.close();
  await web?.close();
});

test('a MeshPeer drops a signal numbered for another connection and applies its own', async () => {
  const out = await page.evaluate(async () => {
    const offerer = new RTCPeerConnection();
    offerer.addTransceiver('video');
    await offerer.setLocalDescription();
    const sent = [];
    const peer = new MESH.MeshPeer('X', true, 4, {}, {
      send: (m) => { sent.push(m); return true; }, sourceOf: () => 'camera', remoteTrack: () => {}, log: () => {},
    });
    const offer = offerer.localDescription.toJSON();
    await peer.onSignal({ type: 'peer_signal', from: 'X', connection: 2, description: offer });
    const afterStale = { state: peer.pc.signalingState, sent: sent.length };
    await peer.onSignal({ type: 'peer_signal', from: 'X', connection: 4, description: offer });
    const answers = sent.filter((m) => m.description?.type === 'answer').map((m) => m.connection);
    peer.close();
    offerer.close();
    return { afterStale, answers };
  });
  assert.deepEqual(out.afterStale, { state: 'stable', sent: 0 }, 'the stale offer was applied');
  assert.deepEqual(out.answers, [4], 'one answer, numbered for the connection');
});

test('a polite MeshPeer offers itself when the first offer does not come', async () => {
  const out = await page.evaluate(async () => {
    const sent = [];
    const peer = new MESH.MeshPeer('Y', true, 1, {}, {
      send: (m) => { sent.push(m); return true; }, sourceOf: () => 'camera', remoteTrack: () => {}, log: () => {},
    });
    peer.addLocal(MESH.track);
    const offers = () => sent.filter((m) => m.description).map((m) => m.description.type);
    await new Promise((r) => setTimeout(r, 1000));
    const early = offers();
    await new Promise((r) => setTimeout(r, 3000));
    const late = offers();
    peer.close();
    return { early, late };
  });
  assert.deepEqual(out.early, [], 'the polite side offered before its wait was over');
  assert.deepEqual(out.late, ['offer'], 'the polite side never offered');
});

test('meeting again after an SFU spell: new connections on both sides, the old one\'s late signals dropped', { timeout: 90_000 }, async () => {
  const topology = (mode, connection) => page.evaluate(([m, c]) => {
    const peers = (other, polite) => (m === 'mesh' ? [{ participant_id: other, polite, connection: c }] : []);
    MESH.sides.A.onTopology({ type: 'topology', mode: m, peers: peers('B', false) });
    MESH.sides.B.onTopology({ type: 'topology', mode: m, peers: peers('A', true) });
  }, [mode, connection]);
  const decoding = (what) => poll(async () => {
    const before = await page.evaluate(async () => [await MESH.decoded('A', 'B'), await MESH.decoded('B', 'A')]);
    await new Promise((r) => setTimeout(r, 300));
    const after = await page.evaluate(async () => [await MESH.decoded('A', 'B'), await MESH.decoded('B', 'A')]);
    return after[0] > before[0] && after[1] > before[1] && after;
  }, { timeoutMs: 30_000, intervalMs: 100, what });

  await topology('mesh', 2);
  await decoding('the first connection decoding both ways');
  // Both sides added their tracks at once; only the impolite side (A) offered: no glare.
  const firsts = await page.evaluate(() => ['A', 'B'].map((k) => MESH.sent[k].find((m) => m.description)?.description.type));
  assert.deepEqual(firsts, ['offer', 'answer'], 'the polite side offered before the first offer came');
  // Each side told the other that it shows the mesh.
  const heard = await page.evaluate(() => Promise.all([
    MESH.sides.A.peers.get('B').notes.heard('mesh', 10_000, () => false),
    MESH.sides.B.peers.get('A').notes.heard('mesh', 10_000, () => false),
  ]));
  assert.deepEqual(heard, [true, true], 'a switch note was not heard');
  // An SFU spell shorter than the switch's grace: the old connections are still open when the
  // pair meets again, as connection 4.
  await topology('sfu', 0);
  await page.evaluate(() => { MESH.old = { A: MESH.sides.A.peers.get('B').pc, B: MESH.sides.B.peers.get('A').pc }; MESH.oldSent = { A: MESH.sent.A.length, B: MESH.sent.B.length }; });
  await topology('mesh', 4);
  const replaced = await page.evaluate(() => ({
    a: MESH.sides.A.peers.get('B').pc !== MESH.old.A && MESH.old.A.signalingState === 'closed',
    b: MESH.sides.B.peers.get('A').pc !== MESH.old.B && MESH.old.B.signalingState === 'closed',
  }));
  assert.deepEqual(replaced, { a: true, b: true }, 'an old connection was reused');
  // Late signals of connection 2 (its offer, answer and candidates) reach the new connections.
  await page.evaluate(() => {
    for (const m of MESH.sent.A.slice(0, MESH.oldSent.A)) MESH.sides.B.handle(m);
    for (const m of MESH.sent.B.slice(0, MESH.oldSent.B)) MESH.sides.A.handle(m);
  });
  const frames = await decoding('connection 4 decoding both ways');
  const log = await page.evaluate(() => MESH.log);
  assert.ok(log.some((l) => l.includes('dropped a signal of connection 2')), log.join('\n'));
  assert.ok(!log.some((l) => / warn /.test(l)), `warnings: ${log.filter((l) => / warn /.test(l)).join('\n')}`);
  console.log(`connection 4 decoding: ${JSON.stringify(frames)}`);
  await page.evaluate(() => { MESH.sides.A.close(); MESH.sides.B.close(); });
});

// Checks web/sdk.js in a real Chromium without the SFU: the page's WebSocket is replaced by a fake
// signaling server whose "media server" is a pair of local RTCPeerConnections. Covers the publish path
// (3 simulcast encodings q/h/f from the fake camera, the track descriptions in the offer), the data
// channel, the subscriber path (server offer -> trackSubscribed -> frames decoded -> trackUnsubscribed),
// out-of-order room events, resume with an ICE restart, and a cluster's URL list: redirects
// followed, a node that is down skipped, a lost session (4404) joined again elsewhere and a
// draining node's redirect, each publishing the same tracks again.

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
  browser = await launchBrowser('sdk-selfcheck');
  page = await browser.openPage(web.url, 'selfcheck');
  await page.evaluate(installFakeServer);
});

after(async () => {
  await browser?.close();
  await web?.close();
});

// Runs in the page: window.FAKE is a fake SFU behind a fake WebSocket class.
function installFakeServer() {
  const FAKE = {
    sockets: [],
    fromClient: [],
    pubRemote: null, // plays the server's end of the client's publisher pc
    subRemote: null, // plays the server's end of the client's subscriber pc
    dataReceived: [],
    dataChannel: null,
  };
  window.FAKE = FAKE;

  // The server's answer has to accept simulcast for Chrome to keep sending three encodings; a Chrome
  // answerer doesn't, so it sees the offer without rids and its answer gets them added back.
  const stripSimulcast = (sdp) =>
    sdp.split('\r\n').filter((l) => !l.startsWith('a=simulcast:') && !l.startsWith('a=rid:')).join('\r\n');
  const addSimulcastRecv = (sdp, rids) => {
    const out = [];
    let kind = null;
    for (const line of sdp.split('\r\n')) {
      if (line.startsWith('m=')) kind = line.slice(2).split(' ')[0];
      out.push(line);
      if (kind === 'video' && line.startsWith('a=mid:')) {
        for (const r of rids) out.push(`a=rid:${r} recv`);
        out.push(`a=simulcast:recv ${rids.join(';')}`);
      }
    }
    return out.join('\r\n');
  };

  class FakeSocket {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSING = 2;
    static CLOSED = 3;
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.bufferedAmount = 0;
      FAKE.sockets.push(this);
      if (FAKE.nodes[url] === 'down') {
        // Nothing listens there: the socket fails without opening.
        setTimeout(() => {
          this.readyState = 3;
          this.onclose?.({ code: 1006, reason: '', wasClean: false });
        }, 5);
        return;
      }
      setTimeout(() => {
        this.readyState = 1;
        this.onopen?.({});
      }, 5);
    }
    send(text) {
      const msg = JSON.parse(text);
      FAKE.fromClient.push(msg);
      FAKE.onClient(this, msg).catch((e) => console.error('fake server:', e));
    }
    close(code = 1000, reason = '') {
      if (this.readyState >= 2) return;
      this.readyState = 3;
      setTimeout(() => this.onclose?.({ code, reason, wasClean: true }), 5);
    }
    deliver(msg) {
      if (this.readyState === 1) this.onmessage?.({ data: JSON.stringify(msg) });
    }
  }
  window.WebSocket = FakeSocket;
  FAKE.current = () => FAKE.sockets.at(-1);
  FAKE.deliver = (msg) => FAKE.current().deliver(msg);

  const self = { id: 'PA_self', identity: 'self', tracks: [] };
  const bob = { id: 'PA_bob', identity: 'bob', tracks: [] };
  // Nodes of a cluster, by signaling URL: 'down' (nothing listens), {redirect: url} (sends every
  // join there), {forgot: true} (knows no session: resume closes 4404). Any other URL serves.
  FAKE.nodes = {};
  FAKE.joins = 0;

  FAKE.onClient = async (ws, msg) => {
    const node = FAKE.nodes[ws.url];
    if (msg.type === 'join' && node?.redirect) {
      ws.deliver({ type: 'redirect', url: node.redirect });
      ws.close(4307, 'redirected');
      return;
    }
    if (msg.type === 'resume' && node?.forgot) {
      ws.close(4404, 'session not found');
      return;
    }
    switch (msg.type) {
      case 'join': {
        // Each join is a new participant with new connections.
        FAKE.joins++;
        FAKE.pubRemote?.close();
        FAKE.pubRemote = null;
        const me = FAKE.joins === 1 ? self : { ...self, id: `PA_self${FAKE.joins}` };
        ws.deliver({ type: 'joined', protocol: 1, room: 'r1', participant: me, session_token: `S${FAKE.joins}`,
          participants: [bob], departure_timeout_ms: 10000, room_sid: 'RM_fake_1' });
        break;
      }
      case 'resume':
        ws.deliver({ type: 'resumed', participant: self, participants: [bob] });
        break;
      case 'offer': {
        FAKE.lastOfferTracks = msg.tracks;
        if (!FAKE.pubRemote) {
          const pc = new RTCPeerConnection();
          FAKE.pubRemote = pc;
          pc.onicecandidate = (e) => e.candidate && FAKE.deliver({ type: 'candidate', target: 'publisher',
            candidate: e.candidate.toJSON() });
          pc.ondatachannel = (e) => {
            FAKE.dataChannel = e.channel;
            e.channel.binaryType = 'arraybuffer';
            e.channel.onmessage = (m) => FAKE.dataReceived.push(
              typeof m.data === 'string' ? m.data : Array.from(new Uint8Array(m.data)));
          };
        }
        const pc = FAKE.pubRemote;
        await pc.setRemoteDescription({ type: 'offer', sdp: stripSimulcast(msg.sdp) });
        const answer = await pc.createAnswer();
        await pc.setLocalDescription(answer);
        const rids = [...msg.sdp.matchAll(/^a=rid:(\S+) send/gm)].map((m) => m[1]);
        const sdp = rids.length ? addSimulcastRecv(pc.localDescription.sdp, rids) : pc.localDescription.sdp;
        ws.deliver({ type: 'answer', sdp });
        break;
      }
      case 'answer':
        await FAKE.subRemote.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
        break;
      case 'candidate': {
        const pc = msg.target === 'publisher' ? FAKE.pubRemote : FAKE.subRemote;
        await pc?.addIceCandidate(msg.candidate).catch(() => {});
        break;
      }
      case 'ping':
        ws.deliver({ type: 'pong', id: msg.id });
        break;
      default:
        break;
    }
  };

  /** The fake server offers the subscriber pc bob's camera (a second fake capture). */
  FAKE.offerBobCamera = async () => {
    const pc = new RTCPeerConnection();
    FAKE.subRemote = pc;
    pc.onicecandidate = (e) => e.candidate && FAKE.deliver({ type: 'candidate', target: 'subscriber',
      candidate: e.candidate.toJSON() });
    const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 } });
    FAKE.bobSender = pc.addTrack(stream.getVideoTracks()[0], stream);
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const mid = pc.getTransceivers()[0].mid;
    FAKE.deliver({ type: 'offer', sdp: pc.localDescription.sdp,
      tracks: [{ mid, track_id: 'TR_bobcam', participant_id: 'PA_bob' }] });
    return mid;
  };

  /** The fake server takes bob's camera away again and renegotiates. */
  FAKE.removeBobCamera = async () => {
    const pc = FAKE.subRemote;
    pc.removeTrack(FAKE.bobSender);
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    FAKE.deliver({ type: 'track_unpublished', participant_id: 'PA_bob', track_id: 'TR_bobcam' });
    FAKE.deliver({ type: 'offer', sdp: pc.localDescription.sdp, tracks: [] });
  };
}

test('join against the fake server', async () => {
  const r = await page.evaluate(() => T.join('me', { token: 'fake-token' }));
  assert.equal(r.participantId, 'PA_self');
  assert.deepEqual(r.others, ['bob']);
  const first = await page.evaluate(() => FAKE.fromClient[0]);
  assert.deepEqual(first, { type: 'join', token: 'fake-token' });
  // The publisher pc is negotiated at once (it carries the data channel), with no tracks yet.
  const offer = await poll(() => page.evaluate(() => FAKE.fromClient.find((m) => m.type === 'offer')),
    { what: 'first publisher offer' });
  assert.deepEqual(offer.tracks, []);
  assert.match(offer.sdp, /m=application .* webrtc-datachannel/);
});

test('publish sends three simulcast encodings q/h/f from a 1280x720 capture', async () => {
  await page.evaluate(() => T.room('me').publish({ video: true, audio: true, simulcast: true }));
  const tracks = await poll(() => page.evaluate(() => FAKE.lastOfferTracks?.length === 2 && FAKE.lastOfferTracks),
    { what: 'offer with two tracks' });
  const video = tracks.find((t) => t.source === 'camera');
  const audio = tracks.find((t) => t.source === 'microphone');
  assert.ok(video && audio, JSON.stringify(tracks));
  assert.deepEqual(video.layers, [
    { rid: 'q', width: 320, height: 180 },
    { rid: 'h', width: 640, height: 360 },
    { rid: 'f', width: 1280, height: 720 },
  ]);
  assert.equal(audio.layers, undefined);
  const sdp = await page.evaluate(() => FAKE.fromClient.filter((m) => m.type === 'offer').at(-1).sdp);
  assert.match(sdp, /a=simulcast:send q;h;f/);
  assert.match(sdp, /a=rtpmap:\d+ VP8\/90000/);

  await poll(() => page.evaluate(() => T.room('me').publisherPc.connectionState === 'connected'),
    { timeoutMs: 20_000, what: 'publisher pc connected' });
  const encodings = await poll(async () => {
    const list = await page.evaluate(async () => {
      const out = [];
      (await T.room('me').publisherPc.getStats()).forEach((s) => {
        if (s.type === 'outbound-rtp' && s.kind === 'video') {
          out.push({ rid: s.rid, bytesSent: s.bytesSent, frameWidth: s.frameWidth ?? 0 });
        }
      });
      return out.sort((a, b) => (a.rid < b.rid ? -1 : 1));
    });
    return list.length === 3 && list.every((e) => e.bytesSent > 0) && list;
  }, { timeoutMs: 20_000, what: 'three outbound-rtp video streams sending' });
  assert.deepEqual(encodings.map((e) => e.rid).sort(), ['f', 'h', 'q']);
  console.log('outbound video encodings:', JSON.stringify(encodings));
  const q = encodings.find((e) => e.rid === 'q');
  assert.equal(q.frameWidth, 320);
  // Each layer keeps its size under CPU pressure (the server was told 320/640/1280).
  const pref = await page.evaluate(() => T.room('me').localTracks.find((t) => t.kind === 'video')
    .transceiver.sender.getParameters().degradationPreference);
  assert.equal(pref, 'maintain-resolution');
});

test('data channel: sends text and binary, decodes relayed messages', async () => {
  await poll(() => page.evaluate(() => T.room('me').dataChannel.readyState === 'open' && !!FAKE.dataChannel),
    { what: 'data channel open' });
  await page.evaluate(() => {
    T.room('me').sendData('hello');
    T.room('me').sendData(new Uint8Array([1, 2, 3]));
  });
  const got = await poll(() => page.evaluate(() => FAKE.dataReceived.length >= 2 && FAKE.dataReceived),
    { what: 'data at the fake server' });
  assert.deepEqual(got, ['hello', [1, 2, 3]]);
  await page.evaluate(() => {
    FAKE.dataChannel.send(JSON.stringify({ from: 'bob', participant_id: 'PA_bob', data: 'hi' }));
    FAKE.dataChannel.send(JSON.stringify({ from: 'bob', participant_id: 'PA_bob', data_b64: 'AQID' }));
  });
  const events = await poll(() => page.evaluate(() => T.events('me', 'data').length >= 2 && T.events('me', 'data')),
    { what: 'data events' });
  assert.deepEqual(events.map(({ from, participantId, data, binary }) => ({ from, participantId, data, binary })), [
    { from: 'bob', participantId: 'PA_bob', data: 'hi', binary: false },
    { from: 'bob', participantId: 'PA_bob', data: [1, 2, 3], binary: true },
  ]);
});

test('subscriber: server offer -> trackSubscribed, frames decoded, then trackUnsubscribed', async () => {
  const mid = await page.evaluate(() => FAKE.offerBobCamera());
  const sub = await poll(() => page.evaluate(() => T.events('me', 'trackSubscribed')[0]), { what: 'trackSubscribed' });
  assert.deepEqual({ trackId: sub.trackId, participantId: sub.participantId, identity: sub.identity, kind: sub.kind, mid: sub.mid },
    { trackId: 'TR_bobcam', participantId: 'PA_bob', identity: 'bob', kind: 'video', mid });
  const stats = await poll(async () => {
    const s = await page.evaluate(() => T.stats('me', 'video'));
    return s && s.framesDecoded > 5 && s;
  }, { timeoutMs: 20_000, what: 'frames decoded on the subscriber pc' });
  assert.ok(stats.frameWidth > 0);

  await page.evaluate(() => FAKE.removeBobCamera());
  const unsub = await poll(() => page.evaluate(() => T.events('me', 'trackUnsubscribed')[0]), { what: 'trackUnsubscribed' });
  assert.equal(unsub.trackId, 'TR_bobcam');
  const pcState = await poll(async () => {
    const s = await page.evaluate(() => T.pcState('me'));
    return s.subscriber.signalingState === 'stable' && s;
  }, { what: 'subscriber stable' });
  const tr = pcState.subscriber.transceivers.find((t) => t.mid === mid);
  assert.ok(!tr || tr.stopped || ['inactive', 'stopped'].includes(tr.currentDirection), JSON.stringify(tr));
  assert.equal((await page.evaluate(() => T.events('me', 'trackUnpublished')))[0].trackId, 'TR_bobcam');
  assert.equal(await page.evaluate(() => T.room('me').subscribedTracks.size), 0);
});

test('room events out of order: track_published before participant_joined', async () => {
  await page.evaluate(() => {
    FAKE.deliver({ type: 'track_published', participant_id: 'PA_carol',
      track: { id: 'TR_c1', kind: 'audio', source: 'microphone', name: '', muted: false, layers: [] } });
    FAKE.deliver({ type: 'participant_joined', participant: { id: 'PA_carol', identity: 'carol', tracks: [] } });
    FAKE.deliver({ type: 'track_muted', participant_id: 'PA_carol', track_id: 'TR_c1', muted: true });
  });
  const carol = await page.evaluate(() => {
    const p = T.room('me').participants.get('PA_carol');
    return p && { identity: p.identity, tracks: p.tracks.map((t) => ({ id: t.id, muted: t.muted })) };
  });
  assert.deepEqual(carol, { identity: 'carol', tracks: [{ id: 'TR_c1', muted: true }] });
  await page.evaluate(() => {
    FAKE.deliver({ type: 'participant_left', participant_id: 'PA_carol', identity: 'carol', reason: 'left' });
    // A late event about someone who left must not bring them back.
    FAKE.deliver({ type: 'track_published', participant_id: 'PA_carol',
      track: { id: 'TR_c2', kind: 'video', source: 'camera', name: '', muted: false, layers: [] } });
  });
  assert.equal(await page.evaluate(() => T.room('me').participants.has('PA_carol')), false);
  const left = await page.evaluate(() => T.events('me', 'participantLeft'));
  assert.deepEqual(left.map((e) => [e.participantId, e.identity, e.reason]), [['PA_carol', 'carol', 'left']]);
});

test('resume after a dropped socket keeps a connected publisher pc (no ICE restart)', async () => {
  const before = await page.evaluate(() => FAKE.fromClient.filter((m) => m.type === 'offer').length);
  await page.evaluate(() => T.room('me')._dropSocketForTest());
  await poll(() => page.evaluate(() => T.events('me', 'reconnected').length === 1), { what: 'reconnected' });
  const resume = await page.evaluate(() => FAKE.fromClient.filter((m) => m.type === 'resume'));
  assert.deepEqual(resume, [{ type: 'resume', session_token: 'S1' }]);
  assert.ok((await page.evaluate(() => T.events('me', 'reconnecting'))).length >= 1);
  // The media path outlived the socket: no re-offer, the connection stays up.
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(await page.evaluate(() => FAKE.fromClient.filter((m) => m.type === 'offer').length), before);
  assert.equal(await page.evaluate(() => T.room('me').publisherPc.connectionState), 'connected');
  assert.equal(await page.evaluate(() => T.room('me').state), 'connected');
  assert.deepEqual(await page.evaluate(() => T.events('me', 'error')), []);
});

test('leave closes everything and says so', async () => {
  await page.evaluate(() => T.room('me').leave());
  assert.ok(await page.evaluate(() => FAKE.fromClient.some((m) => m.type === 'leave')));
  const d = await page.evaluate(() => T.events('me', 'disconnected'));
  assert.equal(d.length, 1);
  assert.equal(d[0].reason, 'left');
  assert.equal(await page.evaluate(() => T.room('me').publisherPc.connectionState), 'closed');
});

// ---- a cluster's URL list (after the single-server tests above: a new Room 'c')

const A = 'ws://a.test/rtc';
const B = 'ws://b.test/rtc';
const C = 'ws://c.test/rtc';

/** The first messages (join/resume) the fake got from index `from` on, with the URL each went to. */
async function firsts(from) {
  return page.evaluate((n) => FAKE.sockets.slice(n).map((ws) => ({ url: ws.url, first: ws.first ?? null })), from);
}

test('URL list: a node that is down is skipped, a redirect is followed with redirects: 1', async () => {
  await page.evaluate(() => {
    // Remember each socket's first message.
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (text) {
      this.first ??= JSON.parse(text);
      return send.call(this, text);
    };
  });
  await page.evaluate(([a, b, c]) => { FAKE.nodes = { [a]: 'down', [b]: { redirect: 'http://c.test' } }; }, [A, B, C]);
  const from = await page.evaluate(() => FAKE.sockets.length);
  const r = await page.evaluate(([a, b, c]) => T.join('c', { token: 'tok-c', url: ['http://a.test', b, c] }), [A, B, C]);
  assert.equal(r.url, C);
  assert.equal(r.redirects, 1);
  assert.equal(r.roomSid, 'RM_fake_1');
  assert.deepEqual(await firsts(from), [
    { url: A, first: null },
    { url: B, first: { type: 'join', token: 'tok-c' } },
    { url: C, first: { type: 'join', token: 'tok-c', redirects: 1 } },
  ]);
  const redirected = await page.evaluate(() => T.events('c', 'redirected'));
  assert.deepEqual(redirected.map(({ from: f, url, redirects }) => ({ from: f, url, redirects })), [{ from: B, url: C, redirects: 1 }]);
});

test('a lost session (node down, the next says 4404) joins again there and publishes the same tracks', async () => {
  await page.evaluate(() => T.room('c').publish({ video: true, audio: true, simulcast: true }));
  const me = await page.evaluate(() => T.room('c').localParticipant.id);
  await page.evaluate((id) => {
    FAKE.deliver({ type: 'track_published', participant_id: id,
      track: { id: 'TR_cam1', kind: 'video', source: 'camera', name: '', muted: false, layers: [] } });
    FAKE.deliver({ type: 'track_published', participant_id: id,
      track: { id: 'TR_mic1', kind: 'audio', source: 'microphone', name: '', muted: false, layers: [] } });
    T.room('c').mute('camera', true);
  }, me);
  assert.deepEqual(await page.evaluate(() => FAKE.fromClient.filter((m) => m.type === 'mute').at(-1)),
    { type: 'mute', track_id: 'TR_cam1', muted: true });
  const tracksBefore = await page.evaluate(() => T.room('c').localTracks.map((t) => t.track.id));
  const offersBefore = await page.evaluate(() => FAKE.fromClient.filter((m) => m.type === 'offer').length);

  // C (in use) dies; A is back but never heard of the session.
  await page.evaluate(([a, c]) => { FAKE.nodes = { [c]: 'down', [a]: { forgot: true } }; }, [A, C]);
  const from = await page.evaluate(() => FAKE.sockets.length);
  await page.evaluate(() => T.room('c')._dropSocketForTest());
  const back = await poll(() => page.evaluate(() => T.events('c', 'reconnected')[0]), { timeoutMs: 15_000, what: 'reconnected' });
  assert.deepEqual({ rejoined: back.rejoined, reason: back.reason, url: back.url, previous: back.previousParticipantId },
    { rejoined: true, reason: 'session_not_found', url: A, previous: me });
  assert.notEqual(back.participantId, me);
  // C first (the node in use), then A in turn: resume refused, the join at once on the same node.
  assert.deepEqual(await firsts(from), [
    { url: C, first: null },
    { url: A, first: { type: 'resume', session_token: 'S2' } },
    { url: A, first: { type: 'join', token: 'tok-c' } },
  ]);
  // The same MediaStreamTracks, offered again on a new connection with their descriptions.
  const offer = await poll(() => page.evaluate((n) => FAKE.fromClient.filter((m) => m.type === 'offer')[n], offersBefore),
    { what: 'a new publisher offer' });
  assert.deepEqual(offer.tracks.map((t) => t.source).sort(), ['camera', 'microphone']);
  assert.deepEqual(offer.tracks.find((t) => t.source === 'camera').layers.map((l) => l.rid), ['q', 'h', 'f']);
  assert.deepEqual(await page.evaluate(() => T.room('c').localTracks.map((t) => t.track.id)), tracksBefore);
  assert.ok(await page.evaluate(() => T.room('c').localTracks.every((t) => t.track.readyState === 'live')));
  // Still muted: told to the server as soon as it names the new camera track.
  await page.evaluate((id) => FAKE.deliver({ type: 'track_published', participant_id: id,
    track: { id: 'TR_cam2', kind: 'video', source: 'camera', name: '', muted: false, layers: [] } }), back.participantId);
  assert.deepEqual(await page.evaluate(() => FAKE.fromClient.filter((m) => m.type === 'mute').at(-1)),
    { type: 'mute', track_id: 'TR_cam2', muted: true });
  await poll(() => page.evaluate(() => T.room('c').publisherPc.connectionState === 'connected'),
    { timeoutMs: 20_000, what: 'the new publisher pc connected' });
  const where = await page.evaluate(() => T.where('c'));
  assert.equal(where.state, 'connected');
  assert.deepEqual(where.others, ['bob']);
  assert.deepEqual(await page.evaluate(() => T.events('c', 'disconnected')), []);
});

test('a draining node\'s redirect (redirect, then 4307) joins the named node and publishes again', async () => {
  await page.evaluate(() => { FAKE.nodes = {}; });
  const from = await page.evaluate(() => FAKE.sockets.length);
  const offersBefore = await page.evaluate(() => FAKE.fromClient.filter((m) => m.type === 'offer').length);
  const before = await page.evaluate(() => T.room('c').localParticipant.id);
  await page.evaluate((b) => {
    FAKE.deliver({ type: 'redirect', url: b });
    FAKE.current().close(4307, 'the server is shutting down');
  }, B);
  const back = await poll(() => page.evaluate(() => T.events('c', 'reconnected')[1]), { timeoutMs: 15_000, what: 'reconnected again' });
  assert.deepEqual({ rejoined: back.rejoined, reason: back.reason, url: back.url, previous: back.previousParticipantId },
    { rejoined: true, reason: 'redirected', url: B, previous: before });
  assert.deepEqual(await firsts(from), [{ url: B, first: { type: 'join', token: 'tok-c', redirects: 1 } }]);
  const offer = await poll(() => page.evaluate((n) => FAKE.fromClient.filter((m) => m.type === 'offer')[n], offersBefore),
    { what: 'a new publisher offer' });
  assert.equal(offer.tracks.length, 2);
  await page.evaluate(() => T.room('c').leave());
});

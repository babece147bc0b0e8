// WHIP from a page on another origin (CORS). A tiny static server in this test's namespace serves
// a page on two other ports: one origin the server is configured to allow, one it is not. From the
// allowed page Chromium preflights and POSTs a WHIP offer to the SFU's port (mode 'cors'), reads
// the exposed Location, ETag and Link headers, trickles its candidates with PATCH, and publishes:
// an SDK viewer on the SFU's own origin decodes the video. From the refused page the browser
// blocks the request and no participant appears. The preflight and plain OPTIONS answers are
// also checked header by header from Node.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { useServerAndBrowser, waitForTracks, waitRising } from './lib/harness.mjs';
import { poll, portsFor } from './lib/server.mjs';

const SLOT = 16;
const ROOM = 'cors';
const { httpPort } = portsFor(SLOT);
const PAGE_PORT = httpPort + 1000;
const OTHER_PORT = httpPort + 1100;
const PAGE_ORIGIN = `http://127.0.0.1:${PAGE_PORT}`;
const OTHER_ORIGIN = `http://127.0.0.1:${OTHER_PORT}`;
const STUN = 'stun:127.0.0.1:3478';

const ctx = useServerAndBrowser('p-whip-cors', SLOT, {
  env: { SFU_HTTP__CORS_ORIGINS: PAGE_ORIGIN, SFU_RTC__ICE_SERVERS: STUN },
});

// The pages need nothing from their own origin but to exist there.
const PAGE = '<!doctype html><meta charset="utf-8"><title>cross-origin WHIP</title><p>cross-origin WHIP test page</p>';
const statics = [];
before(async () => {
  for (const port of [PAGE_PORT, OTHER_PORT]) {
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(PAGE);
    });
    await new Promise((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
    statics.push(server);
  }
});
after(() => Promise.all(statics.map((s) => new Promise((r) => s.close(r)))));

/** A raw HTTP request from Node (fetch would not let us set Origin freely). */
function raw(method, path, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: httpPort, method, path, headers, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.end();
  });
}

async function openAt(origin, label) {
  const page = await ctx.browser.context.newPage();
  page.on('console', (m) => ctx.browser.log.write(`${new Date().toISOString()} [${label}] ${m.type()}: ${m.text()}\n`));
  await page.goto(`${origin}/`, { waitUntil: 'load' });
  return page;
}

// Runs in the page: publish over WHIP to `sfu` from this page's origin, trickling candidates.
async function crossOriginPublish([sfu, room, token]) {
  const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360, frameRate: 30 }, audio: true });
  const pc = new RTCPeerConnection();
  window.pc = pc;
  for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
  const gathered = [];
  const done = new Promise((resolve) => {
    const t = setTimeout(resolve, 5000);
    pc.onicecandidate = (e) => {
      if (e.candidate) gathered.push(e.candidate);
      else { clearTimeout(t); resolve(); }
    };
  });
  // Trickle: post the offer at once, before gathering.
  await pc.setLocalDescription(await pc.createOffer());
  const res = await fetch(`${sfu}/whip/${room}`, {
    method: 'POST',
    mode: 'cors',
    headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${token}` },
    body: pc.localDescription.sdp,
  });
  const answer = await res.text();
  const out = {
    status: res.status,
    location: res.headers.get('Location'),
    etag: res.headers.get('ETag'),
    link: res.headers.get('Link'),
    acceptPatch: res.headers.get('Accept-Patch'),
    answerCandidates: answer.split(/\r?\n/).filter((l) => l.startsWith('a=candidate:')),
    endOfCandidates: answer.includes('a=end-of-candidates'),
  };
  if (res.status !== 201) return { ...out, body: answer };
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  const resource = new URL(out.location, `${sfu}/whip/${room}`).toString();
  window.resource = resource;
  await done;
  const first = pc.getTransceivers()[0].mid;
  const ufrag = pc.localDescription.sdp.match(/a=ice-ufrag:(\S+)/)[1];
  const pwd = pc.localDescription.sdp.match(/a=ice-pwd:(\S+)/)[1];
  const fragment = [`a=ice-ufrag:${ufrag}`, `a=ice-pwd:${pwd}`, 'm=audio 9 UDP/TLS/RTP/SAVPF 0', `a=mid:${first}`,
    ...gathered.map((c) => `a=${c.candidate}`), 'a=end-of-candidates', ''].join('\r\n');
  const patch = (ifMatch) => fetch(resource, {
    method: 'PATCH',
    mode: 'cors',
    headers: { 'Content-Type': 'application/trickle-ice-sdpfrag', Authorization: `Bearer ${token}`, 'If-Match': ifMatch },
    body: fragment,
  }).then((r) => r.status);
  out.trickled = gathered.length;
  out.patch = await patch(out.etag);
  out.patchStale = await patch('"not-this-session"');
  out.patchRestart = await patch('*');
  return out;
}

test('OPTIONS: preflight for an allowed origin, none for a refused one, discovery without preflight', async () => {
  const preflight = {
    Origin: PAGE_ORIGIN,
    'Access-Control-Request-Method': 'POST',
    'Access-Control-Request-Headers': 'authorization,content-type',
  };
  for (const path of [`/whip/${ROOM}`, `/whip/${ROOM}/PA_x`, `/whep/${ROOM}/someone`, `/whep/${ROOM}/someone/WV_x`]) {
    const ok = await raw('OPTIONS', path, preflight);
    assert.equal(ok.status, 204, path);
    assert.equal(ok.headers['access-control-allow-origin'], PAGE_ORIGIN, path);
    assert.match(ok.headers['access-control-allow-methods'], /POST/);
    assert.match(ok.headers['access-control-allow-methods'], /PATCH/);
    assert.match(ok.headers['access-control-allow-methods'], /DELETE/);
    for (const h of ['Authorization', 'Content-Type', 'If-Match']) assert.match(ok.headers['access-control-allow-headers'], new RegExp(h));
    assert.ok(Number(ok.headers['access-control-max-age']) > 0, path);
    assert.equal(ok.headers.link, undefined, 'no ICE servers on a preflight');

    const refused = await raw('OPTIONS', path, { ...preflight, Origin: OTHER_ORIGIN });
    const cors = Object.keys(refused.headers).filter((k) => k.startsWith('access-control-'));
    assert.deepEqual(cors, [], `${path}: refused origin got ${cors}`);
  }
  const plain = await raw('OPTIONS', `/whip/${ROOM}`);
  assert.equal(plain.status, 204);
  assert.equal(plain.headers['accept-post'], 'application/sdp');
  assert.equal(plain.headers.link, `<${STUN}>; rel="ice-server"`);
  const session = await raw('OPTIONS', `/whip/${ROOM}/PA_x`);
  assert.equal(session.status, 204);
  assert.equal(session.headers['accept-patch'], 'application/trickle-ice-sdpfrag');
});

test('cross-origin WHIP publish from Chromium, trickle PATCH, SDK viewer decodes; refused origin blocked', { timeout: 180_000 }, async () => {
  const sfu = ctx.server.httpUrl;
  const page = await openAt(PAGE_ORIGIN, 'page');
  const token = await ctx.server.token(ROOM, 'corspub');
  const pub = await page.evaluate(crossOriginPublish, [sfu, ROOM, token]);
  console.log(`cross-origin WHIP: ${JSON.stringify(pub)}`);
  assert.equal(pub.status, 201, JSON.stringify(pub));
  assert.match(pub.location ?? '', new RegExp(`^/whip/${ROOM}/`), 'the page can read Location');
  assert.match(pub.etag ?? '', /^".+"$/, 'the page can read ETag');
  assert.equal(pub.link, `<${STUN}>; rel="ice-server"`, 'the page can read Link');
  assert.equal(pub.acceptPatch, 'application/trickle-ice-sdpfrag');
  // One host candidate per media section, no RTCP component under rtcp-mux, list closed.
  assert.ok(pub.answerCandidates.length >= 1, 'answer has candidates');
  assert.ok(pub.answerCandidates.every((c) => c.split(' ')[1] === '1'), pub.answerCandidates.join(' | '));
  assert.equal(new Set(pub.answerCandidates).size, pub.answerCandidates.length, 'no repeated candidate');
  assert.ok(pub.endOfCandidates, 'a=end-of-candidates');
  assert.ok(pub.trickled >= 1, 'Chromium gathered a candidate to trickle');
  assert.equal(pub.patch, 204, 'trickle PATCH');
  assert.equal(pub.patchStale, 412, 'PATCH with another ETag');
  assert.equal(pub.patchRestart, 422, 'ICE restart PATCH');
  await poll(() => page.evaluate(() => window.pc.connectionState === 'connected'), { timeoutMs: 30_000, what: 'cross-origin publisher connected' });

  const viewer = await ctx.page('viewer');
  await viewer.evaluate((room) => T.join('v', { room, identity: 'viewer' }), ROOM);
  const tracks = await waitForTracks(viewer, 'v', ['video', 'audio'], 30_000);
  assert.ok(tracks.every((t) => t.identity === 'corspub'), JSON.stringify(tracks));
  await waitRising(viewer, 'v', { more: 10 });

  // The refused origin: the browser's preflight gets no CORS headers, so fetch fails and the
  // POST is never sent.
  const other = await openAt(OTHER_ORIGIN, 'other');
  const evilToken = await ctx.server.token(ROOM, 'refused');
  const refused = await other.evaluate(async ([url, tok]) => {
    try {
      const r = await fetch(url, { method: 'POST', mode: 'cors', headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${tok}` }, body: 'v=0\r\n' });
      return `HTTP ${r.status}`;
    } catch (e) {
      return `${e.name}: ${e.message}`;
    }
  }, [`${sfu}/whip/${ROOM}`, evilToken]);
  assert.match(refused, /^TypeError/, `refused origin: ${refused}`);
  const joined = await viewer.evaluate(() => T.events('v', 'participantJoined').map((e) => e.identity));
  assert.ok(!joined.includes('refused'), `refused origin joined: ${joined}`);

  // DELETE from the allowed page, cross-origin too: the publisher leaves.
  const del = await page.evaluate(async (tok) => (await fetch(window.resource, { method: 'DELETE', mode: 'cors', headers: { Authorization: `Bearer ${tok}` } })).status, token);
  assert.equal(del, 200);
  await poll(() => viewer.evaluate(() => T.events('v', 'participantLeft').some((e) => e.identity === 'corspub')),
    { timeoutMs: 15_000, what: 'viewer sees corspub leave' });
});

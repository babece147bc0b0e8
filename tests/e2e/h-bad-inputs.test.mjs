// Bad inputs from a plain client: wrong or expired tokens, broken and oversized messages, garbage SDP,
// WHIP without a token, more than [limits] allows. The server refuses each the documented way and
// survives what it should.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser } from './lib/harness.mjs';
import { sleep, startServer } from './lib/server.mjs';
import { SignalClient } from './lib/ws.mjs';

const ctx = useServerAndBrowser('h-bad-inputs', 8, { browser: false });
const ROOM = 'bad';

async function joined(identity) {
  const c = await SignalClient.open(ctx.server.wsUrl);
  c.send({ type: 'join', token: await ctx.server.token(ROOM, identity) });
  const j = await c.next('joined');
  return { c, j };
}

async function survives(c, id) {
  c.send({ type: 'ping', id });
  const pong = await c.next((m) => m.type === 'pong' && m.id === id);
  assert.equal(pong.id, id);
}

test('health and dev token endpoints', async () => {
  const h = await fetch(`${ctx.server.httpUrl}/healthz`);
  assert.equal(h.status, 200);
  const t = await ctx.server.token(ROOM, 'someone');
  assert.match(t, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a JWT');
});

test('joined message has the documented fields', async () => {
  const { c, j } = await joined('fields');
  assert.equal(typeof j.protocol, 'number');
  assert.equal(j.room, ROOM);
  assert.equal(j.participant.identity, 'fields');
  assert.match(j.participant.id, /\S/);
  assert.ok(Array.isArray(j.participant.tracks));
  assert.equal(typeof j.session_token, 'string');
  assert.ok(Array.isArray(j.participants));
  assert.equal(typeof j.departure_timeout_ms, 'number');
  c.send({ type: 'leave' });
  c.close();
});

test('invalid token: close 4401', async () => {
  const c = await SignalClient.open(ctx.server.wsUrl);
  c.send({ type: 'join', token: 'not-a-token' });
  const { code } = await c.waitClose();
  assert.equal(code, 4401);
});

test('expired token: close 4401 saying it expired', async () => {
  const { stdout } = await ctx.server.cli(['token', '--room', ROOM, '--identity', 'x', '--ttl', '1s']);
  const token = stdout.match(/[\w-]+\.[\w-]+\.[\w-]+/)?.[0];
  assert.ok(token, `no token in CLI output: ${stdout}`);
  await sleep(2000);
  const c = await SignalClient.open(ctx.server.wsUrl);
  c.send({ type: 'join', token });
  const { code, reason } = await c.waitClose();
  assert.equal(code, 4401);
  assert.match(reason, /expir/i);
});

test('first message not join/resume: close 4400', async () => {
  const c = await SignalClient.open(ctx.server.wsUrl);
  c.send({ type: 'ping', id: 1 });
  const { code } = await c.waitClose();
  assert.equal(code, 4400);
});

test('resume of an unknown session: close 4404', async () => {
  const c = await SignalClient.open(ctx.server.wsUrl);
  c.send({ type: 'resume', session_token: 'no-such-session' });
  const { code } = await c.waitClose();
  assert.equal(code, 4404);
});

test('malformed JSON: error bad_message, socket stays open', async () => {
  const { c } = await joined('malformed');
  c.send('{"type": "ping", oops');
  const err = await c.next('error');
  assert.equal(err.code, 'bad_message');
  await survives(c, 7);
  c.close();
});

test('unknown message type: error bad_message, socket stays open', async () => {
  const { c } = await joined('unknown');
  c.send({ type: 'explode', now: true });
  const err = await c.next('error');
  assert.equal(err.code, 'bad_message');
  await survives(c, 8);
  c.close();
});

test('a 70 KiB message: close 1009', async () => {
  const { c } = await joined('toobig');
  c.send(JSON.stringify({ type: 'ping', id: 9, pad: 'x'.repeat(70 * 1024) }));
  const { code } = await c.waitClose();
  assert.equal(code, 1009);
});

test('offer with garbage SDP: error bad_sdp, socket stays open', async () => {
  const { c } = await joined('garbage');
  c.send({ type: 'offer', sdp: 'this is not sdp', tracks: [] });
  const err = await c.next('error', 15_000);
  assert.equal(err.code, 'bad_sdp');
  await survives(c, 10);
  c.close();
});

test('the same identity joining again replaces the first session: close 4409', async () => {
  const first = await joined('twice');
  const second = await joined('twice');
  const { code } = await first.c.waitClose();
  assert.equal(code, 4409);
  await survives(second.c, 11);
  second.c.close();
});

test('no join within 10 s: close 4408', { timeout: 30_000 }, async () => {
  const c = await SignalClient.open(ctx.server.wsUrl);
  const t0 = Date.now();
  const { code } = await c.waitClose(20_000);
  assert.equal(code, 4408);
  assert.ok(Date.now() - t0 >= 9000, `closed after ${Date.now() - t0} ms`);
});

test('WHIP without a token: 401; with garbage SDP: 400', async () => {
  const url = `${ctx.server.httpUrl}/whip/${ROOM}`;
  const sdp = 'v=0\r\n';
  const noAuth = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: sdp });
  assert.equal(noAuth.status, 401);
  const token = await ctx.server.token(ROOM, 'whipper');
  const garbage = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${token}` },
    body: 'this is not sdp',
  });
  assert.equal(garbage.status, 400);
});

/** `count` audio sections, each of them sending: an offer the server reads no further than its text. */
function offerWithSections(count) {
  let sdp = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n';
  for (let mid = 0; mid < count; mid++) sdp += `m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:${mid}\r\na=sendonly\r\n`;
  return sdp;
}

/** The value of `sfu_limit_refusals_total{limit}` on `server`'s /metrics (0 when absent). */
async function refusals(server, limit) {
  const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`sfu_limit_refusals_total{limit="${limit}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

function whipPost(server, room, token, body) {
  return fetch(`${server.httpUrl}/whip/${room}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${token}` },
    body,
  });
}

test('a WHIP body over limits.whip_body_bytes (64 KiB): 413 with a JSON body', async () => {
  const token = await ctx.server.token(ROOM, 'bulky');
  const res = await whipPost(ctx.server, ROOM, token, 'v=0\r\n' + 'a=x\r\n'.repeat(20 * 1024));
  assert.equal(res.status, 413);
  assert.match(res.headers.get('content-type'), /application\/json/);
  const body = await res.json();
  assert.equal(body.error, 'body_too_large');
  assert.equal(await refusals(ctx.server, 'whip_body_bytes'), 1);
});

test('an offer with more than 64 media sections is refused before the media plane', async () => {
  const { c } = await joined('sections');
  c.send({ type: 'offer', sdp: offerWithSections(65), tracks: [] });
  const err = await c.next('error');
  assert.equal(err.code, 'too_many_sections');
  assert.equal(err.request, 'offer');
  await survives(c, 12);
  c.close();

  const token = await ctx.server.token(ROOM, 'whip-sections');
  const res = await whipPost(ctx.server, ROOM, token, offerWithSections(65));
  assert.equal(res.status, 413);
  assert.equal((await res.json()).error, 'too_many_sections');
  // 17 sending sections fit in 64 but publish more than 16 tracks.
  const tracks = await whipPost(ctx.server, ROOM, token, offerWithSections(17));
  assert.equal(tracks.status, 413);
  assert.equal((await tracks.json()).error, 'too_many_tracks');
  assert.equal(await refusals(ctx.server, 'media_sections_per_offer'), 2);
  assert.equal(await refusals(ctx.server, 'tracks_per_participant'), 1);
});

test('candidates past limits.candidates_per_connection (64): error too_many_candidates', async () => {
  const { c } = await joined('chatty');
  const candidate = (n) => ({
    type: 'candidate',
    target: 'publisher',
    candidate: { candidate: `candidate:${n} 1 udp 2122260223 127.0.0.1 ${40000 + n} typ host`, sdpMid: '0', sdpMLineIndex: 0 },
  });
  for (let n = 0; n < 64; n++) c.send(candidate(n));
  await survives(c, 13);
  assert.ok(!c.messages.some((m) => m.type === 'error'), `no error for the first 64: ${JSON.stringify(c.messages)}`);
  c.send(candidate(64));
  const err = await c.next('error');
  assert.equal(err.code, 'too_many_candidates');
  assert.equal(err.request, 'candidate');
  await survives(c, 14);
  c.close();
});

test('joins past limits.participants_per_room or rooms_per_node: error, then close 4503', async () => {
  // A server of its own with small limits, on a slot no test file uses.
  const small = await startServer({
    name: 'h-bad-inputs-small-limits',
    slot: 27,
    env: { SFU_LIMITS__PARTICIPANTS_PER_ROOM: '2', SFU_LIMITS__ROOMS_PER_NODE: '1' },
  });
  try {
    const join = async (room, identity) => {
      const c = await SignalClient.open(small.wsUrl);
      c.send({ type: 'join', token: await small.token(room, identity) });
      return c;
    };
    const alice = await join('full', 'alice');
    await alice.next('joined');
    const bob = await join('full', 'bob');
    await bob.next('joined');

    const carol = await join('full', 'carol');
    const err = await carol.next('error');
    assert.equal(err.code, 'room_full');
    assert.equal(err.request, 'join');
    const closed = await carol.waitClose();
    assert.equal(closed.code, 4503);
    assert.match(closed.reason, /^room_full: /);

    // Bob joining again replaces his session: never refused.
    const bobAgain = await join('full', 'bob');
    await bobAgain.next('joined');

    const dave = await join('another-room', 'dave');
    assert.equal((await dave.next('error')).code, 'node_full');
    assert.equal((await dave.waitClose()).code, 4503);

    // WHIP answers the same refusal with 503 and JSON.
    const res = await whipPost(small, 'full', await small.token('full', 'whipper'), 'v=0\r\n');
    assert.equal(res.status, 503);
    assert.equal((await res.json()).error, 'room_full');

    assert.equal(await refusals(small, 'participants_per_room'), 2);
    assert.equal(await refusals(small, 'rooms_per_node'), 1);
    await survives(alice, 15);
    for (const c of [alice, bob, bobAgain]) c.close();
  } finally {
    await small.stop();
  }
});

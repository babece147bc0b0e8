// Bad inputs from a plain client: wrong or expired tokens, broken and oversized messages, garbage SDP,
// WHIP without a token. The server refuses each the documented way and survives what it should.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser } from './lib/harness.mjs';
import { sleep } from './lib/server.mjs';
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

// The departure timeout: a participant whose signaling socket vanishes (no `leave`) keeps its place
// for the timeout, so it may resume; after it, the room is told it left with reason `timeout`, and a
// late resume is refused with 4404. The timeout is shortened to 2 s for the test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser } from './lib/harness.mjs';
import { sleep } from './lib/server.mjs';
import { SignalClient } from './lib/ws.mjs';

const ctx = useServerAndBrowser('j-departure', 10, { browser: false, env: { SFU_RTC__DEPARTURE_TIMEOUT_SECS: '2' } });
const ROOM = 'departure';

async function joined(identity) {
  const c = await SignalClient.open(ctx.server.wsUrl);
  c.send({ type: 'join', token: await ctx.server.token(ROOM, identity) });
  return { c, j: await c.next('joined') };
}

test('a vanished participant is removed after the departure timeout; the room is told', { timeout: 60_000 }, async () => {
  const { c: watcher } = await joined('watcher');
  const { c: ghost, j } = await joined('ghost');
  assert.equal(j.departure_timeout_ms, 2000);
  await watcher.next((m) => m.type === 'participant_joined' && m.participant.identity === 'ghost');

  const t0 = Date.now();
  ghost.ws.terminate(); // the TCP connection dies: no close frame, no leave
  const left = await watcher.next((m) => m.type === 'participant_left' && m.identity === 'ghost', 15_000);
  const waited = Date.now() - t0;
  console.log(`participant_left after ${waited} ms (timeout 2000 ms)`);
  assert.equal(left.reason, 'timeout');
  assert.equal(left.participant_id, j.participant.id);
  assert.ok(waited >= 1900, `removed too early: ${waited} ms`);

  // Too late to resume now.
  const late = await SignalClient.open(ctx.server.wsUrl);
  late.send({ type: 'resume', session_token: j.session_token });
  const closed = await late.closed;
  assert.equal(closed.code, 4404);
});

test('a participant that resumes within the timeout is not removed', { timeout: 60_000 }, async () => {
  const { c: watcher } = await joined('watcher2');
  const { c: flaky, j } = await joined('flaky');
  flaky.ws.terminate();
  await sleep(500);
  const back = await SignalClient.open(ctx.server.wsUrl);
  back.send({ type: 'resume', session_token: j.session_token });
  const resumed = await back.next('resumed');
  assert.equal(resumed.participant.id, j.participant.id);
  await sleep(3000); // past the timeout of the dropped socket
  assert.equal(watcher.messages.filter((m) => m.type === 'participant_left' && m.identity === 'flaky').length, 0);
  back.send({ type: 'ping', id: 7 });
  assert.equal((await back.next((m) => m.type === 'pong')).id, 7);
});

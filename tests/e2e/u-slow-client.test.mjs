// A client that stops reading its signaling socket while the server keeps sending to it (here the
// pongs to its own pings) must not grow the server's memory: the server closes it with 4429
// `too_slow` within a bounded time, and its RSS stays under a bound meanwhile.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { useServerAndBrowser } from './lib/harness.mjs';
import { sleep } from './lib/server.mjs';
import { SignalClient } from './lib/ws.mjs';

const ctx = useServerAndBrowser('u-slow-client', 21, { browser: false });

/** How long the flood may run before the server must have closed the client. */
const CLOSE_WITHIN_MS = 25_000;
/** RSS growth allowed while flooding (unbounded queues grow by well over 100 MB in a few seconds). */
const MAX_RSS_GROWTH_MB = 40;
const MAX_PINGS = 3_000_000;

function rssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(status.match(/^VmRSS:\s+(\d+) kB/m)[1]) / 1024;
}

async function slowConsumers() {
  const text = await (await fetch(`${ctx.server.httpUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const line = text.split('\n').find((l) => l.startsWith('sfu_signaling_slow_consumers_total'));
  return line ? Number(line.split(/\s+/).pop()) : 0;
}

test('a client that stops reading is closed with 4429 and the server memory stays bounded', async () => {
  const pid = ctx.server.proc.pid;
  const c = await SignalClient.open(ctx.server.wsUrl);
  c.send({ type: 'join', token: await ctx.server.token('slow', 'frozen') });
  await c.next('joined');
  const before = await slowConsumers();
  const rssStart = rssMb(pid);

  // Stop reading: the TCP receive window fills, then the server's send buffer, then its queue.
  c.ws._socket.pause();
  const started = Date.now();
  let pings = 0;
  let rssMax = rssStart;
  let closedAfterMs = null;
  for (let round = 1; ; round++) {
    if (Date.now() - started >= CLOSE_WITHIN_MS || pings >= MAX_PINGS) break;
    // Bursts sized to what the socket accepts, so the client's own buffer stays small.
    for (let i = 0; i < 2000 && c.ws.bufferedAmount < 1 << 20; i++) c.send({ type: 'ping', id: ++pings });
    await sleep(5);
    rssMax = Math.max(rssMax, rssMb(pid));
    if (round % 10 === 0 && (await slowConsumers()) > before) {
      closedAfterMs = Date.now() - started;
      break;
    }
  }
  const growth = rssMax - rssStart;
  console.log(`u-slow-client: ${pings} pings in ${Date.now() - started} ms; server RSS ${rssStart.toFixed(1)} -> ` +
    `max ${rssMax.toFixed(1)} MB (+${growth.toFixed(1)}); closed for slowness after ${closedAfterMs ?? 'never'} ms`);
  assert.ok(closedAfterMs !== null, `the server did not give up on the client within ${CLOSE_WITHIN_MS} ms`);
  assert.ok(growth < MAX_RSS_GROWTH_MB, `server RSS grew by ${growth.toFixed(1)} MB (bound ${MAX_RSS_GROWTH_MB})`);

  // Reading again, the client finds what was written before the close, then the close frame.
  c.ws._socket.resume();
  const { code, reason } = await c.waitClose(15_000);
  assert.equal(code, 4429, `close ${code} ${reason}`);

  // The server is fine: a new client is served.
  const d = await SignalClient.open(ctx.server.wsUrl);
  d.send({ type: 'join', token: await ctx.server.token('slow', 'healthy') });
  await d.next('joined');
  d.send({ type: 'ping', id: 7 });
  assert.equal((await d.next('pong')).id, 7);
  d.close();
});

test('a frozen client is closed when room events overflow its queue', async () => {
  const pid = ctx.server.proc.pid;
  const frozen = await SignalClient.open(ctx.server.wsUrl);
  frozen.send({ type: 'join', token: await ctx.server.token('churn', 'frozen') });
  await frozen.next('joined');
  const before = await slowConsumers();
  const rssStart = rssMb(pid);
  frozen.ws._socket.pause();

  // Another participant joins and leaves over and over: each time the frozen one is sent
  // participant_joined and participant_left, which it never reads. A long identity makes them big.
  const token = await ctx.server.token('churn', `churner-${'x'.repeat(1000)}`);
  const started = Date.now();
  let cycles = 0;
  let rssMax = rssStart;
  let closedAfterMs = null;
  while (Date.now() - started < CLOSE_WITHIN_MS && cycles < 20_000) {
    const c = await SignalClient.open(ctx.server.wsUrl);
    c.send({ type: 'join', token });
    await c.next('joined');
    c.send({ type: 'leave' });
    await c.waitClose();
    cycles++;
    if (cycles % 20 === 0) {
      rssMax = Math.max(rssMax, rssMb(pid));
      if ((await slowConsumers()) > before) {
        closedAfterMs = Date.now() - started;
        break;
      }
    }
  }
  const growth = rssMax - rssStart;
  console.log(`u-slow-client: ${cycles} join/leave cycles in ${Date.now() - started} ms; server RSS ` +
    `${rssStart.toFixed(1)} -> max ${rssMax.toFixed(1)} MB (+${growth.toFixed(1)}); closed for slowness after ` +
    `${closedAfterMs ?? 'never'} ms`);
  assert.ok(closedAfterMs !== null, `the server did not give up on the frozen client within ${CLOSE_WITHIN_MS} ms`);
  assert.ok(growth < MAX_RSS_GROWTH_MB, `server RSS grew by ${growth.toFixed(1)} MB (bound ${MAX_RSS_GROWTH_MB})`);
  frozen.ws._socket.resume();
  const { code, reason } = await frozen.waitClose(15_000);
  assert.equal(code, 4429, `close ${code} ${reason}`);
});

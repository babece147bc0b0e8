// Data messages: what A sends on its "data" channel reaches B and C (with A's identity and id), and
// does not come back to A. Text and binary. The advertised maximum (32768 bytes) is delivered
// intact and a larger message is refused by the browser; a text message whose envelope would be too
// large is refused by the server, which tells the sender; a flood is cut to the sender's data rate
// (the sender told) while a participant in another room still gets its messages.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser } from './lib/harness.mjs';
import { poll, sleep } from './lib/server.mjs';

const ctx = useServerAndBrowser('e-data', 5);
const ROOM = 'data';
/** The page of the first test, whose participants the later tests use. */
let shared;

test('data from A reaches B and C, not A', { timeout: 180_000 }, async () => {
  const page = await ctx.page('data');
  shared = page;
  const ids = {};
  for (const name of ['A', 'B', 'C']) {
    ids[name] = (await page.evaluate(([room, id]) => T.join(id, { room, identity: id }), [ROOM, name])).participantId;
  }
  for (const name of ['A', 'B', 'C']) {
    await poll(() => page.evaluate((k) => T.room(k).dataChannel.readyState === 'open', name),
      { timeoutMs: 30_000, what: `${name}: data channel open` });
  }
  await page.evaluate(() => {
    T.room('A').sendData('hello from A');
    T.room('A').sendData(new Uint8Array([0, 1, 2, 250, 255]));
  });
  for (const name of ['B', 'C']) {
    const got = await poll(async () => {
      const d = await page.evaluate((k) => T.events(k, 'data'), name);
      return d.length >= 2 && d;
    }, { timeoutMs: 15_000, what: `${name}: two data messages` });
    const plain = got.map(({ from, participantId, data, binary }) => ({ from, participantId, data, binary }));
    assert.deepEqual(plain, [
      { from: 'A', participantId: ids.A, data: 'hello from A', binary: false },
      { from: 'A', participantId: ids.A, data: [0, 1, 2, 250, 255], binary: true },
    ]);
  }
  // And back: B answers; A and C get it, B does not.
  await page.evaluate(() => T.room('B').sendData('hi A'));
  for (const name of ['A', 'C']) {
    await poll(async () => {
      const d = await page.evaluate((k) => T.events(k, 'data'), name);
      return d.some((e) => e.from === 'B' && e.data === 'hi A');
    }, { timeoutMs: 15_000, what: `${name}: B's message` });
  }
  await sleep(1500);
  const echoA = (await page.evaluate(() => T.events('A', 'data'))).filter((e) => e.from === 'A');
  const echoB = (await page.evaluate(() => T.events('B', 'data'))).filter((e) => e.from === 'B');
  assert.deepEqual(echoA, [], 'A got its own message back');
  assert.deepEqual(echoB, [], 'B got its own message back');
  assert.equal((await page.evaluate(() => T.events('A', 'data'))).length, 1);
});

const MAX = 32768;

test('the advertised maximum is delivered intact; larger is refused, and the sender told', { timeout: 120_000 }, async () => {
  const page = shared;
  assert.equal(await page.evaluate(() => T.room('A').publisherPc.sctp.maxMessageSize), MAX);
  const before = (await page.evaluate(() => T.events('B', 'data'))).length;
  await page.evaluate((max) => {
    const bytes = new Uint8Array(max);
    for (let i = 0; i < max; i++) bytes[i] = (i * 7 + 3) & 255;
    T.room('A').sendData(bytes);
    T.room('A').sendData('x'.repeat(max));
  }, MAX);
  const got = await poll(async () => {
    const d = (await page.evaluate(() => T.events('B', 'data'))).slice(before);
    return d.length >= 2 && d;
  }, { timeoutMs: 15_000, what: 'B: the two largest messages' });
  assert.equal(got[0].binary, true);
  assert.equal(got[0].data.length, MAX);
  assert.ok(got[0].data.every((b, i) => b === ((i * 7 + 3) & 255)), 'binary payload intact');
  assert.equal(got[1].data, 'x'.repeat(MAX));

  // One byte more: the browser's send refuses it.
  const threw = await page.evaluate((max) => {
    try {
      T.room('A').sendData(new Uint8Array(max + 1));
      return null;
    } catch (e) {
      return String(e);
    }
  }, MAX);
  assert.ok(threw, 'a message over the advertised maximum was accepted by send()');
  // Sent before the channel opens, it is queued; the browser refuses it at the opening, and the
  // SDK says so (or, if the channel opened already, send() throws as above).
  const early = await page.evaluate(async ([room, max]) => {
    await T.join('F', { room, identity: 'F' });
    try {
      T.room('F').sendData(new Uint8Array(max + 1));
      return 'queued';
    } catch {
      return 'threw';
    }
  }, [ROOM, MAX]);
  if (early === 'queued') {
    const r = await poll(async () => {
      const e = await page.evaluate(() => T.events('F', 'dataRefused'));
      return e.length >= 1 && e;
    }, { timeoutMs: 30_000, what: 'F: dataRefused for a queued message' });
    assert.deepEqual([r[0].reason, r[0].bytes], ['too_large', MAX + 1]);
  }
  await poll(() => page.evaluate(() => T.events('F', 'dataChannelOpen').length === 1),
    { timeoutMs: 30_000, what: 'F: data channel open' });
  console.log(`a message over the maximum sent on joining: ${early}`);

  // Text that JSON escaping grows past what a data channel carries: the server refuses it.
  await page.evaluate((max) => T.room('A').sendData('\u0001'.repeat(max)), MAX);
  const refused = await poll(async () => {
    const r = await page.evaluate(() => T.events('A', 'dataRefused'));
    return r.length >= 1 && r;
  }, { timeoutMs: 15_000, what: 'A: dataRefused too_large' });
  assert.equal(refused[0].reason, 'too_large');
  assert.equal(refused[0].bytes, MAX);
  await sleep(1000);
  const after = (await page.evaluate(() => T.events('B', 'data'))).slice(before);
  assert.equal(after.length, 2, 'B got a refused message');
});

test("a flood is rate limited, and another room's data still arrives", { timeout: 120_000 }, async () => {
  const page = shared;
  for (const name of ['D', 'E']) {
    await page.evaluate(([room, id]) => T.join(id, { room, identity: id }), ['data-other', name]);
  }
  for (const name of ['D', 'E']) {
    await poll(() => page.evaluate((k) => T.room(k).dataChannel.readyState === 'open', name),
      { timeoutMs: 30_000, what: `${name}: data channel open` });
  }
  const bBefore = (await page.evaluate(() => T.events('B', 'data'))).length;
  const FLOOD = 2000;
  // A floods its room (default limit: 50 messages per second); meanwhile D sends E ten messages.
  const sentAt = await page.evaluate(async (n) => {
    const a = T.room('A');
    const chunk = 'f'.repeat(1000);
    const flood = (async () => {
      for (let i = 0; i < n; i++) {
        a.sendData(`${i} ${chunk}`);
        if (i % 100 === 99) await new Promise((r) => setTimeout(r, 10));
      }
    })();
    for (let i = 0; i < 10; i++) {
      T.room('D').sendData(`other ${i}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const t = performance.now();
    await flood;
    return t;
  }, FLOOD);
  const other = await poll(async () => {
    const d = (await page.evaluate(() => T.events('E', 'data'))).filter((e) => e.from === 'D');
    return d.length >= 10 && d;
  }, { timeoutMs: 15_000, what: "E: D's ten messages" });
  assert.deepEqual(other.map((e) => e.data), Array.from({ length: 10 }, (_, i) => `other ${i}`));
  // Generous: delivery, not a tight timing.
  assert.ok(other[9].t - sentAt < 5000, `E got D's last message ${Math.round(other[9].t - sentAt)} ms after it was sent`);

  const notices = await poll(async () => {
    const r = (await page.evaluate(() => T.events('A', 'dataRefused'))).filter((e) => e.reason === 'rate_limited');
    return r.length >= 1 && r;
  }, { timeoutMs: 15_000, what: 'A: dataRefused rate_limited' });
  assert.ok(notices.every((n) => n.bytes > 1000));
  await sleep(2000);
  const relayed = (await page.evaluate(() => T.events('B', 'data'))).length - bBefore;
  assert.ok(relayed >= 50 && relayed < FLOOD / 2, `B got ${relayed} of ${FLOOD} flooded messages`);
  assert.ok((await page.evaluate(() => T.events('E', 'data'))).every((e) => e.from === 'D'), 'E got another room\'s data');
});

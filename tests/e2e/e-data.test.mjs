// Data messages: what A sends on its "data" channel reaches B and C (with A's identity and id), and
// does not come back to A. Text and binary.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser } from './lib/harness.mjs';
import { poll, sleep } from './lib/server.mjs';

const ctx = useServerAndBrowser('e-data', 5);
const ROOM = 'data';

test('data from A reaches B and C, not A', { timeout: 180_000 }, async () => {
  const page = await ctx.page('data');
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

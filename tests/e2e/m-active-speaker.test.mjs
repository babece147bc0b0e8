// Active speakers: the server reads the audio level publishers put on each packet and tells the
// room who is speaking, loudest first. Alice and Bob publish a synthetic microphone (a tone or
// silence); a subscriber sees Alice as the speaker, then Bob once they swap; the demo page
// highlights the speaking tile.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser } from './lib/harness.mjs';
import { poll } from './lib/server.mjs';

const ctx = useServerAndBrowser('m-active-speaker', 13);
const ROOM = 'speakers';
const LOUD = 0.3;

/** The identities in `page`'s latest activeSpeakers event (key `key`), loudest first. */
async function latestSpeakers(page, key) {
  const events = await page.evaluate((k) => T.events(k, 'activeSpeakers'), key);
  return events.at(-1)?.speakers.map((s) => s.identity) ?? null;
}

/** On the demo page: which tiles (by name) are highlighted as speaking. */
async function highlighted(page) {
  return page.evaluate(() => [...document.querySelectorAll('.tile.speaking .name')].map((n) => n.textContent));
}

test('active speakers follow who is talking, and the demo page highlights them', { timeout: 180_000 }, async () => {
  const alice = await ctx.page('alice');
  await alice.evaluate((room) => T.join('a', { room, identity: 'alice' }), ROOM);
  await alice.evaluate((gain) => T.publishTone('a', gain), LOUD);
  const bob = await ctx.page('bob');
  await bob.evaluate((room) => T.join('b', { room, identity: 'bob' }), ROOM);
  await bob.evaluate(() => T.publishTone('b', 0));

  const dave = await ctx.page('dave');
  const t0 = Date.now();
  await dave.evaluate((room) => T.join('d', { room, identity: 'dave' }), ROOM);
  const first = await poll(async () => {
    const s = await latestSpeakers(dave, 'd');
    return s && s[0] === 'alice' && s;
  }, { timeoutMs: 20_000, intervalMs: 100, what: 'dave sees alice as the active speaker' });
  console.log(`alice is the speaker for dave ${Date.now() - t0} ms after he joined; ranking ${JSON.stringify(first)}`);
  assert.ok(!first.includes('bob'), 'a silent publisher is not a speaker');

  const carol = await ctx.browser.context.newPage();
  await carol.goto(`${ctx.server.httpUrl}/?room=${ROOM}&name=carol`);
  await carol.click('button[type=submit]');
  await poll(async () => (await highlighted(carol)).includes('alice'),
    { timeoutMs: 30_000, intervalMs: 100, what: 'the demo page highlights alice' });
  assert.ok(!(await highlighted(carol)).includes('bob'));

  // Alice falls silent and Bob speaks.
  const swap = Date.now();
  await alice.evaluate(() => T.setTone('a', 0));
  await bob.evaluate((gain) => T.setTone('b', gain), LOUD);
  await poll(async () => (await latestSpeakers(dave, 'd'))?.[0] === 'bob',
    { timeoutMs: 10_000, intervalMs: 50, what: 'bob becomes the first speaker' });
  const bobFirstMs = Date.now() - swap;
  await poll(async () => !(await latestSpeakers(dave, 'd')).includes('alice'),
    { timeoutMs: 15_000, intervalMs: 50, what: 'alice leaves the speakers' });
  const aliceGoneMs = Date.now() - swap;
  await poll(async () => {
    const names = await highlighted(carol);
    return names.includes('bob') && !names.includes('alice');
  }, { timeoutMs: 10_000, intervalMs: 100, what: 'the demo page highlights bob, not alice' });
  console.log(`after the swap: bob first after ${bobFirstMs} ms, alice no longer speaking after ${aliceGoneMs} ms`);
  // Bob rises within a few 200 ms windows; Alice's level decays over a few seconds, not at once.
  assert.ok(bobFirstMs < 3000, `bob became the speaker after ${bobFirstMs} ms`);
  assert.ok(aliceGoneMs < 8000, `alice stayed a speaker for ${aliceGoneMs} ms`);

  const events = await dave.evaluate(() => T.events('d', 'activeSpeakers'));
  assert.ok(events.every((e) => e.speakers.every((s) => s.level > 0 && s.level <= 1)), 'levels within (0, 1]');
  assert.ok(events.length < 40, `ranking changes are few, not one per report: ${events.length}`);
  assert.deepEqual(await dave.evaluate(() => T.events('d', 'error')), []);
});

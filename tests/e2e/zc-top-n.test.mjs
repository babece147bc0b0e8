// Top-N audio (docs/topologies.md, "Audio for huge rooms"): in a room above
// `audio.top_n_above` participants, a listener is sent only the `audio.top_n` loudest speakers.
// Six Chromium speakers publish tones of different loudness; the listener receives packets on
// three audio tracks only, the loudest three's. When a quiet one turns loud and a loud one falls
// silent, the newly loud one takes the silent one's place.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser } from './lib/harness.mjs';
import { poll, sleep } from './lib/server.mjs';
import { metric } from './lib/ingress.mjs';

const ctx = useServerAndBrowser('zc-top-n', 32, {
  env: { SFU_AUDIO__TOP_N: '3', SFU_AUDIO__TOP_N_ABOVE: '5' },
});
const ROOM = 'many-voices';
/** Tone gain per speaker: three loud, three quiet (still above the speaking threshold). */
const GAINS = { s1: 0.6, s2: 0.45, s3: 0.35, s4: 0.03, s5: 0.02, s6: 0.015 };
const WINDOW_MS = 3000;

/** The listener's received audio packets per speaker identity. */
async function packetsBySpeaker(listener) {
  return listener.evaluate(async () => {
    const out = {};
    for (const t of T.tracks('l', 'audio')) {
      const s = await T.room('l').statsFor(t.trackId);
      out[t.identity] = s?.packetsReceived ?? 0;
    }
    return out;
  });
}

/** Which speakers the listener received packets from over `WINDOW_MS` (more than 20: Opus sends 50 a second). */
async function heardOver(listener) {
  const before = await packetsBySpeaker(listener);
  await sleep(WINDOW_MS);
  const after = await packetsBySpeaker(listener);
  const heard = Object.keys(after).filter((who) => after[who] - (before[who] ?? 0) > 20).sort();
  const silentButSent = Object.keys(after).filter((who) => !heard.includes(who) && after[who] !== (before[who] ?? 0));
  return { heard, silentButSent, tracks: Object.keys(after).length };
}

/** Polls windows until the listener hears exactly `want`; returns ms taken and the windows seen. */
async function waitHeard(listener, want, timeoutMs) {
  const t0 = Date.now();
  const windows = [];
  await poll(async () => {
    const w = await heardOver(listener);
    windows.push(w);
    assert.ok(w.heard.length <= 3, `the listener heard ${w.heard.length} speakers at once: ${w.heard.join(', ')}`);
    return JSON.stringify(w.heard) === JSON.stringify([...want].sort());
  }, { timeoutMs, intervalMs: 0, what: `the listener hearing exactly ${want.join(', ')}` }).catch((e) => {
    e.message += `; windows: ${JSON.stringify(windows)}`;
    throw e;
  });
  return { ms: Date.now() - t0, windows };
}

test('top-N: of six speakers a listener receives the three loudest, and a newly loud one takes a silent one\'s place', { timeout: 180_000 }, async () => {
  const speakers = await ctx.page('speakers');
  for (const [who, gain] of Object.entries(GAINS)) {
    await speakers.evaluate((r) => T.join(r.who, { room: r.room, identity: r.who }), { room: ROOM, who });
    await speakers.evaluate((r) => T.publishTone(r.who, r.gain), { who, gain });
  }
  const listener = await ctx.page('listener');
  await listener.evaluate((room) => T.join('l', { room, identity: 'listener' }), ROOM);
  await poll(async () => (await listener.evaluate(() => T.tracks('l', 'audio').length)) === 6,
    { timeoutMs: 30_000, what: 'the listener subscribed to six audio tracks' });

  const first = await waitHeard(listener, ['s1', 's2', 's3'], 30_000);
  console.log(`the listener hears s1, s2, s3 only, ${first.ms} ms after checking began; windows ${JSON.stringify(first.windows)}`);
  const steady = await heardOver(listener);
  assert.deepEqual(steady.heard, ['s1', 's2', 's3']);
  assert.deepEqual(steady.silentButSent, [], 'a held-back speaker still sent packets');

  // s4 turns loud, s1 falls silent: s4 takes s1's place (a place is lost only to a clearly
  // louder speaker, and a silent holder is the quietest).
  const s4Before = (await packetsBySpeaker(listener)).s4;
  const turnedAt = Date.now();
  await speakers.evaluate(() => { T.setTone('s4', 0.9); T.setTone('s1', 0); });
  await poll(async () => (await packetsBySpeaker(listener)).s4 > s4Before + 5,
    { timeoutMs: 20_000, intervalMs: 50, what: 'packets of s4 reaching the listener' });
  console.log(`s4's audio reaches the listener ${Date.now() - turnedAt} ms after it turned loud`);
  await waitHeard(listener, ['s2', 's3', 's4'], 20_000);

  const dropped = await metric(ctx.server.httpUrl, 'sfu_dropped_packets_total', ['reason="not_loudest"']);
  console.log(`sfu_dropped_packets_total{reason="not_loudest"} = ${dropped}`);
  assert.ok(dropped > 0, 'no packet was counted as held back');
});

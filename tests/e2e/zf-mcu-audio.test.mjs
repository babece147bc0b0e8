// MCU audio (docs/topologies.md, "Mixing on the server"): in a room with `audio.mode = "mix"`
// the server decodes the speakers' Opus, mixes it and sends every participant one audio track.
// Ten Chromium speakers publish tones and a Chromium listener joins: the listener and every
// speaker receive exactly one audio track (the room's, participant id ''), the listener's level
// follows who speaks, and a speaker alone does not hear itself while the others hear it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServerAndBrowser } from './lib/harness.mjs';
import { poll, sleep } from './lib/server.mjs';
import { logLines, metric } from './lib/ingress.mjs';

const ctx = useServerAndBrowser('zf-mcu-audio', 34, { env: { SFU_AUDIO__MODE: 'mix' } });
const ROOM = 'mixed-voices';
const SPEAKERS = Array.from({ length: 10 }, (_, i) => `s${i + 1}`);
const LOUD = 0.5;

/**
 * Plays `key`'s received audio tracks so Chromium decodes them and reports levels. Not muted: a
 * muted element sets the receiver's volume to 0, and Chromium measures the level after it.
 */
function playAudio(page, key) {
  return page.evaluate((k) => {
    for (const t of T.tracks(k, 'audio')) {
      const el = new Audio();
      el.srcObject = T.room(k).getTrack(t.trackId).stream;
      el.play().catch(() => {});
    }
  }, key);
}

/** `key`'s one received audio track: its participant id and the mean level over `ms`. */
async function levelOver(page, key, ms = 1500) {
  return page.evaluate(async ({ k, ms }) => {
    const [t] = T.tracks(k, 'audio');
    if (!t) return null;
    const read = async () => {
      let energy = 0, duration = 0, packets = 0;
      (await T.room(k).getTrack(t.trackId).transceiver.receiver.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp') {
          energy = s.totalAudioEnergy ?? 0; duration = s.totalSamplesDuration ?? 0; packets = s.packetsReceived ?? 0;
        }
      });
      return { energy, duration, packets };
    };
    const a = await read();
    await new Promise((r) => setTimeout(r, ms));
    const b = await read();
    const d = b.duration - a.duration;
    // totalAudioEnergy sums level^2 x seconds: the RMS level over the window.
    return {
      participantId: t.participantId,
      level: d > 0 ? Math.sqrt((b.energy - a.energy) / d) : 0,
      seconds: d,
      packets: b.packets - a.packets,
    };
  }, { k: key, ms });
}

async function waitLevel(page, key, check, what) {
  let last;
  await poll(async () => { last = await levelOver(page, key, 1000); return last && check(last.level); },
    { timeoutMs: 20_000, intervalMs: 0, what }).catch((e) => { e.message += `; last ${JSON.stringify(last)}`; throw e; });
  return last;
}

test('MCU audio: ten speakers, one mixed track for everyone, the level follows the speakers, nobody hears themselves', { timeout: 240_000 }, async () => {
  const speakers = await ctx.page('speakers');
  for (const who of SPEAKERS) {
    await speakers.evaluate((r) => T.join(r.who, { room: r.room, identity: r.who }), { room: ROOM, who });
    await speakers.evaluate((who) => T.publishTone(who, 0), who);
  }
  // A binary built without the feature forwards instead, and says so: fail with the reason.
  const refused = logLines(ctx.server.logFile, /audio mixing refused/);
  assert.equal(refused.length, 0, `the server cannot mix (build it with --features audio-mix): ${refused[0]}`);
  const listener = await ctx.page('listener');
  await listener.evaluate((room) => T.join('l', { room, identity: 'listener' }), ROOM);

  // Everyone receives exactly one audio track, the room's.
  await poll(async () => (await listener.evaluate(() => T.tracks('l', 'audio').length)) === 1,
    { timeoutMs: 30_000, what: 'the listener receiving the mixed track' });
  for (const who of SPEAKERS) {
    await poll(async () => (await speakers.evaluate((k) => T.tracks(k, 'audio').length, who)) === 1,
      { timeoutMs: 30_000, what: `${who} receiving the mixed track` });
  }
  await sleep(2000);
  const tracks = await listener.evaluate(() => T.tracks('l', 'audio'));
  assert.equal(tracks.length, 1, `the listener has one audio track, not one per speaker: ${JSON.stringify(tracks)}`);
  assert.equal(tracks[0].participantId, '', 'the mixed track belongs to the room');
  await playAudio(listener, 'l');
  for (const who of SPEAKERS) await playAudio(speakers, who);

  // Silence in, silence out.
  const quiet = await waitLevel(listener, 'l', (l) => l < 0.01, 'silence on the mix while nobody speaks');
  console.log(`nobody speaking: the listener's level is ${quiet.level.toFixed(4)}, ` +
    `${await metric(ctx.server.httpUrl, 'sfu_mix_frames_total')} frames mixed so far`);

  // s3 speaks alone: the listener and the other speakers hear it, s3 does not hear itself.
  await speakers.evaluate((g) => T.setTone('s3', g), LOUD);
  const one = await waitLevel(listener, 'l', (l) => l > 0.05, 'the listener hearing s3');
  const s4hears = await levelOver(speakers, 's4');
  const s3hears = await levelOver(speakers, 's3');
  console.log(`s3 speaking: listener ${one.level.toFixed(4)}, s4 ${s4hears.level.toFixed(4)}, s3 itself ${s3hears.level.toFixed(4)}`);
  assert.ok(s4hears.level > 0.05, `s4 does not hear s3: ${s4hears.level}`);
  assert.ok(s3hears.level < 0.01, `s3 hears itself: ${s3hears.level}`);

  // Everyone speaks: every speaker hears the others, the listener hears the room.
  await speakers.evaluate(({ all, g }) => { for (const w of all) T.setTone(w, g); }, { all: SPEAKERS, g: LOUD / 4 });
  const all = await waitLevel(listener, 'l', (l) => l > 0.05, 'the listener hearing the room');
  const s7hears = await levelOver(speakers, 's7');
  console.log(`all ten speaking: listener ${all.level.toFixed(4)}, s7 ${s7hears.level.toFixed(4)}`);
  assert.ok(s7hears.level > 0.05, `s7 hears nobody: ${s7hears.level}`);

  // And silence again: the level follows.
  await speakers.evaluate((all) => { for (const w of all) T.setTone(w, 0); }, SPEAKERS);
  const after = await waitLevel(listener, 'l', (l) => l < 0.01, 'silence on the mix once everyone stops');
  console.log(`everyone stopped: listener ${after.level.toFixed(4)}`);

  const frames = await metric(ctx.server.httpUrl, 'sfu_mix_frames_total');
  const undecodable = await metric(ctx.server.httpUrl, 'sfu_mix_undecodable_packets_total');
  console.log(`sfu_mix_frames_total = ${frames}, sfu_mix_undecodable_packets_total = ${undecodable}`);
  assert.ok(frames > 100, `the mixer made ${frames} frames`);
  assert.equal(undecodable, 0, 'Chromium\'s Opus was refused by the decoder');
});

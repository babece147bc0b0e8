// Per-file setup for the e2e tests: one server and one browser, torn down after the file's tests.

import { before, after } from 'node:test';
import { startServer, poll } from './server.mjs';
import { launchBrowser } from './browser.mjs';

/**
 * Registers before/after hooks that start a server (ports from `slot`) and, unless `browser: false`,
 * a Chromium. Returns an object filled in by the time the tests run: {server, browser, page(label)}.
 */
export function useServerAndBrowser(name, slot, { browser = true, env, host, browserOptions } = {}) {
  const ctx = { server: null, browser: null };
  ctx.page = (label) => ctx.browser.openPage(ctx.server.httpUrl, label);
  before(async () => {
    ctx.server = await startServer({ name, slot, env, host });
    if (browser) ctx.browser = await launchBrowser(name, browserOptions);
  });
  after(async () => {
    await ctx.browser?.close();
    await ctx.server?.stop();
    if (ctx.server) console.log(`${name}: server log ${ctx.server.logFile}`);
  });
  return ctx;
}

/** Waits until `key` in `page` has a subscribed track of each kind in `kinds`; returns them. */
export async function waitForTracks(page, key, kinds = ['video', 'audio'], timeoutMs = 30_000) {
  return poll(async () => {
    const tracks = await page.evaluate((k) => T.tracks(k), key);
    return kinds.every((kind) => tracks.some((t) => t.kind === kind)) && tracks;
  }, { timeoutMs, what: `${key}: subscribed ${kinds.join('+')}` });
}

/** Waits until the first video track of `key` has decoded more than `frames` frames; returns its stats. */
export async function waitDecoding(page, key, { frames = 0, timeoutMs = 30_000, trackId } = {}) {
  return poll(async () => {
    const s = await page.evaluate(([k, id]) => T.stats(k, 'video', id), [key, trackId]);
    return s && s.framesDecoded > frames && s;
  }, { timeoutMs, intervalMs: 250, what: `${key}: framesDecoded > ${frames}` });
}

/** Waits until the video of `key` keeps decoding: `more` new frames after the current count. */
export async function waitRising(page, key, { more = 20, timeoutMs = 30_000, trackId } = {}) {
  const first = await waitDecoding(page, key, { timeoutMs, trackId });
  return waitDecoding(page, key, { frames: first.framesDecoded + more, timeoutMs, trackId });
}

/**
 * Waits until the publishing page `key` encodes all three simulcast layers at a real frame rate
 * (>= 20 fps); returns how long that took. A layer its own bandwidth estimate holds back is kept at
 * full resolution but drops frames, which subscribers would see as stalls that are not the server's.
 */
export async function waitPublisherLayers(page, key, timeoutMs = 90_000) {
  const t0 = Date.now();
  let seen = [];
  try {
    await poll(async () => {
      seen = await page.evaluate(async (k) => {
        const out = [];
        (await T.room(k).publisherPc.getStats()).forEach((s) => {
          if (s.type === 'outbound-rtp' && s.kind === 'video') {
            out.push({ width: s.frameWidth, fps: s.framesPerSecond ?? 0, limit: s.qualityLimitationReason });
          }
        });
        return out;
      }, key);
      const live = seen.filter((l) => l.fps >= 20).map((l) => l.width);
      return [320, 640, 1280].every((w) => live.includes(w));
    }, { timeoutMs, intervalMs: 500, what: `${key} encoding all three layers` });
  } catch (e) {
    e.message += `; last seen ${JSON.stringify(seen)}`;
    throw e;
  }
  return Date.now() - t0;
}

/**
 * The longest time without a new decoded frame in sampler output ({t, framesDecoded}), counting
 * only from time `from` on (same clock as `t`); returns {ms, at, since}: `at` is the index (in the
 * window) of the sample that ended it, `since` the time it began.
 */
export function longestStall(samples, from = -Infinity) {
  const window = samples.filter((s) => s.t >= from);
  if (window.length === 0) return { ms: Infinity, at: null, since: null };
  let lastRise = window[0].t;
  let worst = { ms: 0, at: null, since: null };
  for (let i = 1; i < window.length; i++) {
    if (window[i].framesDecoded > window[i - 1].framesDecoded) {
      if (window[i].t - lastRise > worst.ms) worst = { ms: window[i].t - lastRise, at: i, since: lastRise };
      lastRise = window[i].t;
    }
  }
  const tail = window.at(-1).t - lastRise;
  return tail > worst.ms ? { ms: tail, at: window.length - 1, since: lastRise } : worst;
}

/**
 * Waits until the video of `key` has decoded without a gap over `maxGapMs` for a whole
 * `windowMs` (retrying windows until `timeoutMs`). A publisher whose own estimate has just
 * allowed its top layer may still stall it for seconds; timing the server against that would
 * measure the publisher.
 */
export async function waitSteady(page, key, trackId, { windowMs = 4000, maxGapMs = 300, timeoutMs = 60_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = null;
  while (Date.now() < deadline) {
    await page.evaluate(([k, id]) => T.startSampler(k, id, 100), [key, trackId]);
    await new Promise((r) => setTimeout(r, windowMs));
    const samples = await page.evaluate((k) => T.stopSampler(k), key);
    last = longestStall(samples).ms;
    if (last <= maxGapMs) return;
  }
  throw new Error(`${key}: no ${windowMs} ms window without a gap over ${maxGapMs} ms (last ${Math.round(last)} ms)`);
}

/** The publishing page `key`'s video encodings as its browser has them: {rid: active}. */
export async function publisherEncodings(page, key) {
  return page.evaluate((k) => {
    const local = T.room(k).localTracks.find((t) => t.kind === 'video');
    return Object.fromEntries(local.transceiver.sender.getParameters().encodings.map((e) => [e.rid, e.active]));
  }, key);
}

/**
 * The common opening of a one-publisher, one-subscriber test: page 'pub' joins `room` as alice
 * (key 'p') and publishes, page 'sub' joins as bob (key 's'), and both wait until bob decodes
 * video and the publisher encodes all three layers. Returns the pages, bob's video track and how
 * long the publisher took to encode every layer.
 */
export async function openPublisherAndSubscriber(ctx, room) {
  const pub = await ctx.page('pub');
  await pub.evaluate((r) => T.join('p', { room: r, identity: 'alice', publish: true }), room);
  const sub = await ctx.page('sub');
  await sub.evaluate((r) => T.join('s', { room: r, identity: 'bob' }), room);
  const [video] = (await waitForTracks(sub, 's', ['video'])).filter((t) => t.kind === 'video');
  await waitRising(sub, 's', { more: 10 });
  // Switch and pause times measure the server, so first wait until the publishing browser encodes
  // all three layers: its own bandwidth estimate can take many seconds to allow the top one.
  const layersMs = await waitPublisherLayers(pub, 'p');
  return { pub, sub, video, layersMs };
}

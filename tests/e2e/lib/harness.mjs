// Per-file setup for the e2e tests: one server and one browser, torn down after the file's tests.

import { before, after } from 'node:test';
import { startServer, poll } from './server.mjs';
import { launchBrowser } from './browser.mjs';

/**
 * Registers before/after hooks that start a server (ports from `slot`) and, unless `browser: false`,
 * a Chromium. Returns an object filled in by the time the tests run: {server, browser, page(label)}.
 */
export function useServerAndBrowser(name, slot, { browser = true, env } = {}) {
  const ctx = { server: null, browser: null };
  ctx.page = (label) => ctx.browser.openPage(ctx.server.httpUrl, label);
  before(async () => {
    ctx.server = await startServer({ name, slot, env });
    if (browser) ctx.browser = await launchBrowser(name);
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

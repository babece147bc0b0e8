// What the cluster tests do with SDK pages: join at a node (or a list of them), wait until a page
// sees given identities, read its events. The pages run the in-page helpers (inpage.js, `T`).

import { poll } from './server.mjs';

/**
 * Joins `room` as `identity` under `key` in `page`, at `urls` (a node's signaling URL or a list
 * of them); `publish`: false, true (camera and microphone) or publish() options. Returns T.join's
 * summary ({participantId, roomSid, url, redirects, others, ...}).
 */
export function joinAt(page, key, { room, identity, urls, publish = false, options = {} }) {
  return page.evaluate(([k, args]) => T.join(k, args), [key, { room, identity, url: urls, publish, options }]);
}

/** Where `key` is: {url, roomSid, participantId, state, redirects, others (identities, sorted)}. */
export function where(page, key) {
  return page.evaluate((k) => T.where(k), key);
}

/** Waits until `key` sees exactly `identities` (besides itself); returns where(). */
export async function waitSees(page, key, identities, { timeoutMs = 15_000 } = {}) {
  const want = [...identities].sort();
  return poll(async () => {
    const w = await where(page, key);
    return JSON.stringify(w.others) === JSON.stringify(want) && w;
  }, { timeoutMs, intervalMs: 100, what: `${key} to see exactly ${want.join(', ') || 'nobody'}` });
}

/** `key`'s recorded events of `type` (see inpage.js `plain`). */
export function events(page, key, type) {
  return page.evaluate(([k, t]) => T.events(k, t), [key, type]);
}

/** Waits for an event of `type` on `key` that `match`es; returns it. */
export function waitEvent(page, key, type, match = () => true, { timeoutMs = 15_000, what } = {}) {
  return poll(async () => (await events(page, key, type)).find(match),
    { timeoutMs, intervalMs: 100, what: what ?? `${key}: a '${type}' event` });
}

/** Waits until `key`'s data channel is open. */
export function waitDataOpen(page, key, timeoutMs = 20_000) {
  return poll(() => page.evaluate((k) => T.room(k).dataChannel?.readyState === 'open', key),
    { timeoutMs, what: `${key}: data channel open` });
}

/** The server track ids of `key`'s own published tracks, by source, once all of `sources` are named. */
export function ownTrackIds(page, key, sources, timeoutMs = 20_000) {
  return poll(async () => {
    const ids = await page.evaluate((k) => Object.fromEntries(T.room(k).localTracks.map((t) => [t.source, t.trackId])), key);
    return sources.every((s) => ids[s]) && ids;
  }, { timeoutMs, what: `${key}: server ids of its ${sources.join(' and ')} tracks` });
}

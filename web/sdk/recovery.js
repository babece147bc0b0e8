// @ts-check
// Bringing a session back after its socket closed. A dropped socket is resumed where it was, else
// on the other URLs in turn (a node of a cluster may have died). A node that does not know the
// session (4404: the node holding it died, or the session moved) is joined afresh with the
// original token, and so is the node a draining one sends us to: the Room then sets up new
// connections and publishes its tracks again.
import { RoomError } from './errors.js';
import { FATAL_CLOSE_CODES, SESSION_NOT_FOUND_CLOSE_CODE } from './signal-client.js';
import { sleep } from './util.js';

/** Waits between attempts: the first soon, then backing off. */
const RECONNECT_DELAYS_MS = [250, 500, 1000, 2000, 4000, 5000];
/** Refused with this, a session may still be served by another node (full or draining here). */
const FULL_CLOSE_CODE = 4503;

/** @typedef {import('./signal-client.js').SignalClient} SignalClient */
/** @typedef {import('./signal-client.js').SignalMessage} SignalMessage */

/**
 * Where and how to try.
 * @typedef {object} RecoveryPlan
 * @property {string[]} urls tried in turn from the first
 * @property {'resume' | 'join'} mode 'join' when the session is known to be gone
 * @property {number} redirects what a join carries: 1 after a drain's redirect, else 0
 * @property {boolean} immediate the first attempt without a wait (a redirect named a live node)
 */

/**
 * What recovery needs from the Room.
 * @typedef {object} RecoveryHooks
 * @property {string | null} sessionToken what a resume presents
 * @property {string | null} token the access token the session first joined with (null: no rejoin)
 * @property {number} deadline no attempt starts after this (Date.now() time)
 * @property {() => boolean} stopped the Room left or closed meanwhile
 * @property {(attempt: number, delayMs: number, url: string, mode: 'resume' | 'join') => void} attempt
 *   hears of each attempt (from 1) before its wait
 * @property {import('./signal-client.js').RedirectListener} redirected
 * @property {(level: string, ...args: any[]) => void} log
 */

/**
 * The outcome: the session resumed, or joined afresh (on `url`).
 * @typedef {{kind: 'resumed' | 'joined', reply: SignalMessage, url: string}} Recovered
 */

/**
 * Tries until the session is back; resolves with how, or null once `stopped()` says so. Rejects
 * with a RoomError: code 'reconnect_timeout' when an attempt would start after the deadline, or
 * the close code's name (with closeCode) when a node refused for good (a bad token, say).
 * @param {SignalClient} signal
 * @param {RecoveryPlan} plan
 * @param {RecoveryHooks} hooks
 * @returns {Promise<Recovered | null>}
 */
export async function recover(signal, plan, hooks) {
  let mode = plan.mode;
  let turn = 0; // which URL is next
  let waits = 0; // how many backoff waits so far
  let now = plan.immediate;
  for (let n = 1; !hooks.stopped(); n++) {
    const delay = now ? 0 : RECONNECT_DELAYS_MS[Math.min(waits++, RECONNECT_DELAYS_MS.length - 1)];
    now = false;
    const url = plan.urls[turn % plan.urls.length];
    hooks.attempt(n, delay, url, mode);
    if (delay) await sleep(delay);
    if (hooks.stopped()) return null;
    if (Date.now() > hooks.deadline) throw new RoomError('the session did not come back in time', { code: 'reconnect_timeout' });
    try {
      const reply = mode === 'resume'
        ? await signal.open({ type: 'resume', session_token: hooks.sessionToken }, 'resumed', url, hooks.redirected)
        : await signal.open(joinMessage(hooks.token ?? '', plan.redirects), 'joined', url, hooks.redirected);
      return hooks.stopped() ? null : { kind: mode === 'resume' ? 'resumed' : 'joined', reply, url: signal.url };
    } catch (e) {
      hooks.log('warn', `${mode} attempt ${n} at ${url} failed: ${e.message}`);
      if (mode === 'resume' && e.closeCode === SESSION_NOT_FOUND_CLOSE_CODE && hooks.token) {
        // That node is up and does not know us: join it at once.
        mode = 'join';
        now = true;
        continue;
      }
      if (refusedForGood(e)) throw e;
      turn++;
    }
  }
  return null;
}

/**
 * Whether a node's refusal holds on every node (a bad token, say): not a node that is full or
 * draining (4503), which another may serve.
 * @param {{closeCode?: number}} e
 * @returns {boolean}
 */
export function refusedForGood(e) {
  return !!e.closeCode && FATAL_CLOSE_CODES.has(e.closeCode) && e.closeCode !== FULL_CLOSE_CODE;
}

/**
 * A `join`; `redirects` only when not 0.
 * @param {string} token
 * @param {number} redirects
 * @returns {SignalMessage}
 */
export function joinMessage(token, redirects) {
  return redirects ? { type: 'join', token, redirects } : { type: 'join', token };
}

/**
 * The URLs in the order a dropped session tries them: the one in use, then the others in turn
 * after it.
 * @param {string[]} urls
 * @param {string} current
 * @returns {string[]}
 */
export function rotation(urls, current) {
  const at = urls.indexOf(current);
  if (at < 0) return [current, ...urls];
  return [...urls.slice(at), ...urls.slice(0, at)];
}

// @ts-check
// Where the SDK talks to: the signaling URL, and the dev token endpoint next to it.
import { RoomError } from './errors.js';

/**
 * Turns what the caller gave into the signaling URL: `ws(s)://host/rtc`.
 * Accepts a ws(s) or http(s) URL, a bare origin, or nothing (then the page's own origin).
 * @param {string | URL | null} [url]
 * @returns {string}
 */
export function signalingUrl(url) {
  const base = typeof location !== 'undefined' ? location.href : 'http://127.0.0.1:7880/';
  const u = new URL(url ?? '/', base);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/rtc';
  return u.toString();
}

/**
 * Fetches a token from the server's dev endpoint (only enabled in dev mode).
 * @param {string} room
 * @param {string} identity
 * @param {string} [origin] the server's http(s) origin; the page's own by default
 * @returns {Promise<string>}
 */
export async function fetchDevToken(room, identity, origin) {
  const base = origin ?? (typeof location !== 'undefined' ? location.origin : 'http://127.0.0.1:7880');
  const u = new URL('/dev/token', base);
  u.searchParams.set('room', room);
  u.searchParams.set('identity', identity);
  const res = await fetch(u);
  if (!res.ok) throw new RoomError(`GET /dev/token: HTTP ${res.status}`, { code: 'http_' + res.status });
  const body = await res.json();
  return body.token;
}

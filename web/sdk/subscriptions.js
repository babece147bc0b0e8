// @ts-check
// What we want of each remote track: the layer or size the application asked for
// (setSubscription), completed by the size its video element shows (adaptive stream). Each change
// becomes one 'subscription' message; the last one per track is sent again after a resume.
import { AdaptiveStream } from './adaptive-stream.js';

/** @typedef {import('./signal-client.js').SignalMessage} SignalMessage */

/**
 * What the application asked for one track.
 * @typedef {object} SubscriptionWish
 * @property {'low'|'medium'|'high'|'auto'} [layer]
 * @property {number} [maxWidth]
 * @property {number} [maxHeight]
 * @property {boolean} [paused]
 */

export class Subscriptions {
  /**
   * @param {(msg: SignalMessage) => boolean} send
   * @param {{adaptiveStream?: boolean}} options read when used: the Room's options
   */
  constructor(send, options) {
    this._send = send;
    this._options = options;
    /** @type {Map<string, SignalMessage>} track id -> the last 'subscription' sent */
    this._sent = new Map();
    /** @type {Map<string, {layer: string, maxWidth?: number, maxHeight?: number, paused: boolean}>} */
    this._wanted = new Map();
    /** @type {AdaptiveStream | null} created when the first video element is observed */
    this._adaptive = null;
  }

  /**
   * @param {string} trackId
   * @param {SubscriptionWish} wish
   */
  set(trackId, { layer = 'auto', maxWidth, maxHeight, paused = false } = {}) {
    this._wanted.set(trackId, { layer, maxWidth, maxHeight, paused: !!paused });
    this._update(trackId);
  }

  /**
   * Follows the size and visibility of `element` for `trackId`; returns a function that stops.
   * @param {string} trackId
   * @param {HTMLElement} element
   * @returns {() => void}
   */
  observe(trackId, element) {
    if (this._options.adaptiveStream === false || typeof ResizeObserver === 'undefined') return () => {};
    this._adaptive ??= new AdaptiveStream((id) => this._update(id));
    this._adaptive.observe(trackId, element);
    return () => this.unobserve(trackId);
  }

  /** @param {string} trackId */
  unobserve(trackId) {
    if (!this._adaptive) return;
    this._adaptive.unobserve(trackId);
    if (this._sent.has(trackId)) this._update(trackId);
  }

  /**
   * Stops following the track's element without a new message (the track is no longer received).
   * @param {string} trackId
   */
  forgetView(trackId) {
    this._adaptive?.unobserve(trackId);
  }

  /**
   * Forgets everything about a track that was unpublished.
   * @param {string} trackId
   */
  forget(trackId) {
    this._sent.delete(trackId);
    this._wanted.delete(trackId);
    this._adaptive?.unobserve(trackId);
  }

  /**
   * Sends every track's last settings again (the server forgot them with the old socket); only
   * those of `tracks` when given (after a join elsewhere, the tracks still in the room).
   * @param {Set<string>} [tracks]
   */
  resend(tracks) {
    for (const [trackId, msg] of this._sent) if (!tracks || tracks.has(trackId)) this._send(msg);
  }

  close() {
    this._adaptive?.close();
    this._adaptive = null;
  }

  /**
   * Sends what the application asked for, completed by what its element shows, if that changed.
   * @param {string} trackId
   */
  _update(trackId) {
    const app = this._wanted.get(trackId) ?? { layer: 'auto', paused: false };
    const view = this._adaptive?.view(trackId);
    /** @type {SignalMessage} */
    const msg = { type: 'subscription', track_id: trackId, layer: app.layer, paused: app.paused || !!view?.hidden };
    const maxWidth = app.maxWidth ?? view?.maxWidth;
    const maxHeight = app.maxHeight ?? view?.maxHeight;
    if (maxWidth != null && maxWidth > 0) msg.max_width = Math.round(maxWidth);
    if (maxHeight != null && maxHeight > 0) msg.max_height = Math.round(maxHeight);
    const last = this._sent.get(trackId);
    if (last && JSON.stringify(last) === JSON.stringify(msg)) return;
    this._sent.set(trackId, msg);
    this._send(msg);
  }
}

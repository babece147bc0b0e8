// @ts-check
// How the Room reports: DOM events whose payload is both `event.detail` and spread onto the event,
// an `on()` shorthand, a logger, and failures as 'error' events.
import { RoomError } from './errors.js';

/** @typedef {(level: string, ...args: any[]) => void} Logger */

/** @template {{log?: Logger}} O the owner's options; `log` replaces the console */
export class RoomEvents extends EventTarget {
  /** @param {O} options */
  constructor(options) {
    super();
    this.options = options;
  }

  /**
   * Dispatches `type`; the payload is both `event.detail` and spread onto the event itself.
   * @param {string} type
   * @param {object} [payload]
   */
  _emit(type, payload = {}) {
    /** @type {any} */
    const ev = new Event(type);
    ev.detail = payload;
    for (const [k, v] of Object.entries(payload)) {
      if (!(k in ev)) ev[k] = v;
    }
    this.dispatchEvent(ev);
  }

  /**
   * Shorthand: `room.on('data', ({from, data}) => ...)`; returns a function that unsubscribes.
   * @param {string} type
   * @param {(detail: any, ev: Event) => void} fn
   * @returns {() => void}
   */
  on(type, fn) {
    /** @param {any} ev */
    const listener = (ev) => fn(ev.detail, ev);
    this.addEventListener(type, listener);
    return () => this.removeEventListener(type, listener);
  }

  /**
   * @param {string} level 'debug' | 'info' | 'warn' | 'error'
   * @param {...any} args
   */
  _log(level, ...args) {
    if (this.options.log) this.options.log(level, ...args);
    else if (level === 'error' || level === 'warn') console[level]('[sfu]', ...args);
  }

  /**
   * Reports a failure as an 'error' event; `cause` may carry a server error code.
   * @param {string} message
   * @param {{code?: any, request?: string}} [cause]
   */
  _fail(message, cause = {}) {
    const code = typeof cause.code === 'string' ? cause.code : 'client';
    const err = cause instanceof RoomError ? cause : new RoomError(message, { code, request: cause.request });
    this._log('warn', message, cause);
    this._emit('error', { code: err.code, message, request: err.request, error: err });
  }
}

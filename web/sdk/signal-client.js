// @ts-check
// The signaling socket: one WebSocket to the server, opened with a first message (join or resume)
// whose reply it waits for, following a node's `redirect` to another; then server messages,
// requests that await a reply, a keepalive ping, and the close codes after which a session cannot
// be resumed. It knows nothing of rooms.
import { RoomError } from './errors.js';
import { signalingUrl } from './urls.js';

/** How long the first message may wait for its reply before the attempt is given up. */
const CONNECT_TIMEOUT_MS = 15_000;
/** Redirects followed for one first message: servers stop at 2, so more means a loop. */
const MAX_REDIRECTS_FOLLOWED = 3;
/** The close code after a `redirect`: not fatal, the client joins where it was sent. */
export const REDIRECTED_CLOSE_CODE = 4307;
/** The close code of a session the node does not know (resume refused): join again. */
export const SESSION_NOT_FOUND_CLOSE_CODE = 4404;
/** A ping every 10 s keeps the socket in use; no pong for 20 s means the path is gone. */
const PING_INTERVAL_MS = 10_000;
const PONG_TIMEOUT_MS = 20_000;

/** Close codes after which the session cannot be resumed: sfu_proto::CloseCode's fatal codes
 * (crates/sfu-proto/src/close_code.rs), by the same names; a Rust test checks they agree. */
export const FATAL_CLOSE_CODES = new Map([
  [1009, 'message_too_big'],
  [4400, 'bad_first_message'],
  [4401, 'unauthorized'],
  [4403, 'not_allowed'],
  [4404, 'session_not_found'],
  [4408, 'join_timeout'],
  [4409, 'replaced'],
  [4410, 'removed'],
  [4503, 'full'],
]);

/** The server's reply to each client request that has one, by the request's type. */
const REPLIES = new Map([['offer', 'answer']]);

/**
 * A message on the socket, either way: `type` plus that type's fields (docs/protocol.md).
 * @typedef {{type: string, [field: string]: any}} SignalMessage
 */

/** @typedef {{code: number, reason: string}} CloseInfo */

/**
 * Hears of each redirect followed: from the URL that sent the client on, to `to`, and the
 * `redirects` count the join now carries.
 * @typedef {(from: string, to: string, redirects: number) => void} RedirectListener
 */

/**
 * What the owner of a SignalClient hears from it.
 * @typedef {object} SignalHandlers
 * @property {(msg: SignalMessage) => void} message every server message after the first reply
 * @property {(close: CloseInfo) => void} closed the socket in use closed, or was given up
 * @property {(msg: SignalMessage, expect: string) => void} earlyError an 'error' before the first reply
 * @property {(level: string, ...args: any[]) => void} log
 */

/**
 * A request awaiting its reply.
 * @typedef {object} PendingRequest
 * @property {string} request the request's type
 * @property {string} reply the reply's type
 * @property {(msg: SignalMessage) => void} resolve
 * @property {(err: RoomError) => void} reject
 * @property {ReturnType<typeof setTimeout> | undefined} timer
 */

export class SignalClient {
  /**
   * @param {string} url the signaling URL (ws(s)://host/rtc) tried first
   * @param {SignalHandlers} handlers
   */
  constructor(url, handlers) {
    /** The URL of the socket in use, or of the last one opened. */
    this.url = url;
    this._handlers = handlers;
    /** @type {WebSocket | null} the socket in use: events of any other socket are stale */
    this._ws = null;
    /** @type {Set<PendingRequest>} */
    this._pending = new Set();
    this._pingId = 0;
    /** @type {Map<number, (pongAt: number) => void>} pings awaiting their pong, by id */
    this._pings = new Map();
    /** @type {ReturnType<typeof setInterval> | null} */
    this._pingTimer = null;
    this._lastPong = 0;
  }

  /**
   * Opens a socket to `url`, sends `first` (join or resume) and resolves with the server's reply of
   * type `expect`. Rejects with a RoomError: code 'timeout', 'connect_failed', 'redirected' (with
   * `redirectUrl`: the server sent a `redirect` and closed), or the close code's name (or
   * 'closed') with `closeCode` and `closeReason` when the server closed the socket first.
   * @param {SignalMessage} first
   * @param {string} expect
   * @param {string} [url] default: the URL in use
   * @returns {Promise<SignalMessage>}
   */
  connect(first, expect, url = this.url) {
    return new Promise((resolve, reject) => {
      let settled = false;
      /** @type {string | null} where a `redirect` before the reply sends us */
      let redirectUrl = null;
      /** @type {WebSocket} */
      let ws;
      try {
        ws = new WebSocket(url);
      } catch (e) {
        reject(new RoomError(`cannot open ${url}: ${e.message}`, { code: 'connect_failed' }));
        return;
      }
      this._ws = ws;
      this.url = url;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        reject(new RoomError(`no '${expect}' within ${CONNECT_TIMEOUT_MS} ms`, { code: 'timeout' }));
        try { ws.close(4000, 'timeout'); } catch {}
      }, CONNECT_TIMEOUT_MS);
      ws.onopen = () => ws.send(JSON.stringify(first));
      ws.onmessage = (ev) => {
        const msg = this._parse(ev.data);
        if (!msg || settled) return;
        if (msg.type === expect) {
          settled = true;
          clearTimeout(timer);
          ws.onmessage = (e) => this._onMessage(ws, e);
          ws.onclose = (e) => this._onClose(ws, e);
          resolve(msg);
          return;
        }
        if (msg.type === 'redirect') {
          // The node is full or draining; it closes next (4307) and we go where it says.
          redirectUrl = redirectTarget(msg.url);
          if (!redirectUrl) this._handlers.log('warn', `redirect to an unusable URL: ${msg.url}`);
          return;
        }
        if (msg.type === 'error') {
          // Keep waiting: the server closes the socket if it cannot go on.
          this._handlers.earlyError(msg, expect);
          return;
        }
        this._handlers.log('warn', `unexpected '${msg.type}' before '${expect}'`);
      };
      ws.onerror = () => {};
      ws.onclose = (e) => {
        if (this._ws === ws) this._ws = null;
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (redirectUrl && !FATAL_CLOSE_CODES.has(e.code)) {
          reject(new RoomError(`redirected to ${redirectUrl}`, {
            code: 'redirected', closeCode: e.code, closeReason: e.reason, redirectUrl,
          }));
          return;
        }
        reject(new RoomError(`socket closed before '${expect}': ${e.code} ${e.reason}`, {
          code: FATAL_CLOSE_CODES.get(e.code) ?? 'closed',
          closeCode: e.code,
          closeReason: e.reason,
        }));
      };
    });
  }

  /**
   * Like connect(), following redirects: each sends the same first message to the URL named,
   * a join with `redirects` one higher. Rejects as connect() does; 'redirected' only past
   * MAX_REDIRECTS_FOLLOWED redirects.
   * @param {SignalMessage} first
   * @param {string} expect
   * @param {string} url
   * @param {RedirectListener} [redirected]
   * @returns {Promise<SignalMessage>}
   */
  async open(first, expect, url, redirected) {
    let msg = first;
    let at = url;
    for (let hop = 0; ; hop++) {
      try {
        return await this.connect(msg, expect, at);
      } catch (e) {
        if (e.code !== 'redirected' || !e.redirectUrl || hop >= MAX_REDIRECTS_FOLLOWED) throw e;
        const redirects = (msg.redirects ?? 0) + 1;
        if (msg.type === 'join') msg = { ...msg, redirects };
        redirected?.(at, e.redirectUrl, redirects);
        at = e.redirectUrl;
      }
    }
  }

  /**
   * Sends `msg` if the socket is open; false (and nothing sent) when it is not.
   * @param {SignalMessage} msg
   * @returns {boolean}
   */
  send(msg) {
    const ws = this._ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      this._handlers.log('debug', `not connected, dropped '${msg.type}'`);
      return false;
    }
    ws.send(JSON.stringify(msg));
    return true;
  }

  /**
   * Sends `msg` and resolves with the server's reply to it. Rejects with a RoomError: the
   * server's error about this request (its code), code 'closed' when the socket is not open or
   * closes first, code 'timeout' after `timeoutMs`.
   * @param {SignalMessage} msg a request that has a reply (an 'offer')
   * @param {number} timeoutMs
   * @returns {Promise<SignalMessage>}
   */
  request(msg, timeoutMs) {
    const reply = REPLIES.get(msg.type);
    if (!reply) return Promise.reject(new RoomError(`'${msg.type}' has no reply`));
    return new Promise((resolve, reject) => {
      /** @type {PendingRequest} */
      const pending = { request: msg.type, reply, resolve, reject, timer: undefined };
      this._pending.add(pending);
      pending.timer = setTimeout(() => {
        this._pending.delete(pending);
        reject(new RoomError(`no ${reply} within ${timeoutMs} ms`, { code: 'timeout' }));
      }, timeoutMs);
      if (!this.send(msg)) this._finish(pending).reject(new RoomError('not connected', { code: 'closed' }));
    });
  }

  /**
   * Sends a ping; resolves with the round-trip time in ms when its pong arrives.
   * @returns {Promise<number>}
   */
  ping() {
    const t0 = performance.now();
    const id = this._sendPing();
    if (id === null) return Promise.reject(new RoomError('not connected'));
    return new Promise((resolve) => this._pings.set(id, (pongAt) => resolve(pongAt - t0)));
  }

  /** @returns {number | null} the ping's id (its pong echoes it), or null when not connected */
  _sendPing() {
    const id = ++this._pingId;
    return this.send({ type: 'ping', id }) ? id : null;
  }

  /** Pings every PING_INTERVAL_MS; gives the socket up when no pong came for PONG_TIMEOUT_MS. */
  startKeepalive() {
    this.stopKeepalive();
    this._lastPong = Date.now();
    this._pingTimer = setInterval(() => {
      if (Date.now() - this._lastPong > PONG_TIMEOUT_MS && this._ws) {
        this._handlers.log('warn', 'no pong, dropping the socket');
        this.drop('pong timeout');
        return;
      }
      this._sendPing();
    }, PING_INTERVAL_MS);
  }

  stopKeepalive() {
    if (this._pingTimer) clearInterval(this._pingTimer);
    this._pingTimer = null;
  }

  /**
   * Closes the socket once what was sent has gone out (at most 1 s), as after a 'leave'.
   * @param {number} code
   * @param {string} reason
   */
  async closeAfterFlush(code, reason) {
    const ws = this._ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    // Let the last message go out before the close frame.
    await new Promise((resolve) => {
      const t = setTimeout(resolve, 1000);
      const check = () => (ws.bufferedAmount === 0 ? (clearTimeout(t), resolve(undefined)) : setTimeout(check, 10));
      check();
    });
    try { ws.close(code, reason); } catch {}
  }

  /**
   * Closes the socket and forgets it: its close is not reported. Requests still awaiting a reply
   * end by their timeout.
   * @param {number} [code]
   */
  close(code = 1000) {
    this.stopKeepalive();
    const ws = this._ws;
    if (!ws) return;
    this._ws = null;
    try { ws.close(code); } catch {}
  }

  /**
   * Gives the socket up as if the network failed, without waiting for the close handshake:
   * `closed` is reported now with code 1006. False when there is no socket.
   * @param {string} reason
   * @returns {boolean}
   */
  drop(reason) {
    const ws = this._ws;
    if (!ws) return false;
    try { ws.close(4000, reason); } catch {}
    this._onClose(ws, { code: 1006, reason });
    return true;
  }

  /**
   * @param {any} data
   * @returns {SignalMessage | null}
   */
  _parse(data) {
    try {
      return JSON.parse(data);
    } catch {
      this._handlers.log('warn', 'non-JSON message from server', data);
      return null;
    }
  }

  /**
   * @param {WebSocket} ws
   * @param {MessageEvent} ev
   */
  _onMessage(ws, ev) {
    if (ws !== this._ws) return;
    const msg = this._parse(ev.data);
    if (!msg) return;
    if (msg.type === 'pong') this._lastPong = Date.now();
    this._handlers.message(msg);
    if (msg.type === 'pong') {
      const pongAt = performance.now();
      this._pings.get(msg.id)?.(pongAt);
      this._pings.delete(msg.id);
    }
    this._settle(msg);
  }

  /**
   * Settles the request `msg` replies to, or that a server error names.
   * @param {SignalMessage} msg
   */
  _settle(msg) {
    if (msg.type === 'error') {
      const pending = [...this._pending].find((p) => p.request === msg.request);
      if (pending) this._finish(pending).reject(new RoomError(msg.message, { code: msg.code, request: msg.request }));
      return;
    }
    const request = [...REPLIES].find(([, reply]) => reply === msg.type)?.[0];
    if (!request) return;
    const pending = [...this._pending].find((p) => p.reply === msg.type);
    if (pending) this._finish(pending).resolve(msg);
    else this._handlers.log('warn', `${msg.type} with no ${request} outstanding`);
  }

  /**
   * @param {PendingRequest} pending
   * @returns {PendingRequest}
   */
  _finish(pending) {
    clearTimeout(pending.timer);
    this._pending.delete(pending);
    return pending;
  }

  /**
   * @param {WebSocket} ws
   * @param {CloseInfo} ev
   */
  _onClose(ws, ev) {
    if (ws !== this._ws) return;
    this._ws = null;
    this.stopKeepalive();
    const closed = new RoomError('socket closed', { code: 'closed' });
    for (const pending of [...this._pending]) this._finish(pending).reject(closed);
    this._handlers.closed({ code: ev.code, reason: ev.reason });
  }
}


/**
 * A `redirect` message's URL as a signaling URL, or null when it is not a ws(s) or http(s) URL.
 * @param {unknown} url
 * @returns {string | null}
 */
function redirectTarget(url) {
  if (typeof url !== 'string') return null;
  try {
    const target = signalingUrl(url);
    return /^wss?:$/.test(new URL(target).protocol) ? target : null;
  } catch {
    return null;
  }
}

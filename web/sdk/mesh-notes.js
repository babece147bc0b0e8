// @ts-check
// Switch notes between two mesh peers, on a small data channel of their mesh connection: each
// side says when it has moved its app to the new path ('sfu' or 'mesh'), so the other keeps the
// old path up until then, however long the peer's own switch takes (under CPU load one side's
// new path can take seconds longer to decode steadily than the other's; a fixed grace cut the
// slower side's old path before its new one played).

/** @typedef {'sfu' | 'mesh'} SwitchNote */

export class SwitchNotes {
  /**
   * Opens the channel; call before the connection's first offer (both sides do, so the channel
   * is pre-negotiated: no in-band announcement).
   * @param {RTCPeerConnection} pc
   * @param {(level: string, ...args: any[]) => void} log
   */
  constructor(pc, log) {
    this._channel = pc.createDataChannel('mesh-notes', { negotiated: true, id: 0, ordered: true });
    /** @type {Set<SwitchNote>} what the peer said */
    this._heard = new Set();
    /** @type {SwitchNote[]} said before the channel opened */
    this._pending = [];
    /** @type {Set<() => void>} */
    this._waiters = new Set();
    this._over = false;
    this._channel.onopen = () => {
      for (const note of this._pending.splice(0)) this._channel.send(note);
    };
    this._channel.onmessage = (e) => {
      if (e.data !== 'sfu' && e.data !== 'mesh') return;
      log('debug', `mesh peer says it moved to the ${e.data}`);
      this._heard.add(e.data);
      this._wake();
    };
    // The peer closed the connection: it needs nothing from it any more.
    this._channel.onclose = () => {
      this._over = true;
      this._wake();
    };
  }

  /** @param {SwitchNote} note we moved the app to this path */
  say(note) {
    if (this._channel.readyState === 'open') this._channel.send(note);
    else if (this._channel.readyState === 'connecting') this._pending.push(note);
  }

  /**
   * Resolves once the peer said `note` (or its end closed), or after `timeoutMs`, or when
   * `cancelled()`; with whether the peer said it or is gone.
   * @param {SwitchNote} note
   * @param {number} timeoutMs
   * @param {() => boolean} cancelled looked at every 200 ms
   * @returns {Promise<boolean>}
   */
  heard(note, timeoutMs, cancelled) {
    const done = () => this._over || this._heard.has(note);
    if (done()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const deadline = performance.now() + timeoutMs;
      const check = () => {
        if (!done() && !cancelled() && performance.now() < deadline) return;
        clearInterval(timer);
        this._waiters.delete(check);
        resolve(done());
      };
      const timer = setInterval(check, 200);
      this._waiters.add(check);
    });
  }

  _wake() {
    for (const check of [...this._waiters]) check();
  }
}

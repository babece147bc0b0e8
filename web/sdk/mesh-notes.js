// @ts-check
// Switch notes between two mesh peers: each side says (a `peer_signal` with `moved`, relayed by
// the server in either mode) when it has moved its app to the other's media on the new path
// ('sfu' or 'mesh'), so the other keeps the old path up until then, however long the peer's own
// switch takes (under CPU load one side's new path can take seconds longer to decode steadily
// than the other's; a fixed grace cut the slower side's old path before its new one played).

/** @typedef {'sfu' | 'mesh'} SwitchNote */

export class SwitchNotes {
  /** @param {(note: SwitchNote) => void} send sends our note to the peer */
  constructor(send) {
    this._send = send;
    /** @type {Set<SwitchNote>} what the peer said */
    this._heard = new Set();
    /** @type {Set<() => void>} */
    this._waiters = new Set();
  }

  /** @param {SwitchNote} note we moved the app to this path */
  say(note) {
    this._send(note);
  }

  /** @param {SwitchNote} note the peer said it moved to this path */
  got(note) {
    this._heard.add(note);
    for (const check of [...this._waiters]) check();
  }

  /**
   * Resolves once the peer said `note`, or after `timeoutMs`, or when `cancelled()`; with
   * whether the peer said it.
   * @param {SwitchNote} note
   * @param {number} timeoutMs
   * @param {() => boolean} cancelled looked at every 200 ms
   * @returns {Promise<boolean>}
   */
  heard(note, timeoutMs, cancelled) {
    if (this._heard.has(note)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const deadline = performance.now() + timeoutMs;
      /** @type {ReturnType<typeof setInterval> | undefined} */
      let timer;
      const check = () => {
        if (!this._heard.has(note) && !cancelled() && performance.now() < deadline) return;
        clearInterval(timer);
        this._waiters.delete(check);
        resolve(this._heard.has(note));
      };
      timer = setInterval(check, 200);
      this._waiters.add(check);
    });
  }
}

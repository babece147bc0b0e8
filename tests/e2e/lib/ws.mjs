// A signaling client for node-side protocol tests (the `ws` package: Node 20 has no stable global
// WebSocket). Keeps every message it receives so tests can wait for one of a given type.

import WebSocket from 'ws';

export class SignalClient {
  constructor(url) {
    this.url = url;
    this.messages = [];
    this.waiters = [];
    this.ws = new WebSocket(url, { maxPayload: 16 * 1024 * 1024 });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    this.ws.on('error', () => {}); // surfaced through `closed`
    this.ws.on('message', (data, isBinary) => {
      let msg;
      try {
        msg = JSON.parse(isBinary ? Buffer.from(data).toString() : data.toString());
      } catch {
        msg = { type: '__unparsable__', raw: data.toString() };
      }
      this.messages.push(msg);
      for (const w of [...this.waiters]) {
        if (w.match(msg)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(msg);
        }
      }
    });
  }

  static async open(url) {
    const c = new SignalClient(url);
    await c.opened;
    return c;
  }

  send(obj) {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  /**
   * Resolves with the first message (already received or future) that `match`es, a type name or a
   * predicate; rejects after `timeoutMs` or when the socket closes first.
   */
  next(match, timeoutMs = 10_000) {
    const pred = typeof match === 'string' ? (m) => m.type === match : match;
    const seen = this.messages.find(pred);
    if (seen) {
      this.messages.splice(this.messages.indexOf(seen), 1);
      return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      const w = { match: pred, resolve: (m) => {
        clearTimeout(timer);
        this.messages.splice(this.messages.indexOf(m), 1);
        resolve(m);
      } };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no message matching ${match} within ${timeoutMs} ms; got ${JSON.stringify(this.messages.map((m) => m.type))}`));
      }, timeoutMs);
      this.waiters.push(w);
      this.closed.then(({ code, reason }) => {
        if (!this.waiters.includes(w)) return;
        this.waiters.splice(this.waiters.indexOf(w), 1);
        clearTimeout(timer);
        reject(new Error(`socket closed (${code} ${reason}) while waiting for ${match}`));
      });
    });
  }

  /** Resolves with {code, reason} when the server closes the socket; rejects after `timeoutMs`. */
  waitClose(timeoutMs = 10_000) {
    return Promise.race([
      this.closed,
      new Promise((_, reject) => setTimeout(() => reject(new Error(`socket still open after ${timeoutMs} ms`)), timeoutMs).unref()),
    ]);
  }

  get isOpen() {
    return this.ws.readyState === WebSocket.OPEN;
  }

  close() {
    try {
      this.ws.close(1000);
    } catch {}
  }

  terminate() {
    this.ws.terminate();
  }
}

// Small helpers the SDK modules share.

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function base64ToBytes(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** A serial queue: each task starts after the previous one settled. */
export class SerialQueue {
  #tail = Promise.resolve();
  run(task) {
    const result = this.#tail.then(task);
    this.#tail = result.catch(() => {});
    return result;
  }
}

/** Copies the methods of class `source` onto class `target`'s prototype (one class, several files). */
export function mixIn(target, source) {
  for (const name of Object.getOwnPropertyNames(source.prototype)) {
    if (name === 'constructor') continue;
    Object.defineProperty(target.prototype, name, Object.getOwnPropertyDescriptor(source.prototype, name));
  }
}

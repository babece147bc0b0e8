// @ts-check
// Small helpers the SDK modules share.

/**
 * @param {number} ms
 * @returns {Promise<void>}
 */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * @param {string} b64
 * @returns {Uint8Array}
 */
export function base64ToBytes(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/**
 * Whether `transceiver` was stopped. Browsers still have `stopped`; TypeScript's DOM types
 * dropped it (it is deprecated in favour of currentDirection 'stopped').
 * @param {RTCRtpTransceiver} transceiver
 * @returns {boolean}
 */
export function isStopped(transceiver) {
  return !!(/** @type {{stopped?: boolean}} */ (/** @type {unknown} */ (transceiver)).stopped);
}

/** A serial queue: each task starts after the previous one settled. */
export class SerialQueue {
  /** @type {Promise<unknown>} */
  #tail = Promise.resolve();

  /**
   * @template T
   * @param {() => T | Promise<T>} task
   * @returns {Promise<T>}
   */
  run(task) {
    const result = this.#tail.then(task);
    this.#tail = result.catch(() => {});
    return result;
  }
}

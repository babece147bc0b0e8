// @ts-check
// Data messages: the "data" channel on the publisher connection carries what we send to every
// other participant; the server relays theirs to us as JSON ({from, participant_id, data} or
// data_b64 for binary) on that channel, or on one it opens on the subscriber connection.
import { RoomError } from './errors.js';
import { base64ToBytes } from './util.js';

/**
 * A received message, as the 'data' event carries it. `from` and `participantId` are null when the
 * message was not relayed JSON.
 * @typedef {{from: string | null, participantId: string | null, data: any, binary: boolean}} DataMessage
 */

export class DataMessages {
  /**
   * Opens the "data" channel on `pc` (before its first offer, so the offer carries it).
   * @param {RTCPeerConnection} pc
   * @param {{opened: () => void, received: (msg: DataMessage) => void, tooLarge: (bytes: number) => void}} hooks
   */
  constructor(pc, hooks) {
    this._hooks = hooks;
    this._pc = pc;
    /** @type {(string | ArrayBuffer)[]} what was sent before the channel opened */
    this._queue = [];
    const dc = pc.createDataChannel('data', { ordered: true });
    dc.binaryType = 'arraybuffer';
    this.channel = dc;
    /** @type {Promise<void>} resolves when the channel is open */
    this.ready = new Promise((resolve) => dc.addEventListener('open', () => resolve(), { once: true }));
    dc.onopen = () => {
      const queued = this._queue.splice(0);
      for (const m of queued) {
        // Only now is the maximum size known (the server's a=max-message-size): a message queued
        // before the channel opened that exceeds it is refused here, where send() cannot throw.
        try {
          sendOn(dc, m, pc.sctp?.maxMessageSize);
        } catch (e) {
          if (!(e instanceof TypeError)) throw e;
          hooks.tooLarge(typeof m === 'string' ? new TextEncoder().encode(m).byteLength : m.byteLength);
        }
      }
      hooks.opened();
    };
    dc.onmessage = (e) => hooks.received(decodeDataMessage(e.data));
  }

  /**
   * Sends text or binary (ArrayBuffer / typed array) to every other participant; queued while the
   * channel is still connecting.
   * @param {string | ArrayBuffer | ArrayBufferView} data
   */
  send(data) {
    const dc = this.channel;
    /** @type {string | ArrayBuffer} */
    let payload;
    if (ArrayBuffer.isView(data)) {
      payload = /** @type {ArrayBuffer} */ (data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    } else {
      payload = data;
    }
    if (dc.readyState === 'open') sendOn(dc, payload, this._pc.sctp?.maxMessageSize);
    else if (dc.readyState === 'connecting') this._queue.push(payload);
    else throw new RoomError(`data channel is ${dc.readyState}`);
  }

  /**
   * Listens on a channel the server opened.
   * @param {RTCDataChannel} channel
   */
  listen(channel) {
    channel.binaryType = 'arraybuffer';
    channel.onmessage = (m) => this._hooks.received(decodeDataMessage(m.data));
  }
}

/**
 * Sends, refusing (TypeError, as the standard says) a message over the peer's maximum size:
 * some browsers send it anyway and the channel then closes.
 * @param {RTCDataChannel} dc
 * @param {string | ArrayBuffer} payload
 * @param {number | undefined} maxSize the SCTP transport's maxMessageSize
 */
function sendOn(dc, payload, maxSize) {
  const size = typeof payload === 'string' ? new TextEncoder().encode(payload).byteLength : payload.byteLength;
  if (maxSize && size > maxSize) throw new TypeError(`a message of ${size} bytes is over the channel's maximum of ${maxSize}`);
  if (typeof payload === 'string') dc.send(payload);
  else dc.send(payload);
}

/**
 * Decodes what arrived on a data channel: relayed JSON from another participant, or else the raw
 * payload.
 * @param {string | ArrayBuffer} raw
 * @returns {DataMessage}
 */
export function decodeDataMessage(raw) {
  let text;
  if (typeof raw !== 'string') {
    try {
      text = new TextDecoder().decode(raw);
    } catch {
      return { from: null, participantId: null, data: new Uint8Array(raw), binary: true };
    }
  } else {
    text = raw;
  }
  let msg;
  try {
    msg = JSON.parse(text);
  } catch {
    msg = null;
  }
  if (!msg || typeof msg !== 'object' || (!('data' in msg) && !('data_b64' in msg))) {
    return { from: null, participantId: null, data: raw, binary: typeof raw !== 'string' };
  }
  const binary = 'data_b64' in msg && !('data' in msg);
  return {
    from: msg.from ?? null,
    participantId: msg.participant_id ?? null,
    data: binary ? base64ToBytes(msg.data_b64) : msg.data,
    binary,
  };
}

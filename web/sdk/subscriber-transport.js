// @ts-check
// The subscriber connection: the server offers, the client answers. Each offer lists which room
// track each m-section carries; the transceivers that receive become subscribed tracks, the ones
// that stopped are unsubscribed. It also reads a subscribed track's receive statistics.
import { PeerTransport } from './peer-transport.js';
import { SerialQueue, isStopped } from './util.js';
import { inboundStats } from './media.js';

/** @typedef {import('./signal-client.js').SignalMessage} SignalMessage */
/** @typedef {import('./room-state.js').Participant} Participant */
/** @typedef {import('./room-state.js').TrackInfo} TrackInfo */

/**
 * A remote track received on the subscriber connection (also the trackSubscribed event's payload).
 * @typedef {object} SubscribedTrack
 * @property {string} trackId
 * @property {string} participantId '' for the room's mixed audio (a room whose audio the server mixes)
 * @property {string | null} identity null until the participant is known
 * @property {boolean} mixed the room's mixed audio: every speaker but this participant, in one track
 * @property {string} kind
 * @property {MediaStreamTrack} track
 * @property {RTCRtpTransceiver} transceiver
 * @property {string | null} mid
 * @property {TrackInfo | null} info the track as the server described it, once known
 * @property {MediaStream} stream a stream holding only `track`, for a media element
 */

/**
 * What the subscriber needs beyond a plain transport.
 * @typedef {import('./peer-transport.js').TransportHooks & {
 *   participant: (id: string) => Participant | undefined,
 *   subscribed: (sub: SubscribedTrack) => void,
 *   unsubscribed: (sub: SubscribedTrack) => void,
 *   dataChannel: (channel: RTCDataChannel) => void,
 * }} SubscriberHooks
 */

/** @extends {PeerTransport<SubscriberHooks>} */
export class SubscriberTransport extends PeerTransport {
  /**
   * @param {RTCConfiguration} config
   * @param {SubscriberHooks} hooks
   */
  constructor(config, hooks) {
    super('subscriber', config, hooks);
    /** @type {Map<string, SubscribedTrack>} by track id */
    this.tracks = new Map();
    /** @type {Map<string, {trackId: string, participantId: string}>} mid -> track, from the latest offer */
    this._midToTrack = new Map();
    /** @type {Map<string, {bytes: number, t: number}>} track id -> bytes received at the last stats call */
    this._statsPrev = new Map();
    this._queue = new SerialQueue();
    // Should the server open channels of its own on this connection, they carry data messages too.
    this.pc.ondatachannel = (e) => hooks.dataChannel(e.channel);
  }

  /** @param {SignalMessage} msg */
  handle(msg) {
    if (msg.type !== 'offer') return super.handle(msg);
    this.onOffer(msg).catch((e) =>
      this._hooks.fail(`subscriber negotiation failed: ${e.message}`, { code: 'negotiation' }));
    return true;
  }

  /**
   * Answers a server offer, after any earlier one.
   * @param {SignalMessage} msg the 'offer' message
   * @returns {Promise<void>}
   */
  onOffer(msg) {
    return this._queue.run(() => this._answer(msg));
  }

  /** @param {SignalMessage} msg */
  async _answer(msg) {
    const pc = this.pc;
    if (this.unusable) return;
    const map = new Map();
    for (const t of msg.tracks ?? []) map.set(String(t.mid), { trackId: t.track_id, participantId: t.participant_id });
    this._midToTrack = map;
    await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
    this._flushCandidates();
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this._hooks.send({ type: 'answer', sdp: pc.localDescription.sdp });
    this._sync();
  }

  /** Compares the transceivers with the latest offer's track list: (un)subscribes tracks. */
  _sync() {
    /** @type {Map<string, {tr: RTCRtpTransceiver, trackId: string, participantId: string}>} */
    const live = new Map();
    for (const tr of this.pc.getTransceivers()) {
      if (tr.mid == null || isStopped(tr)) continue;
      const dir = tr.currentDirection ?? tr.direction;
      if (dir === 'inactive' || dir === 'stopped' || dir === 'sendonly') continue;
      const m = this._midToTrack.get(String(tr.mid));
      if (m) live.set(m.trackId, { tr, ...m });
    }
    for (const [trackId, sub] of [...this.tracks]) {
      const now = live.get(trackId);
      if (!now || now.tr !== sub.transceiver || now.tr.receiver.track !== sub.track) this.unsubscribe(trackId);
    }
    for (const [trackId, { tr, participantId }] of live) {
      if (this.tracks.has(trackId)) continue;
      const track = tr.receiver.track;
      const p = this._hooks.participant(participantId);
      const info = p?.tracks.find((t) => t.id === trackId) ?? null;
      /** @type {SubscribedTrack} */
      const sub = {
        trackId,
        participantId,
        identity: p?.identity ?? null,
        mixed: participantId === '',
        kind: track.kind,
        track,
        transceiver: tr,
        mid: tr.mid,
        info,
        stream: new MediaStream([track]),
      };
      this.tracks.set(trackId, sub);
      this._hooks.subscribed(sub);
    }
  }

  /** @param {string} trackId */
  unsubscribe(trackId) {
    const sub = this.tracks.get(trackId);
    if (!sub) return;
    this.tracks.delete(trackId);
    this._statsPrev.delete(trackId);
    this._hooks.unsubscribed(sub);
  }

  unsubscribeAll() {
    for (const [trackId] of [...this.tracks]) this.unsubscribe(trackId);
  }

  /**
   * Fills the identity and description of tracks that arrived before their participant was known.
   * @param {Participant} p
   */
  participantKnown(p) {
    for (const sub of this.tracks.values()) {
      if (sub.participantId === p.id && !sub.identity) sub.identity = p.identity;
      if (sub.participantId === p.id && !sub.info) sub.info = p.tracks.find((t) => t.id === sub.trackId) ?? null;
    }
  }

  /**
   * Receive statistics of one subscribed track (from the inbound-rtp report of its receiver).
   * @param {string} trackId
   * @returns {Promise<ReturnType<typeof inboundStats>>}
   */
  async statsFor(trackId) {
    const sub = this.tracks.get(trackId);
    if (!sub) return null;
    return inboundStats(await sub.transceiver.receiver.getStats(), sub.kind, trackId, this._statsPrev);
  }
}

// Room methods for subscribing: the server's offers, the tracks they carry, the subscriber's
// wishes per track (layer, viewport, pause) and its receive stats.
import { AdaptiveStream } from './adaptive-stream.js';
import { inboundStats } from './media.js';

/** Mixed into Room (see sdk.js). */
export class Subscribing {
  async _onSubscriberOffer(msg) {
    const pc = this.subscriberPc;
    if (!pc || pc.signalingState === 'closed' || this._closed) return;
    const map = new Map();
    for (const t of msg.tracks ?? []) map.set(String(t.mid), { trackId: t.track_id, participantId: t.participant_id });
    this._midToTrack = map;
    await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
    this._flushCandidates('subscriber');
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this._send({ type: 'answer', sdp: pc.localDescription.sdp });
    this._syncSubscribedTracks();
  }

  /** Compares the transceivers with the latest offer's track list and emits (un)subscribed events. */
  _syncSubscribedTracks() {
    const pc = this.subscriberPc;
    const live = new Map(); // track id -> transceiver
    for (const tr of pc.getTransceivers()) {
      if (tr.mid == null || tr.stopped) continue;
      const dir = tr.currentDirection ?? tr.direction;
      if (dir === 'inactive' || dir === 'stopped' || dir === 'sendonly') continue;
      const m = this._midToTrack.get(String(tr.mid));
      if (m) live.set(m.trackId, { tr, ...m });
    }
    for (const [trackId, sub] of [...this.subscribedTracks]) {
      const now = live.get(trackId);
      if (!now || now.tr !== sub.transceiver || now.tr.receiver.track !== sub.track) this._unsubscribeTrack(trackId);
    }
    for (const [trackId, { tr, participantId }] of live) {
      if (this.subscribedTracks.has(trackId)) continue;
      const track = tr.receiver.track;
      const p = this.participants.get(participantId);
      const info = p?.tracks.find((t) => t.id === trackId) ?? null;
      const sub = {
        trackId,
        participantId,
        identity: p?.identity ?? null,
        kind: track.kind,
        track,
        transceiver: tr,
        mid: tr.mid,
        info,
        stream: new MediaStream([track]),
      };
      this.subscribedTracks.set(trackId, sub);
      this._emit('trackSubscribed', { ...sub });
    }
  }

  _unsubscribeTrack(trackId) {
    const sub = this.subscribedTracks.get(trackId);
    if (!sub) return;
    this.subscribedTracks.delete(trackId);
    this._statsPrev.delete(trackId);
    this._adaptive?.unobserve(trackId);
    this._emit('trackUnsubscribed', { ...sub });
  }

  /** Looks up a subscribed track by id. */
  getTrack(trackId) {
    return this.subscribedTracks.get(trackId) ?? null;
  }

  /**
   * Sets the quality wanted for a remote track.
   * @param {string} trackId
   * @param {{layer?: 'low'|'medium'|'high'|'auto', maxWidth?: number, maxHeight?: number, paused?: boolean}} s
   */
  setSubscription(trackId, { layer = 'auto', maxWidth, maxHeight, paused = false } = {}) {
    this._appPrefs.set(trackId, { layer, maxWidth, maxHeight, paused: !!paused });
    this._sendSubscription(trackId);
  }

  /**
   * Adaptive stream: follows the size `element` shows `trackId` at, and whether it is on screen.
   * The server then sends no layer larger than the element needs (unless setSubscription named
   * a layer or a size), and nothing while it is hidden. Returns a function that stops following.
   * Off with the Room option `adaptiveStream: false`.
   * @param {string} trackId
   * @param {HTMLElement} element
   */
  observeVideo(trackId, element) {
    if (this.options.adaptiveStream === false || typeof ResizeObserver === 'undefined') return () => {};
    this._adaptive ??= new AdaptiveStream((id) => this._sendSubscription(id));
    this._adaptive.observe(trackId, element);
    return () => this.unobserveVideo(trackId);
  }

  unobserveVideo(trackId) {
    if (!this._adaptive) return;
    this._adaptive.unobserve(trackId);
    if (this._subscriptionPrefs.has(trackId)) this._sendSubscription(trackId);
  }

  /** Sends what the application asked for, completed by what its element shows. */
  _sendSubscription(trackId) {
    const app = this._appPrefs.get(trackId) ?? { layer: 'auto', paused: false };
    const view = this._adaptive?.view(trackId);
    const msg = { type: 'subscription', track_id: trackId, layer: app.layer, paused: app.paused || !!view?.hidden };
    const maxWidth = app.maxWidth ?? view?.maxWidth;
    const maxHeight = app.maxHeight ?? view?.maxHeight;
    if (maxWidth != null && maxWidth > 0) msg.max_width = Math.round(maxWidth);
    if (maxHeight != null && maxHeight > 0) msg.max_height = Math.round(maxHeight);
    const last = this._subscriptionPrefs.get(trackId);
    if (last && JSON.stringify(last) === JSON.stringify(msg)) return;
    this._subscriptionPrefs.set(trackId, msg);
    this._send(msg);
  }

  /**
   * Receive statistics of one subscribed track (from the inbound-rtp report of its receiver).
   * @returns {Promise<null | {kind, frameWidth, frameHeight, framesDecoded, framesPerSecond,
   *   bytesReceived, packetsReceived, packetsLost, bitrateKbps}>}
   */
  async statsFor(trackId) {
    const sub = this.subscribedTracks.get(trackId);
    if (!sub) return null;
    return inboundStats(await sub.transceiver.receiver.getStats(), sub.kind, trackId, this._statsPrev);
  }
}

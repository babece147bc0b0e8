// @ts-check
// The publisher connection: the client offers, the server answers. It carries our camera and
// microphone (simulcast video with the layer sizes announced to the server), mutes them, and
// applies the server's dynacast choices of which layers to encode.
import { PeerTransport } from './peer-transport.js';
import { SerialQueue, isStopped } from './util.js';
import { applyLayerStates } from './publisher-layers.js';
import { preferCodec } from './media.js';

/** Simulcast layers the publisher sends, lowest first. */
export const SIMULCAST_LAYERS = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

const ANSWER_TIMEOUT_MS = 15_000;

/** @typedef {import('./signal-client.js').SignalMessage} SignalMessage */
/** @typedef {import('./room-state.js').TrackInfo} TrackInfo */
/** @typedef {{rid: string, active: boolean}} LayerState */

/**
 * A published local track.
 * @typedef {object} LocalTrack
 * @property {string} source 'camera' | 'microphone' | ...
 * @property {string} kind
 * @property {MediaStreamTrack} track
 * @property {RTCRtpTransceiver} transceiver
 * @property {string | null} trackId the server's id, once our participant info lists the track
 * @property {{rid: string, width: number, height: number}[]} layers simulcast layers announced in the offer
 * @property {boolean} muted
 * @property {string} [name]
 * @property {SerialQueue} [paramQueue] serializes the sender's setParameters calls
 * @property {{simulcast: boolean, degradationPreference?: RTCDegradationPreference}} publishedWith
 *   how it was published: the same again on a new connection (a join again)
 */

/**
 * What the publisher needs beyond a plain transport.
 * @typedef {import('./peer-transport.js').TransportHooks & {
 *   request: (msg: SignalMessage, timeoutMs: number) => Promise<SignalMessage>,
 *   emit: (type: string, payload?: object) => void,
 *   localTrackInfos: () => TrackInfo[],
 * }} PublisherHooks
 */

/**
 * @typedef {object} PublishOptions
 * @property {boolean | MediaTrackConstraints} [video]
 * @property {boolean | MediaTrackConstraints} [audio]
 * @property {boolean} [simulcast]
 * @property {MediaStream} [stream] tracks to publish instead of a fresh capture
 * @property {RTCDegradationPreference} [degradationPreference] what the encoder gives up under CPU or
 *   bandwidth pressure; simulcast video defaults to 'maintain-resolution' so each layer keeps the size
 *   announced to the server.
 */

/** @extends {PeerTransport<PublisherHooks>} */
export class PublisherTransport extends PeerTransport {
  /**
   * @param {RTCConfiguration} config
   * @param {PublisherHooks} hooks
   * @param {{videoCodec?: string, dynacast?: boolean}} options read when used: the Room's options
   */
  constructor(config, hooks, options) {
    super('publisher', config, hooks);
    this._options = options;
    /** @type {LocalTrack[]} */
    this.localTracks = [];
    /** @type {MediaStream | null} every published track, for a self-view */
    this._stream = null;
    this._queue = new SerialQueue();
    /** @type {Map<string, LayerState[]>} own track id -> the server's layer choice (dynacast) */
    this._layerStates = new Map();
    /** False while a mesh carries our media: the senders carry no track, the server gets nothing. */
    this._sending = true;
  }

  /**
   * Sends our tracks to the server, or nothing (a mesh carries them); the connection, its
   * sections and the server's tracks stay as they are.
   * @param {boolean} on
   * @returns {Promise<void>}
   */
  async setSending(on) {
    this._sending = on;
    await Promise.all(this.localTracks.map((t) => this._applySending(t)));
  }

  /** @param {LocalTrack} local */
  async _applySending(local) {
    if (isStopped(local.transceiver) || this.unusable) return;
    const want = this._sending ? local.track : null;
    if (local.transceiver.sender.track === want) return;
    try {
      await local.transceiver.sender.replaceTrack(want);
    } catch (e) {
      this._hooks.log('warn', 'replaceTrack', e.message);
    }
  }

  /**
   * Captures (unless `stream` is given) and publishes; resolves with the local stream.
   * @param {PublishOptions} opts
   * @returns {Promise<MediaStream>}
   */
  async publish({ video = true, audio = true, simulcast = true, stream, degradationPreference } = {}) {
    if (!stream) {
      const constraints = {
        video: video ? (video === true ? { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } } : video) : false,
        audio: audio ? (audio === true ? {} : audio) : false,
      };
      stream = await navigator.mediaDevices.getUserMedia(constraints);
    }
    if (!this._stream) this._stream = new MediaStream();
    for (const track of stream.getTracks()) {
      if (track.kind === 'video' && !video) continue;
      if (track.kind === 'audio' && !audio) continue;
      this._stream.addTrack(track);
      this._addLocalTrack(track, { simulcast, degradationPreference });
    }
    await this.negotiate();
    if (!this._sending) await this.setSending(false);
    return this._stream;
  }

  /**
   * @param {MediaStreamTrack} track
   * @param {{simulcast: boolean, source?: string, degradationPreference?: RTCDegradationPreference}} opts
   * @returns {LocalTrack}
   */
  _addLocalTrack(track, { simulcast, source, degradationPreference }) {
    source ??= track.kind === 'audio' ? 'microphone' : 'camera';
    /** @type {RTCRtpTransceiverInit} */
    const init = { direction: 'sendonly', streams: [this._stream] };
    let layers = [];
    if (track.kind === 'video' && simulcast) {
      init.sendEncodings = SIMULCAST_LAYERS.map((l) => ({ ...l }));
      const s = track.getSettings();
      const w = s.width ?? 1280;
      const h = s.height ?? 720;
      layers = SIMULCAST_LAYERS.map((l) => ({
        rid: l.rid,
        width: Math.round(w / l.scaleResolutionDownBy),
        height: Math.round(h / l.scaleResolutionDownBy),
      }));
    }
    const transceiver = this.pc.addTransceiver(track, init);
    /** @type {{simulcast: boolean, degradationPreference?: RTCDegradationPreference}} */
    const publishedWith = { simulcast, degradationPreference };
    if (track.kind === 'video' && this._options.videoCodec) {
      preferCodec(transceiver, this._options.videoCodec, (m) => this._hooks.log('warn', 'setCodecPreferences', m));
    }
    const preference = degradationPreference ?? (track.kind === 'video' && simulcast ? 'maintain-resolution' : null);
    if (preference) {
      const params = transceiver.sender.getParameters();
      params.degradationPreference = preference;
      transceiver.sender.setParameters(params).catch((e) => this._hooks.log('warn', 'degradationPreference', e.message));
    }
    /** @type {LocalTrack} */
    const local = { source, kind: track.kind, track, transceiver, trackId: null, layers, muted: false, publishedWith };
    this.localTracks.push(local);
    this.bindTrackIds();
    return local;
  }

  /**
   * Publishes the tracks another connection published (the session was joined again elsewhere):
   * the same MediaStreamTracks, sources and options, muted as they were.
   * @param {LocalTrack[]} previous
   * @returns {Promise<void>}
   */
  async republish(previous) {
    if (!this._stream) this._stream = new MediaStream();
    for (const old of previous) {
      if (old.track.readyState === 'ended') continue;
      this._stream.addTrack(old.track);
      const local = this._addLocalTrack(old.track, { ...old.publishedWith, source: old.source });
      local.name = old.name;
      local.muted = old.muted;
    }
    await this.negotiate();
  }

  /**
   * Runs one offer/answer exchange, serialized with any other.
   * @param {RTCOfferOptions} [offerOptions] `{iceRestart: true}` for new ICE credentials
   * @returns {Promise<void>}
   */
  negotiate(offerOptions = {}) {
    return this._queue.run(async () => {
      const pc = this.pc;
      if (this.unusable) return;
      const offer = await pc.createOffer(offerOptions);
      await pc.setLocalDescription(offer);
      const tracks = [];
      for (const t of this.localTracks) {
        if (!t.transceiver.mid || isStopped(t.transceiver)) continue;
        /** @type {{mid: string, source: string, name: string, layers?: object[]}} */
        const d = { mid: t.transceiver.mid, source: t.source, name: t.name ?? '' };
        if (t.layers.length) d.layers = t.layers;
        tracks.push(d);
      }
      let answer;
      try {
        answer = await this._hooks.request({ type: 'offer', sdp: pc.localDescription.sdp, tracks }, ANSWER_TIMEOUT_MS);
      } catch (e) {
        // Disconnected before or while waiting: the ICE restart after the resume sends a fresh
        // offer with these tracks.
        if (e.code === 'closed') return;
        throw e;
      }
      if (pc.signalingState !== 'have-local-offer') return;
      await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
      this._flushCandidates();
    });
  }

  /**
   * After a resume: only a broken path needs new ICE credentials. A re-offer is not free (the
   * server must re-learn simulcast streams), and the media path usually outlives the socket.
   */
  restartIceIfBroken() {
    if (['connected', 'completed', 'checking', 'new'].includes(this.pc.iceConnectionState)) return;
    this.negotiate({ iceRestart: true }).catch((e) =>
      this._hooks.fail(`publisher ICE restart failed: ${e.message}`, e));
  }

  /** @param {SignalMessage} msg */
  handle(msg) {
    if (msg.type !== 'publisher_layers') return super.handle(msg);
    this.onPublisherLayers(msg.track_id, msg.layers ?? []);
    return true;
  }

  /**
   * Ties server track ids (from our own participant info) to local tracks, by source. A track
   * muted before the server named it (or published again muted) is announced muted now.
   */
  bindTrackIds() {
    for (const info of this._hooks.localTrackInfos()) {
      if (this.localTracks.some((t) => t.trackId === info.id)) continue;
      const local = this.localTracks.find((t) => !t.trackId && t.source === info.source && t.kind === info.kind);
      if (!local) continue;
      local.trackId = info.id;
      if (local.muted && !info.muted) this._hooks.send({ type: 'mute', track_id: info.id, muted: true });
      if (this._layerStates.has(info.id)) this._applyLayerStates(local);
    }
  }

  /**
   * Dynacast: the server says which simulcast layers of our track anyone receives.
   * @param {string} trackId
   * @param {LayerState[]} layers
   */
  onPublisherLayers(trackId, layers) {
    if (this._options.dynacast === false) return;
    this._layerStates.set(trackId, layers);
    const local = this.localTracks.find((t) => t.trackId === trackId);
    if (local) this._applyLayerStates(local);
  }

  /** @param {LocalTrack} local */
  _applyLayerStates(local) {
    local.paramQueue ??= new SerialQueue();
    local.paramQueue.run(async () => {
      const layers = this._layerStates.get(local.trackId);
      if (!layers || isStopped(local.transceiver)) return;
      if (await applyLayerStates(local.transceiver.sender, layers)) {
        this._hooks.log('debug', 'publisher layers', local.trackId, layers);
        this._hooks.emit('publisherLayers', { trackId: local.trackId, layers });
      }
    }).catch((e) => this._hooks.log('warn', 'publisher layers', e.message));
  }

  /**
   * Enables or disables the outgoing media of a local track, by server id or by source name.
   * @param {string} trackIdOrSource
   * @param {boolean} muted
   * @returns {LocalTrack | undefined} the track, if it is one of ours
   */
  muteLocal(trackIdOrSource, muted) {
    const local = this.localTracks.find((t) => t.trackId === trackIdOrSource || t.source === trackIdOrSource);
    if (local) {
      local.track.enabled = !muted;
      local.muted = muted;
    }
    return local;
  }

  /**
   * Closes the connection and, unless `stopTracks` is false (they move to a new connection),
   * stops the captured tracks.
   * @param {{stopTracks?: boolean}} [how]
   */
  close({ stopTracks = true } = {}) {
    super.close();
    if (stopTracks) for (const t of this.localTracks) t.track.stop();
  }
}

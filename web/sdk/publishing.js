// Room methods for publishing: capturing, adding tracks with simulcast, negotiating the
// publisher connection, muting, and applying the server's dynacast layer choices.
import { RoomError } from './errors.js';
import { SerialQueue } from './util.js';
import { applyLayerStates } from './publisher-layers.js';
import { preferCodec } from './media.js';

/** Simulcast layers the publisher sends, lowest first. */
export const SIMULCAST_LAYERS = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

const ANSWER_TIMEOUT_MS = 15_000;

/** Mixed into Room (see sdk.js). */
export class Publishing {
  /**
   * Captures and publishes the camera and/or microphone.
   * @param {{video?: boolean|MediaTrackConstraints, audio?: boolean|MediaTrackConstraints,
   *          simulcast?: boolean, stream?: MediaStream, degradationPreference?: RTCDegradationPreference}} opts
   *   degradationPreference: what the encoder gives up under CPU or bandwidth pressure; simulcast video
   *   defaults to 'maintain-resolution' so each layer keeps the size announced to the server.
   * @returns {Promise<MediaStream>} the local stream (for a self-view)
   */
  async publish({ video = true, audio = true, simulcast = true, stream, degradationPreference } = {}) {
    if (!this.publisherPc) throw new RoomError('publish() before join()');
    if (!stream) {
      const constraints = {
        video: video ? (video === true ? { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } } : video) : false,
        audio: audio ? (audio === true ? {} : audio) : false,
      };
      stream = await navigator.mediaDevices.getUserMedia(constraints);
    }
    if (!this._mediaStream) this._mediaStream = new MediaStream();
    for (const track of stream.getTracks()) {
      if (track.kind === 'video' && !video) continue;
      if (track.kind === 'audio' && !audio) continue;
      this._mediaStream.addTrack(track);
      this._addLocalTrack(track, { simulcast, degradationPreference });
    }
    await this._negotiatePublisher();
    return this._mediaStream;
  }

  _addLocalTrack(track, { simulcast, source, degradationPreference }) {
    const pc = this.publisherPc;
    source ??= track.kind === 'audio' ? 'microphone' : 'camera';
    const init = { direction: 'sendonly', streams: [this._mediaStream] };
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
    const transceiver = pc.addTransceiver(track, init);
    if (track.kind === 'video' && this.options.videoCodec) {
      preferCodec(transceiver, this.options.videoCodec, (m) => this._log('warn', 'setCodecPreferences', m));
    }
    const preference = degradationPreference ?? (track.kind === 'video' && simulcast ? 'maintain-resolution' : null);
    if (preference) {
      const params = transceiver.sender.getParameters();
      params.degradationPreference = preference;
      transceiver.sender.setParameters(params).catch((e) => this._log('warn', 'degradationPreference', e.message));
    }
    const local = { source, kind: track.kind, track, transceiver, trackId: null, layers, muted: false };
    this.localTracks.push(local);
    this._bindLocalTrackIds();
    return local;
  }

  /** Runs one publisher offer/answer exchange, serialized with any other. */
  _negotiatePublisher(offerOptions = {}) {
    return this._pubQueue.run(async () => {
      const pc = this.publisherPc;
      if (!pc || pc.signalingState === 'closed' || this._closed) return;
      const offer = await pc.createOffer(offerOptions);
      await pc.setLocalDescription(offer);
      const tracks = [];
      for (const t of this.localTracks) {
        if (!t.transceiver.mid || t.transceiver.stopped) continue;
        const d = { mid: t.transceiver.mid, source: t.source, name: t.name ?? '' };
        if (t.layers.length) d.layers = t.layers;
        tracks.push(d);
      }
      let answer;
      try {
        answer = await this._signal.request({ type: 'offer', sdp: pc.localDescription.sdp, tracks }, ANSWER_TIMEOUT_MS);
      } catch (e) {
        // Disconnected before or while waiting: the ICE restart after the resume sends a fresh
        // offer with these tracks.
        if (e.code === 'closed') return;
        throw e;
      }
      const sdp = answer.sdp;
      if (pc.signalingState !== 'have-local-offer') return;
      await pc.setRemoteDescription({ type: 'answer', sdp });
      this._flushCandidates('publisher');
    });
  }

  /** Ties server track ids (from our own participant info) to local tracks, by source. */
  _bindLocalTrackIds() {
    const infos = this.localParticipant?.tracks ?? [];
    for (const info of infos) {
      if (this.localTracks.some((t) => t.trackId === info.id)) continue;
      const local = this.localTracks.find((t) => !t.trackId && t.source === info.source && t.kind === info.kind);
      if (!local) continue;
      local.trackId = info.id;
      if (this._layerStates.has(info.id)) this._applyLayerStates(local);
    }
  }

  /** Dynacast: the server says which simulcast layers of our track anyone receives. */
  _onPublisherLayers(trackId, layers) {
    if (this.options.dynacast === false) return;
    this._layerStates.set(trackId, layers);
    const local = this.localTracks.find((t) => t.trackId === trackId);
    if (local) this._applyLayerStates(local);
  }

  _applyLayerStates(local) {
    local.paramQueue ??= new SerialQueue();
    local.paramQueue.run(async () => {
      const layers = this._layerStates.get(local.trackId);
      if (!layers || local.transceiver.stopped) return;
      if (await applyLayerStates(local.transceiver.sender, layers)) {
        this._log('debug', 'publisher layers', local.trackId, layers);
        this._emit('publisherLayers', { trackId: local.trackId, layers });
      }
    }).catch((e) => this._log('warn', 'publisher layers', e.message));
  }

  /**
   * Mutes or unmutes a track. For a local track (by server id, or by source name such as
   * 'camera'/'microphone') this also disables the outgoing media.
   */
  mute(trackIdOrSource, muted = true) {
    const local = this.localTracks.find((t) => t.trackId === trackIdOrSource || t.source === trackIdOrSource);
    if (local) {
      local.track.enabled = !muted;
      local.muted = muted;
    }
    const trackId = local?.trackId ?? trackIdOrSource;
    this._send({ type: 'mute', track_id: trackId, muted: !!muted });
  }
}

// Browser SDK for the SFU: one WebSocket for signaling, two RTCPeerConnections per client.
//
//   publisher pc  - the client offers; carries its own camera/mic and the "data" channel
//   subscriber pc - the server offers; carries everyone else's tracks
//
// Plain ES module, no dependencies, no build step. See docs/protocol.md for the wire format.
//
//   import { Room } from '/sdk.js';
//   const room = await Room.connect('ws://127.0.0.1:7880/rtc', token);
//   room.addEventListener('trackSubscribed', (e) => video.srcObject = new MediaStream([e.track]));
//   await room.publish({ video: true, audio: true, simulcast: true });

import { SerialQueue, mixIn, sleep } from './sdk/util.js';
import { RoomError } from './sdk/errors.js';
import { PublisherTransport } from './sdk/publisher-transport.js';
import { PeerTransport } from './sdk/peer-transport.js';
import { DataMessages } from './sdk/data.js';
import { Subscribing } from './sdk/subscribing.js';
import { RoomState } from './sdk/room-state.js';
import { signalingUrl } from './sdk/urls.js';
import { FATAL_CLOSE_CODES, SignalClient } from './sdk/signal-client.js';

export { RoomError } from './sdk/errors.js';
export { SIMULCAST_LAYERS } from './sdk/publisher-transport.js';
export { signalingUrl, fetchDevToken } from './sdk/urls.js';


const RECONNECT_DELAYS_MS = [250, 500, 1000, 2000, 4000, 5000];

export class Room extends EventTarget {
  /** Connects, joins with `token`, and resolves with the joined Room. */
  static async connect(url, token, options = {}) {
    const room = new Room(url, options);
    await room.join(token);
    return room;
  }

  /**
   * @param {string} [url] signaling URL (ws(s)://host/rtc) or the server's http(s) origin
   * @param {object} [options]
   * @param {string} [options.videoCodec='vp8'] preferred codec for published video ('' = browser default)
   * @param {boolean} [options.reconnect=true] resume the session when the socket drops
   * @param {(level: string, ...args: any[]) => void} [options.log] debug logger
   */
  constructor(url, options = {}) {
    super();
    this.url = signalingUrl(url);
    this.options = { videoCodec: 'vp8', reconnect: true, ...options };
    this._roomState = new RoomState({
      emit: (type, payload) => this._emit(type, payload),
      localTracksChanged: () => this._publisher?.bindTrackIds(),
      participantKnown: (p) => {
        // Fills the identity of subscribed tracks that arrived before their participant was known.
        for (const sub of this.subscribedTracks.values()) {
          if (sub.participantId === p.id && !sub.identity) sub.identity = p.identity;
          if (sub.participantId === p.id && !sub.info) sub.info = p.tracks.find((t) => t.id === sub.trackId) ?? null;
        }
      },
      trackGone: (trackId) => {
        this._subscriptionPrefs.delete(trackId);
        this._appPrefs.delete(trackId);
        this._adaptive?.unobserve(trackId);
      },
    });
    this.roomName = null;
    this.sessionToken = null;
    this.departureTimeoutMs = 0;
    this.protocol = null;
    /** 'new' | 'connecting' | 'connected' | 'reconnecting' | 'disconnected' */
    this.state = 'new';
    /** @type {PublisherTransport | null} our camera and microphone; created by join() */
    this._publisher = null;
    /** @type {PeerTransport | null} everyone else's tracks; created by join() */
    this._subscriber = null;
    /** @type {DataMessages | null} the data channel; created by join() */
    this._data = null;
    /** Remote tracks received on the subscriber pc, by track id. */
    this.subscribedTracks = new Map();
    this.closeCode = null;
    this.closeReason = null;

    this._signal = new SignalClient(this.url, {
      message: (msg) => this._onSignal(msg),
      closed: (close) => this._onSignalClosed(close),
      earlyError: (msg, expect) =>
        this._fail(`server error before '${expect}': ${msg.message}`, { code: msg.code, request: msg.request }),
      log: (level, ...args) => this._log(level, ...args),
    });
    this._leaving = false;
    this._closed = false;
    this._subQueue = new SerialQueue();
    this._midToTrack = new Map(); // subscriber mid -> {track_id, participant_id}
    this._subscriptionPrefs = new Map(); // track id -> settings message, re-sent after a resume
    this._appPrefs = new Map(); // track id -> what the application asked for in setSubscription
    this._adaptive = null; // AdaptiveStream, once a video element is observed
    this._statsPrev = new Map(); // track id -> {bytes, t}
  }

  /** @returns {Map<string, import('./sdk/room-state.js').Participant>} everyone else in the room */
  get participants() {
    return this._roomState.participants;
  }

  /** Ourselves, as the server lists us (null before join). */
  get localParticipant() {
    return this._roomState.localParticipant;
  }

  /** The room's active speakers, loudest first: [{participantId, identity, level}] */
  get activeSpeakers() {
    return this._roomState.activeSpeakers;
  }

  // ---------------------------------------------------------------- events

  /** Dispatches `type`; the payload is both `event.detail` and spread onto the event itself. */
  _emit(type, payload = {}) {
    const ev = new Event(type);
    ev.detail = payload;
    for (const [k, v] of Object.entries(payload)) {
      if (!(k in ev)) ev[k] = v;
    }
    this.dispatchEvent(ev);
  }

  /** Shorthand: `room.on('data', ({from, data}) => ...)`; returns a function that unsubscribes. */
  on(type, fn) {
    const listener = (ev) => fn(ev.detail, ev);
    this.addEventListener(type, listener);
    return () => this.removeEventListener(type, listener);
  }

  _log(level, ...args) {
    if (this.options.log) this.options.log(level, ...args);
    else if (level === 'error' || level === 'warn') console[level]('[sfu]', ...args);
  }

  /** Reports a failure as an 'error' event; `cause` may carry a server error code. */
  _fail(message, cause = {}) {
    const code = typeof cause.code === 'string' ? cause.code : 'client';
    const err = cause instanceof RoomError ? cause : new RoomError(message, { code, request: cause.request });
    this._log('warn', message, cause);
    this._emit('error', { code: err.code, message, request: err.request, error: err });
  }

  // ---------------------------------------------------------------- signaling socket

  _send(msg) {
    return this._signal.send(msg);
  }

  /** Every server message after `joined`/`resumed`, as the SignalClient hands it over. */
  _onSignal(msg) {
    this._emit('signal', { message: msg });
    try {
      this._handle(msg);
    } catch (e) {
      this._fail(`handling '${msg.type}' failed: ${e.message}`, { code: 'client' });
    }
  }

  _handle(msg) {
    switch (msg.type) {
      case 'answer':
        break; // the reply to the publisher's offer: SignalClient.request hands it over
      case 'offer':
        this._subQueue.run(() => this._onSubscriberOffer(msg)).catch((e) =>
          this._fail(`subscriber negotiation failed: ${e.message}`, { code: 'negotiation' }));
        break;
      case 'candidate':
        (msg.target === 'publisher' ? this._publisher : msg.target === 'subscriber' ? this._subscriber : null)
          ?.addRemoteCandidate(msg.candidate);
        break;
      case 'participant_joined':
        this._roomState.upsert(msg.participant, true);
        break;
      case 'participant_left':
        this._roomState.remove(msg.participant_id, msg.identity, msg.reason);
        break;
      case 'track_published':
        this._roomState.trackPublished(msg.participant_id, msg.track);
        break;
      case 'track_unpublished':
        this._roomState.trackUnpublished(msg.participant_id, msg.track_id);
        break;
      case 'track_muted':
        this._roomState.trackMuted(msg.participant_id, msg.track_id, msg.muted);
        break;
      case 'stream_state':
        // The server stopped sending a subscribed track (its downlink cannot carry it) or resumed.
        this._emit('streamState', {
          participantId: msg.participant_id,
          identity: this._roomState.identityOf(msg.participant_id),
          trackId: msg.track_id,
          state: msg.state,
          reason: msg.reason ?? null,
        });
        break;
      case 'active_speakers':
        this._roomState.setActiveSpeakers(msg.speakers ?? []);
        break;
      case 'publisher_layers':
        this._publisher?.onPublisherLayers(msg.track_id, msg.layers ?? []);
        break;
      case 'pong':
        this._emit('pong', { id: msg.id });
        break;
      case 'error':
        // An error about the publisher's offer also fails its SignalClient.request.
        this._emit('error', { code: msg.code, message: msg.message, request: msg.request });
        break;
      case 'joined':
      case 'resumed':
        this._log('warn', `unexpected '${msg.type}'`);
        break;
      default:
        this._log('debug', 'ignored message', msg);
    }
  }

  /** The signaling socket closed (or was given up): resume, unless that cannot or should not be. */
  _onSignalClosed({ code, reason }) {
    this.closeCode = code;
    this.closeReason = reason;
    if (this._leaving || this._closed) return;
    const fatal = FATAL_CLOSE_CODES.get(code);
    if (fatal || !this.options.reconnect || !this.sessionToken) {
      this._shutdown(fatal ?? 'closed', code, reason);
      return;
    }
    this._reconnect();
  }

  /** Sends a ping; resolves with the round-trip time in ms when the pong arrives. */
  ping() {
    const t0 = performance.now();
    const id = this._signal.ping();
    if (id === null) return Promise.reject(new RoomError('not connected'));
    return new Promise((resolve) => {
      const off = this.on('pong', (p) => {
        if (p.id === id) {
          off();
          resolve(performance.now() - t0);
        }
      });
    });
  }

  // ---------------------------------------------------------------- join / resume / leave

  /** Joins the room with `token`. Resolves with the server's `joined` message. */
  async join(token) {
    if (this.state !== 'new') throw new RoomError(`join() in state ${this.state}`);
    this.state = 'connecting';
    let joined;
    try {
      joined = await this._signal.connect({ type: 'join', token }, 'joined');
    } catch (e) {
      this.state = 'disconnected';
      this.closeCode = e.closeCode ?? null;
      this.closeReason = e.closeReason ?? null;
      throw e;
    }
    this.protocol = joined.protocol;
    this.roomName = joined.room;
    this.sessionToken = joined.session_token;
    this.departureTimeoutMs = joined.departure_timeout_ms ?? 0;
    this._roomState.setLocal(joined.participant);
    this.state = 'connected';
    this._createPeerConnections();
    for (const p of joined.participants ?? []) this._roomState.upsert(p, true);
    this._signal.startKeepalive();
    // The publisher connection is always negotiated: it carries the data channel.
    this._publisher.negotiate().catch((e) => this._fail(`publisher negotiation failed: ${e.message}`, e));
    return joined;
  }

  _createPeerConnections() {
    /** @type {RTCConfiguration} */
    const config = { bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require', ...(this.options.rtcConfig ?? {}) };
    const hooks = {
      send: (msg) => this._signal.send(msg),
      connectionState: (role, state) => this._emit('connectionStateChanged', { role, state }),
      log: (level, ...args) => this._log(level, ...args),
    };
    this._publisher = new PublisherTransport(config, {
      ...hooks,
      request: (msg, timeoutMs) => this._signal.request(msg, timeoutMs),
      emit: (type, payload) => this._emit(type, payload),
      localTrackInfos: () => this.localParticipant?.tracks ?? [],
    }, this.options);
    this._subscriber = new PeerTransport('subscriber', config, hooks);
    // The data channel rides on the publisher connection, opened before its first offer.
    this._data = new DataMessages(this._publisher.pc, {
      opened: () => this._emit('dataChannelOpen', {}),
      received: (msg) => this._emit('data', msg),
    });
    // Should the server open channels of its own on the subscriber connection, listen there too.
    this._subscriber.pc.ondatachannel = (e) => this._data.listen(e.channel);
  }

  _flushCandidates() {
    this._subscriber._flushCandidates();
  }

  async _reconnect() {
    this.state = 'reconnecting';
    const started = Date.now();
    // Give up a little after the server would have given up on us.
    const deadline = started + Math.max(this.departureTimeoutMs || 0, 10_000) + 5_000;
    for (let attempt = 0; !this._leaving && !this._closed; attempt++) {
      const delay = RECONNECT_DELAYS_MS[Math.min(attempt, RECONNECT_DELAYS_MS.length - 1)];
      this._emit('reconnecting', { attempt: attempt + 1, delayMs: delay });
      await sleep(delay);
      if (this._leaving || this._closed) return;
      if (Date.now() > deadline) {
        this._shutdown('reconnect_timeout', this.closeCode, this.closeReason);
        return;
      }
      let resumed;
      try {
        resumed = await this._signal.connect({ type: 'resume', session_token: this.sessionToken }, 'resumed');
      } catch (e) {
        this._log('warn', `resume attempt ${attempt + 1} failed: ${e.message}`);
        if (e.closeCode && FATAL_CLOSE_CODES.has(e.closeCode)) {
          this._shutdown(FATAL_CLOSE_CODES.get(e.closeCode), e.closeCode, e.closeReason);
          return;
        }
        continue;
      }
      if (this._leaving || this._closed) return;
      this._onResumed(resumed);
      return;
    }
  }

  _onResumed(msg) {
    this.state = 'connected';
    if (msg.participant) {
      this._roomState.setLocal(msg.participant);
      this._publisher?.bindTrackIds();
    }
    // Bring the participant list up to date: whoever is gone left while we were away.
    this._roomState.sync(msg.participants ?? []);
    this._signal.startKeepalive();
    for (const s of this._subscriptionPrefs.values()) this._send(s);
    this._emit('reconnected', {});
    // Only a broken path needs new ICE credentials: a re-offer is not free (the server must
    // re-learn simulcast streams), and the media path usually outlived the signaling socket.
    // The server re-offers the subscriber connection itself.
    const pc = this.publisherPc;
    if (!pc || ['connected', 'completed', 'checking', 'new'].includes(pc.iceConnectionState)) return;
    this._publisher.negotiate({ iceRestart: true }).catch((e) =>
      this._fail(`publisher ICE restart failed: ${e.message}`, e));
  }

  /** Leaves the room: tells the server, closes the socket and both connections, stops local tracks. */
  async leave() {
    if (this._leaving || this._closed) return;
    this._leaving = true;
    this._send({ type: 'leave' });
    await this._signal.closeAfterFlush(1000, 'leave');
    this._shutdown('left', 1000, 'leave');
  }

  _shutdown(reason, code, closeReason) {
    if (this._closed) return;
    this._closed = true;
    this.state = 'disconnected';
    this._signal.close(1000);
    for (const [trackId] of [...this.subscribedTracks]) this._unsubscribeTrack(trackId);
    this._adaptive?.close();
    this._adaptive = null;
    this._publisher?.close();
    this._subscriber?.close();
    this._emit('disconnected', { reason, code: code ?? null, closeReason: closeReason ?? '' });
  }

  /** Test hook: drops the signaling socket as if the network failed; the SDK then resumes. */
  _dropSocketForTest() {
    return this._signal.drop('dropped for test');
  }

  // ---------------------------------------------------------------- data messages

  /** Resolves when the data channel is open. */
  dataReady() {
    return this._data?.ready ?? Promise.reject(new RoomError('not joined'));
  }

  /** Sends text or binary (ArrayBuffer / typed array) to every other participant. */
  sendData(data) {
    if (!this._data) throw new RoomError('sendData() before join()');
    this._data.send(data);
  }

  // ---------------------------------------------------------------- publishing

  /**
   * Captures and publishes the camera and/or microphone.
   * @param {import('./sdk/publisher-transport.js').PublishOptions} [opts]
   *   degradationPreference: what the encoder gives up under CPU or bandwidth pressure; simulcast video
   *   defaults to 'maintain-resolution' so each layer keeps the size announced to the server.
   * @returns {Promise<MediaStream>} the local stream (for a self-view)
   */
  async publish(opts = {}) {
    if (!this._publisher) throw new RoomError('publish() before join()');
    return this._publisher.publish(opts);
  }

  /**
   * Mutes or unmutes a track. For a local track (by server id, or by source name such as
   * 'camera'/'microphone') this also disables the outgoing media.
   * @param {string} trackIdOrSource
   */
  mute(trackIdOrSource, muted = true) {
    const local = this._publisher?.muteLocal(trackIdOrSource, muted);
    const trackId = local?.trackId ?? trackIdOrSource;
    this._send({ type: 'mute', track_id: trackId, muted: !!muted });
  }

  /** Test hook: one publisher offer/answer exchange (`{iceRestart: true}` for new credentials). */
  _negotiatePublisher(offerOptions = {}) {
    return this._publisher?.negotiate(offerOptions) ?? Promise.resolve();
  }

  /** @returns {RTCPeerConnection | null} */
  get publisherPc() {
    return this._publisher?.pc ?? null;
  }

  /** @returns {RTCPeerConnection | null} */
  get subscriberPc() {
    return this._subscriber?.pc ?? null;
  }

  /** @returns {RTCDataChannel | null} */
  get dataChannel() {
    return this._data?.channel ?? null;
  }

  /** Local tracks that are published: {source, kind, track, transceiver, trackId, layers, muted} */
  get localTracks() {
    return this._publisher?.localTracks ?? [];
  }

}

// The rest of Room's methods, one file per concept.
mixIn(Room, Subscribing);

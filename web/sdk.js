// @ts-check
// Browser SDK for the SFU: one WebSocket for signaling, two RTCPeerConnections per client.
//
//   publisher pc  - the client offers; carries its own camera/mic and the "data" channel
//   subscriber pc - the server offers; carries everyone else's tracks
//
// Plain ES module, no dependencies, no build step. See docs/protocol.md for the wire format.
//
//   import { Room } from '/sdk.js';
//   const room = await Room.connect('ws://127.0.0.1:7880/rtc', token);
//   // or, with a cluster: the nodes to try in turn, should one fail
//   const room = await Room.connect(['wss://sfu-a.example/rtc', 'wss://sfu-b.example/rtc'], token);
//   room.addEventListener('trackSubscribed', (e) => video.srcObject = new MediaStream([e.track]));
//   // (in a room whose audio the server mixes, one audio track has e.mixed: everyone but you)
//   await room.publish({ video: true, audio: true, simulcast: true });
//
// Room is the public face; it holds the parts and routes between them, each part owning its state:
//   SignalClient (sdk/signal-client.js)  the socket: join/resume, redirects, requests and replies, keepalive, close codes
//   recover (sdk/recovery.js)            after a dropped socket: resume, else join again elsewhere
//   RoomState (sdk/room-state.js)        participants, their tracks, active speakers
//   PublisherTransport, SubscriberTransport (sdk/*-transport.js)  one RTCPeerConnection each
//   MeshTransport (sdk/mesh-transport.js) mesh rooms: one connection per peer, switches to/from the SFU
//
// Mesh rooms (docs/protocol.md, "Mesh"): when the server says the room is a mesh, media goes
// straight between the peers and the SFU connections idle. The app sees one remote track per
// participant and source whichever way it arrives: 'trackSubscribed' ({..., source, via:
// 'mesh' | 'sfu'}) fires again with the new MediaStreamTrack when a switch moves it, and the app
// points its <video> at the new `stream` (e.srcObject = e.stream), as for any trackSubscribed.
// The switch happens only once the new path decodes, so playback does not stop.
// `room.topology` is the current mode, `room.remoteTracks` what to show; 'topologyChanged'
// {mode, peers} reports the server's word.
//   DataMessages (sdk/data.js)           the data channel
//   Subscriptions (sdk/subscriptions.js) per-track layer/size wishes and adaptive stream

import { RoomError } from './sdk/errors.js';
import { RoomEvents } from './sdk/events.js';
import { FATAL_CLOSE_CODES, REDIRECTED_CLOSE_CODE, SignalClient } from './sdk/signal-client.js';
import { joinMessage, recover, refusedForGood, rotation } from './sdk/recovery.js';
import { RoomState } from './sdk/room-state.js';
import { PublisherTransport } from './sdk/publisher-transport.js';
import { SubscriberTransport } from './sdk/subscriber-transport.js';
import { MeshTransport } from './sdk/mesh-transport.js';
import { DataMessages } from './sdk/data.js';
import { Subscriptions } from './sdk/subscriptions.js';
import { signalingUrl } from './sdk/urls.js';

export { RoomError } from './sdk/errors.js';
export { SIMULCAST_LAYERS } from './sdk/publisher-transport.js';
export { signalingUrl, fetchDevToken } from './sdk/urls.js';

/** @typedef {import('./sdk/signal-client.js').SignalMessage} SignalMessage */
/** @typedef {import('./sdk/room-state.js').Participant} Participant */
/** @typedef {import('./sdk/subscriber-transport.js').SubscribedTrack} SubscribedTrack */
/** @typedef {import('./sdk/signal-client.js').CloseInfo} CloseInfo */

/**
 * @typedef {object} RoomOptions
 * @property {string} [videoCodec] preferred codec for published video ('vp8' by default, '' = browser default)
 * @property {boolean} [reconnect] bring the session back when the socket drops: resume it, or join
 *   again (on another URL of the list, when its node is gone) and publish the same tracks (default true)
 * @property {(level: string, ...args: any[]) => void} [log] debug logger
 * @property {RTCConfiguration} [rtcConfig] added to both connections' configuration (its
 *   `iceServers`, if given, replace the server's)
 * @property {RTCIceTransportPolicy} [iceTransportPolicy] 'relay': both connections use only TURN
 *   relay candidates (the servers come in `joined.ice_servers`); default 'all'
 * @property {boolean} [dynacast] false: encode every simulcast layer, whatever the server says
 * @property {boolean} [adaptiveStream] false: observeVideo() does nothing
 */

/** @extends {RoomEvents<RoomOptions>} */
export class Room extends RoomEvents {
  /**
   * Connects, joins with `token`, and resolves with the joined Room.
   * @param {string | URL | (string | URL)[] | undefined} url one signaling URL, or a list (tried in turn)
   * @param {string} token
   * @param {RoomOptions} [options]
   */
  static async connect(url, token, options = {}) {
    const room = new Room(url, options);
    await room.join(token);
    return room;
  }

  /**
   * @param {string | URL | (string | URL)[]} [url] signaling URL (ws(s)://host/rtc) or the server's
   *   http(s) origin; or several (nodes of a cluster): joins the first that answers, and after a
   *   failure tries them in turn
   * @param {RoomOptions} [options]
   */
  constructor(url, options = {}) {
    super({ videoCodec: 'vp8', reconnect: true, ...options });
    /** @type {string[]} every signaling URL the Room may use, in the order given */
    this.urls = (Array.isArray(url) ? url : [url]).map((u) => signalingUrl(u));
    if (this.urls.length === 0) this.urls = [signalingUrl(undefined)];
    /** The URL of the node in use (after a redirect, possibly none of `urls`). */
    this.url = this.urls[0];
    /** Redirects followed so far, joins and rejoins together. */
    this.redirects = 0;
    /** @type {string | null} this run of the room, the same on every node (`joined.room_sid`) */
    this.roomSid = null;
    /** @type {string | null} the access token, kept to join again should the session be lost */
    this._token = null;
    /** @type {string | null} where a draining node sends us once it closes */
    this._redirectTo = null;
    /** @type {string | null} */ this.roomName = null;
    /** @type {string | null} */ this.sessionToken = null; // what a resume presents
    this.departureTimeoutMs = 0;
    /** @type {number | null} */ this.protocol = null;
    /** @type {'new' | 'connecting' | 'connected' | 'reconnecting' | 'disconnected'} */
    this.state = 'new';
    /** @type {number | null} */ this.closeCode = null; // the last close of the signaling socket
    /** @type {string | null} */ this.closeReason = null;
    this._leaving = false;
    this._closed = false;
    this._signal = new SignalClient(this.url, {
      message: (msg) => this._onSignal(msg),
      closed: (close) => this._onSignalClosed(close),
      earlyError: (msg, expect) =>
        this._fail(`server error before '${expect}': ${msg.message}`, { code: msg.code, request: msg.request }),
      log: this._log.bind(this),
    });
    this._roomState = new RoomState({
      emit: (type, payload) => this._emit(type, payload),
      localTracksChanged: () => this._publisher?.bindTrackIds(),
      participantKnown: (p) => this._subscriber?.participantKnown(p),
      trackGone: (trackId) => this._subscriptions.forget(trackId),
    });
    this._subscriptions = new Subscriptions((msg) => this._signal.send(msg), this.options);
    /** @type {PublisherTransport | null} our camera and microphone; created by join() */
    this._publisher = null;
    /** @type {SubscriberTransport | null} everyone else's tracks; created by join() */
    this._subscriber = null;
    /** @type {DataMessages | null} the data channel; created by join() */
    this._data = null;
    /** @type {MeshTransport | null} mesh connections, when the room is a mesh; created by join() */
    this._mesh = null;
  }

  /** @returns {Map<string, Participant>} everyone else in the room, by participant id */
  get participants() { return this._roomState.participants; }
  /** Ourselves, as the server lists us (null before join). */
  get localParticipant() { return this._roomState.localParticipant; }
  /** The room's active speakers, loudest first: [{participantId, identity, level}] */
  get activeSpeakers() { return this._roomState.activeSpeakers; }
  /** @returns {RTCPeerConnection | null} */
  get publisherPc() { return this._publisher?.pc ?? null; }
  /** @returns {RTCPeerConnection | null} */
  get subscriberPc() { return this._subscriber?.pc ?? null; }
  /** @returns {RTCDataChannel | null} */
  get dataChannel() { return this._data?.channel ?? null; }
  /** Local tracks that are published: {source, kind, track, transceiver, trackId, layers, muted} */
  get localTracks() { return this._publisher?.localTracks ?? []; }
  /** @returns {Map<string, SubscribedTrack>} remote tracks received on the subscriber pc, by track id */
  get subscribedTracks() { return this._subscriber?.tracks ?? new Map(); }
  /** @returns {'sfu' | 'mesh'} how the room carries media now, as the server last said */
  get topology() { return this._mesh?.mode ?? 'sfu'; }
  /** @returns {import('./sdk/mesh-transport.js').ShownTrack[]} the remote tracks to show, one per participant and source */
  get remoteTracks() { return [...(this._mesh?.shown.values() ?? [])]; }
  /** @returns {Map<string, RTCPeerConnection>} the mesh connections, by peer participant id */
  get meshPcs() { return new Map([...(this._mesh?.peers ?? new Map())].map(([id, p]) => [id, p.pc])); }

  // ---------------------------------------------------------------- join / resume / leave

  /**
   * Joins the room with `token`, at the first URL that answers (following redirects). Resolves
   * with the server's `joined` message.
   * @param {string} token
   * @returns {Promise<SignalMessage>}
   */
  async join(token) {
    if (this.state !== 'new') throw new RoomError(`join() in state ${this.state}`);
    this.state = 'connecting';
    this._token = token;
    let joined;
    try {
      joined = await this._joinFirstAnswering(token);
    } catch (e) {
      this.state = 'disconnected';
      this.closeCode = e.closeCode ?? null;
      this.closeReason = e.closeReason ?? null;
      throw e;
    }
    const publisher = this._applyJoined(joined, false);
    // The publisher connection is always negotiated: it carries the data channel.
    publisher.negotiate().catch((e) => this._fail(`publisher negotiation failed: ${e.message}`, e));
    return joined;
  }

  /**
   * Tries each URL once; a node that refuses for good (a bad token) ends it, one that cannot be
   * reached or is full hands over to the next.
   * @param {string} token
   * @returns {Promise<SignalMessage>}
   */
  async _joinFirstAnswering(token) {
    let last = null;
    for (const url of this.urls) {
      try {
        return await this._signal.open(joinMessage(token, 0), 'joined', url, this._redirected);
      } catch (e) {
        last = e;
        if (refusedForGood(e)) throw e;
        this._log('warn', `join at ${url} failed: ${e.message}`);
      }
    }
    throw last;
  }

  /** @type {import('./sdk/signal-client.js').RedirectListener} */
  _redirected = (from, to, redirects) => {
    this.redirects++;
    this._emit('redirected', { from, url: to, redirects });
  };

  /**
   * Takes in a `joined` (first join, or a join again): the session, the participants, and new
   * connections. Returns the publisher, not yet negotiated.
   * @param {SignalMessage} joined
   * @param {boolean} again whether the Room was in the room before (the participant list is synced)
   * @returns {PublisherTransport}
   */
  _applyJoined(joined, again) {
    this.url = this._signal.url;
    this.protocol = joined.protocol;
    this.roomName = joined.room;
    // The same on every node of a cluster while the room lives; new when it is made again.
    this.roomSid = joined.room_sid ?? null;
    this.sessionToken = joined.session_token;
    this.departureTimeoutMs = joined.departure_timeout_ms ?? 0;
    this._redirectTo = null;
    this._roomState.setLocal(joined.participant);
    this.state = 'connected';
    const publisher = this._createTransports(joined.ice_servers ?? []);
    if (again) this._roomState.sync(joined.participants ?? []);
    else for (const p of joined.participants ?? []) this._roomState.upsert(p, true);
    this._signal.startKeepalive();
    return publisher;
  }

  /**
   * Creates both connections and the data channel; returns the publisher.
   * @param {{urls: string[], username?: string, credential?: string}[]} iceServers the server's
   *   STUN/TURN servers (`joined.ice_servers`; TURN credentials are minted for this session)
   */
  _createTransports(iceServers) {
    /** @type {RTCConfiguration} */
    const config = {
      bundlePolicy: 'max-bundle',
      rtcpMuxPolicy: 'require',
      iceServers: iceServers.map((s) => ({
        urls: s.urls, ...(s.username ? { username: s.username, credential: s.credential } : {}),
      })),
      ...(this.options.iceTransportPolicy ? { iceTransportPolicy: this.options.iceTransportPolicy } : {}),
      ...(this.options.rtcConfig ?? {}),
    };
    /** @type {import('./sdk/peer-transport.js').TransportHooks} */
    const hooks = {
      send: (msg) => this._signal.send(msg),
      connectionState: (role, state) => this._emit('connectionStateChanged', { role, state }),
      log: this._log.bind(this),
      fail: (message, cause) => this._fail(message, cause),
    };
    const publisher = new PublisherTransport(config, {
      ...hooks,
      request: (msg, timeoutMs) => this._signal.request(msg, timeoutMs),
      emit: (type, payload) => this._emit(type, payload),
      localTrackInfos: () => this.localParticipant?.tracks ?? [],
    }, this.options);
    this._publisher = publisher;
    const mesh = new MeshTransport(config, {
      send: hooks.send,
      emit: (type, payload) => this._emit(type, payload),
      log: hooks.log,
      localTracks: () => publisher.localTracks,
      setSfuSending: (on) => publisher.setSending(on),
      sfuTracks: () => this.subscribedTracks,
      participant: (id) => this.participants.get(id),
    });
    this._mesh = mesh;
    this._subscriber = new SubscriberTransport(config, {
      ...hooks,
      participant: (id) => this.participants.get(id),
      subscribed: (sub) => mesh.sfuSubscribed(sub),
      unsubscribed: (sub) => {
        this._subscriptions.forgetView(sub.trackId);
        mesh.sfuUnsubscribed(sub);
      },
      dataChannel: (channel) => this._data?.listen(channel),
    });
    // The data channel rides on the publisher connection, opened before its first offer.
    this._data = new DataMessages(publisher.pc, {
      opened: () => this._emit('dataChannelOpen', {}),
      received: (msg) => this._emit('data', msg),
      tooLarge: (bytes) => this._emit('dataRefused', { reason: 'too_large', bytes }),
    });
    return publisher;
  }

  /** The socket closed (or was given up): bring the session back, unless that cannot or should not be.
   * @param {CloseInfo} close */
  _onSignalClosed({ code, reason }) {
    this.closeCode = code;
    this.closeReason = reason;
    if (this._leaving || this._closed) return;
    const fatal = FATAL_CLOSE_CODES.get(code);
    if (fatal || !this.options.reconnect || !this.sessionToken) {
      this._shutdown(fatal ?? 'closed', code, reason);
      return;
    }
    const redirectTo = this._redirectTo;
    this._redirectTo = null;
    if (code === REDIRECTED_CLOSE_CODE && redirectTo) {
      // A draining node ended our session and named another: join there at once.
      const urls = [redirectTo, ...this.urls.filter((u) => u !== redirectTo)];
      this._reconnect({ urls, mode: 'join', redirects: 1, immediate: true }, 'redirected');
      return;
    }
    this._reconnect({ urls: rotation(this.urls, this.url), mode: 'resume', redirects: 0, immediate: false }, 'session_not_found');
  }

  /**
   * @param {import('./sdk/recovery.js').RecoveryPlan} plan
   * @param {string} rejoinReason why a join again, if it comes to that, happened
   */
  async _reconnect(plan, rejoinReason) {
    this.state = 'reconnecting';
    // Give up a little after the server would have given up on us.
    const deadline = Date.now() + Math.max(this.departureTimeoutMs || 0, 10_000) + 5_000;
    let back;
    try {
      back = await recover(this._signal, plan, {
        sessionToken: this.sessionToken,
        token: this._token,
        deadline,
        stopped: () => this._leaving || this._closed,
        attempt: (attempt, delayMs, url, mode) => this._emit('reconnecting', { attempt, delayMs, url, mode }),
        redirected: this._redirected,
        log: this._log.bind(this),
      });
    } catch (e) {
      // Out of time (the last close stands), or a node refused the session for good.
      this._shutdown(e.code, e.closeCode ?? this.closeCode, e.closeReason ?? this.closeReason);
      return;
    }
    if (back?.kind === 'resumed') this._onResumed(back.reply);
    else if (back) this._onRejoined(back.reply, rejoinReason);
  }

  /** @param {SignalMessage} msg the server's `resumed` */
  _onResumed(msg) {
    this.url = this._signal.url;
    this.state = 'connected';
    if (msg.participant) {
      this._roomState.setLocal(msg.participant);
      this._publisher?.bindTrackIds();
    }
    // Bring the participant list up to date: whoever is gone left while we were away.
    this._roomState.sync(msg.participants ?? []);
    this._signal.startKeepalive();
    this._subscriptions.resend();
    this._emit('reconnected', { rejoined: false, url: this.url });
    // The server re-offers the subscriber connection itself.
    this._publisher?.restartIceIfBroken();
  }

  /**
   * Joined again (the session was lost, or a draining node sent us on): a new participant on
   * new connections, publishing the same tracks as before.
   * @param {SignalMessage} joined
   * @param {string} reason 'session_not_found' or 'redirected'
   */
  _onRejoined(joined, reason) {
    const previousParticipantId = this.localParticipant?.id ?? null;
    const published = this._publisher?.localTracks ?? [];
    this._subscriber?.unsubscribeAll();
    this._subscriber?.close();
    this._mesh?.close();
    this._publisher?.close({ stopTracks: false });
    const publisher = this._applyJoined(joined, true);
    publisher.republish(published).catch((e) => this._fail(`publishing again failed: ${e.message}`, e));
    const tracks = new Set([...this.participants.values()].flatMap((p) => p.tracks.map((t) => t.id)));
    this._subscriptions.resend(tracks);
    this._emit('reconnected', {
      rejoined: true, reason, url: this.url, participantId: joined.participant.id, previousParticipantId,
    });
  }

  /** Leaves the room: tells the server, closes the socket and both connections, stops local tracks. */
  async leave() {
    if (this._leaving || this._closed) return;
    this._leaving = true;
    this._signal.send({ type: 'leave' });
    await this._signal.closeAfterFlush(1000, 'leave');
    this._shutdown('left', 1000, 'leave');
  }

  /** Ends the session for good, with 'disconnected' (`reason`, `code`, `closeReason`).
   * @param {string} reason @param {number | null} code @param {string | null} closeReason */
  _shutdown(reason, code, closeReason) {
    if (this._closed) return;
    this._closed = true;
    this.state = 'disconnected';
    this._signal.close(1000);
    this._subscriber?.unsubscribeAll();
    this._subscriptions.close();
    this._publisher?.close();
    this._subscriber?.close();
    this._mesh?.close();
    this._emit('disconnected', { reason, code: code ?? null, closeReason: closeReason ?? '' });
  }

  /** Test hook: drops the signaling socket as if the network failed; the SDK then resumes. */
  _dropSocketForTest() {
    return this._signal.drop('dropped for test');
  }

  // ---------------------------------------------------------------- server messages

  /** @param {SignalMessage} msg any server message after `joined`/`resumed` */
  _onSignal(msg) {
    this._emit('signal', { message: msg });
    try {
      this._handle(msg);
    } catch (e) {
      this._fail(`handling '${msg.type}' failed: ${e.message}`, { code: 'client' });
    }
  }

  /** @param {SignalMessage} msg */
  _handle(msg) {
    if (this._roomState.handle(msg) || this._publisher?.handle(msg) || this._subscriber?.handle(msg)) return;
    if (this._mesh?.handle(msg)) return;
    switch (msg.type) {
      case 'answer': // the reply to the publisher's offer: SignalClient.request hands it over
      case 'candidate': // for neither connection
        break;
      case 'pong':
        this._emit('pong', { id: msg.id });
        break;
      case 'data_refused': // a message we sent was not relayed: too large, or over our data rate
        this._emit('dataRefused', { reason: msg.reason, bytes: msg.bytes });
        break;
      case 'error': // one about the publisher's offer also fails its SignalClient.request
        if (msg.request === 'peer_signal' && ['not_mesh', 'unknown_peer', 'stale_signal'].includes(msg.code)) {
          // A signal that crossed a topology change: the connection it was for is gone.
          this._log('debug', 'peer signal refused', msg.code, msg.message);
          break;
        }
        // Any other refused mesh signal (rate_limited, bad_message) leaves a negotiation
        // without its offer, answer or candidate: say so where a failed switch is looked into.
        if (msg.request === 'peer_signal') this._log('warn', 'peer signal refused', msg.code, msg.message);
        this._emit('error', { code: msg.code, message: msg.message, request: msg.request });
        break;
      case 'redirect': // a draining node sends us on; the close (4307) follows
        this._redirectTo = signalingUrl(msg.url);
        break;
      case 'joined':
      case 'resumed':
        this._log('warn', `unexpected '${msg.type}'`);
        break;
      default:
        this._log('debug', 'ignored message', msg);
    }
  }

  /**
   * Sends a ping; resolves with the round-trip time in ms when the pong arrives.
   * @returns {Promise<number>}
   */
  ping() {
    return this._signal.ping();
  }

  // ---------------------------------------------------------------- publishing

  /**
   * Captures and publishes the camera and/or microphone.
   * @param {import('./sdk/publisher-transport.js').PublishOptions} [opts]
   * @returns {Promise<MediaStream>} the local stream (for a self-view)
   */
  async publish(opts = {}) {
    if (!this._publisher) throw new RoomError('publish() before join()');
    const stream = await this._publisher.publish(opts);
    this._mesh?.localTracksChanged();
    return stream;
  }

  /**
   * Mutes or unmutes a track. For a local track (by server id, or by source name such as
   * 'camera'/'microphone') this also disables the outgoing media.
   * @param {string} trackIdOrSource
   */
  mute(trackIdOrSource, muted = true) {
    const local = this._publisher?.muteLocal(trackIdOrSource, muted);
    if (local && !local.trackId) return; // told once the server names the track (bindTrackIds)
    const trackId = local?.trackId ?? trackIdOrSource;
    this._signal.send({ type: 'mute', track_id: trackId, muted: !!muted });
  }

  /**
   * Test hook: one publisher offer/answer exchange (`{iceRestart: true}` for new credentials).
   * @param {RTCOfferOptions} [offerOptions]
   */
  _negotiatePublisher(offerOptions = {}) {
    return this._publisher?.negotiate(offerOptions) ?? Promise.resolve();
  }

  // ---------------------------------------------------------------- subscribing

  /**
   * Looks up a subscribed track by id.
   * @param {string} trackId
   * @returns {SubscribedTrack | null}
   */
  getTrack(trackId) {
    return this.subscribedTracks.get(trackId) ?? null;
  }

  /**
   * Sets the quality wanted for a remote track.
   * @param {string} trackId
   * @param {import('./sdk/subscriptions.js').SubscriptionWish} [wish]
   */
  setSubscription(trackId, wish = {}) {
    this._subscriptions.set(trackId, wish);
  }

  /**
   * Adaptive stream: follows the size `element` shows `trackId` at, and whether it is on screen.
   * The server then sends no layer larger than the element needs (unless setSubscription named
   * a layer or a size), and nothing while it is hidden. Returns a function that stops following.
   * Off with the Room option `adaptiveStream: false`.
   * @param {string} trackId
   * @param {HTMLElement} element
   * @returns {() => void}
   */
  observeVideo(trackId, element) {
    return this._subscriptions.observe(trackId, element);
  }

  /** @param {string} trackId */
  unobserveVideo(trackId) {
    this._subscriptions.unobserve(trackId);
  }

  /**
   * Receive statistics of one subscribed track (from the inbound-rtp report of its receiver).
   * @param {string} trackId
   * @returns {Promise<import('./sdk/media.js').InboundStats | null>}
   */
  async statsFor(trackId) {
    return this._subscriber ? this._subscriber.statsFor(trackId) : null;
  }

  // ---------------------------------------------------------------- data messages

  /** Resolves when the data channel is open. */
  dataReady() {
    return this._data?.ready ?? Promise.reject(new RoomError('not joined'));
  }

  /**
   * Sends text or binary (ArrayBuffer / typed array) to every other participant. At most 32768
   * bytes (the server's `a=max-message-size`; the browser throws on larger ones); what the server
   * refuses to relay is told with a 'dataRefused' event.
   * @param {string | ArrayBuffer | ArrayBufferView} data
   */
  sendData(data) {
    if (!this._data) throw new RoomError('sendData() before join()');
    this._data.send(data);
  }
}

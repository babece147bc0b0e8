// @ts-check
// Mesh rooms (docs/topologies.md, "Mesh"): the server's `topology` says whether the room is a
// mesh (media straight between the peers, one MeshPeer connection each) or goes through the
// SFU; this part follows it and decides which received track the app shows for each remote
// participant and source.
//
// The SFU connections stay up through a mesh: the publisher's senders only carry no track
// (replaceTrack(null)), so the server forwards nothing, and the subscriber keeps its tracks.
// A switch never leaves the app without video: SFU -> mesh, the mesh connection's video must
// decode steadily before the app is moved to it, and we stop sending to the server only once
// the peer says (mesh-notes.js) it moved too; mesh -> SFU, we send to the server at once, move
// the app once the SFU track decodes steadily, and close the mesh connection once the peer says
// it moved. The app is moved by a 'trackSubscribed' event
// for the same participant and source with the new track (`via` 'mesh' or 'sfu'): it points its
// <video> at `stream` again.
import { MeshPeer } from './mesh-negotiation.js';
import { sleep } from './util.js';

/** How long a switch waits for the new path's media before it moves the app anyway. */
const SWITCH_TIMEOUT_MS = 10_000;
/** How often a switch looks at the new path's receive counters. */
const POLL_MS = 200;
/**
 * How many looks in a row must see the counters grow before a switch moves the app: a path
 * that has just started often decodes a frame or two and then stalls (its sender's encoder
 * and bandwidth estimate are still starting), which one growing look would not notice.
 */
const STEADY_LOOKS = 3;
/** Looks in a row without progress after which the old path counts as stalled during a switch. */
const OLD_STALLED_LOOKS = 2;
/**
 * After our switch, the old path keeps going until the peer says it switched too (its own new
 * path may take longer to be steady than ours), but no longer than this.
 */
const OLD_PATH_MAX_MS = 15_000;

/** @typedef {import('./signal-client.js').SignalMessage} SignalMessage */
/** @typedef {import('./subscriber-transport.js').SubscribedTrack} SubscribedTrack */
/** @typedef {import('./room-state.js').Participant} Participant */

/**
 * A remote track as the app should show it (the 'trackSubscribed' payload).
 * @typedef {object} ShownTrack
 * @property {string | null} trackId the server's id of the track, when known
 * @property {string} participantId
 * @property {string | null} identity
 * @property {string} kind
 * @property {string} source
 * @property {MediaStreamTrack} track
 * @property {MediaStream} stream a stream holding only `track`, for a media element
 * @property {RTCRtpReceiver} receiver
 * @property {'mesh' | 'sfu'} via which connection it arrives on
 * @property {RTCRtpTransceiver} [transceiver] (SFU tracks) as on the subscriber connection
 * @property {string | null} [mid]
 * @property {object | null} [info]
 */

/**
 * @typedef {object} MeshHooks
 * @property {(msg: SignalMessage) => boolean} send
 * @property {(type: string, payload?: object) => void} emit
 * @property {(level: string, ...args: any[]) => void} log
 * @property {() => {track: MediaStreamTrack, source: string}[]} localTracks what we publish
 * @property {(on: boolean) => Promise<void>} setSfuSending our SFU senders carry our tracks, or nothing
 * @property {() => Map<string, SubscribedTrack>} sfuTracks the SFU subscriber's tracks
 * @property {(id: string) => Participant | undefined} participant
 */

export class MeshTransport {
  /**
   * @param {RTCConfiguration} config for the mesh connections
   * @param {MeshHooks} hooks
   */
  constructor(config, hooks) {
    this._config = config;
    this._hooks = hooks;
    /** @type {'sfu' | 'mesh'} what the server last said */
    this.mode = 'sfu';
    /** @type {Map<string, MeshPeer>} by participant id */
    this.peers = new Map();
    /** @type {Map<string, ShownTrack>} what the app shows: mesh tracks by participant/source, SFU ones by track id */
    this.shown = new Map();
    /** @type {Map<string, Map<string, ShownTrack>>} peer id -> source -> its track on the mesh connection */
    this._received = new Map();
    /** Whether our SFU senders were emptied for the mesh. */
    this._sfuOff = false;
    /** Bumped by each `topology`: a switch still running for an older one gives up. */
    this._epoch = 0;
    this.closed = false;
  }

  /**
   * @param {SignalMessage} msg
   * @returns {boolean} whether it was a mesh message
   */
  handle(msg) {
    if (msg.type === 'topology') this.onTopology(msg);
    else if (msg.type === 'peer_signal') this.peers.get(msg.from)?.onSignal(msg);
    else return false;
    return true;
  }

  /** @param {SignalMessage} msg */
  onTopology(msg) {
    const epoch = ++this._epoch;
    const from = this.mode;
    this.mode = msg.mode === 'mesh' ? 'mesh' : 'sfu';
    this._hooks.log('info', `topology ${from} -> ${this.mode}`, msg.peers);
    this._hooks.emit('topologyChanged', { mode: this.mode, peers: (msg.peers ?? []).map((p) => p.participant_id) });
    if (this.mode === 'sfu') {
      this._switchToSfu(epoch).catch((e) => this._hooks.log('warn', 'switch to sfu', e.message));
      return;
    }
    /** @type {Map<string, {polite: boolean, connection: number}>} */
    const listed = new Map((msg.peers ?? []).map((p) => [p.participant_id, { polite: !!p.polite, connection: p.connection ?? 0 }]));
    for (const [id, peer] of [...this.peers]) {
      const now = listed.get(id);
      if (!now) this._closePeer(id, true);
      // A new number: the pair meets again after an SFU spell. The old connection (still
      // open for the last switch's grace) is not reused: the peer opened a new one.
      else if (now.connection !== peer.connection) this._replacePeer(id);
    }
    for (const [id, { polite, connection }] of listed) if (!this.peers.has(id)) this._openPeer(id, polite, connection);
    this._switchToMesh(epoch).catch((e) => this._hooks.log('warn', 'switch to mesh', e.message));
  }

  /** Our published tracks changed: send the new ones to every peer too. */
  localTracksChanged() {
    for (const peer of this.peers.values()) for (const { track } of this._hooks.localTracks()) peer.addLocal(track);
    if (this.mode === 'mesh' && this._sfuOff) this._hooks.setSfuSending(false);
  }

  /** @param {string} id @param {boolean} polite @param {number} connection */
  _openPeer(id, polite, connection) {
    const peer = new MeshPeer(id, polite, connection, this._config, {
      send: (m) => this._hooks.send(m),
      sourceOf: (track) => this._hooks.localTracks().find((t) => t.track === track)?.source ?? track.kind,
      remoteTrack: (p, source, receiver) => this._meshTrack(p, source, receiver),
      log: this._hooks.log,
    });
    this.peers.set(id, peer);
    for (const { track } of this._hooks.localTracks()) peer.addLocal(track);
  }

  /** @param {string} id @param {boolean} unshow whether the app loses its mesh tracks (the peer left) */
  _closePeer(id, unshow) {
    const peer = this.peers.get(id);
    if (!peer) return;
    peer.close();
    this.peers.delete(id);
    this._received.delete(id);
    if (!unshow) return;
    for (const [key, s] of [...this.shown]) {
      if (s.participantId === id && s.via === 'mesh') {
        this.shown.delete(key);
        this._hooks.emit('trackUnsubscribed', { ...s });
      }
    }
  }

  /**
   * Closes the connection to `id` for a new one: what the app shows from it is forgotten (not
   * unsubscribed), so the new connection's tracks take its place when they come.
   * @param {string} id
   */
  _replacePeer(id) {
    this._closePeer(id, false);
    for (const [key, s] of [...this.shown]) if (s.participantId === id && s.via === 'mesh') this.shown.delete(key);
  }

  /** @param {MeshPeer} peer @param {string} source @param {RTCRtpReceiver} receiver */
  _meshTrack(peer, source, receiver) {
    const track = this._describe(peer.peerId, source, receiver, 'mesh');
    if (peer.closed) return;
    const received = this._received.get(peer.peerId) ?? new Map();
    received.set(source, track);
    this._received.set(peer.peerId, received);
    // Nothing shown yet for it (a fresh mesh): show it at once; else the switch moves the app.
    const shown = [...this.shown.values()].some((s) => s.participantId === peer.peerId && s.source === source);
    if (!shown) this._show(track);
  }

  /**
   * @param {string} participantId @param {string} source @param {RTCRtpReceiver} receiver
   * @param {'mesh' | 'sfu'} via
   * @returns {ShownTrack}
   */
  _describe(participantId, source, receiver, via) {
    const p = this._hooks.participant(participantId);
    const info = p?.tracks.find((t) => t.source === source) ?? null;
    const track = receiver.track;
    return {
      trackId: info?.id ?? null, participantId, identity: p?.identity ?? null, kind: track.kind, source,
      track, stream: new MediaStream([track]), receiver, via, info,
    };
  }

  /**
   * Shows `t` in place of what the other path brought for the same participant and source (the
   * app moves its element on the new 'trackSubscribed'; no 'trackUnsubscribed' for the old one).
   * @param {ShownTrack} t
   */
  _show(t) {
    const key = t.via === 'mesh' ? `mesh:${t.participantId}/${t.source}` : `sfu:${t.trackId}`;
    if (this.shown.get(key)?.track === t.track) return;
    for (const [k, s] of [...this.shown]) {
      if (s.via !== t.via && s.participantId === t.participantId && s.source === t.source) this.shown.delete(k);
    }
    this.shown.set(key, t);
    this._hooks.emit('trackSubscribed', { ...t });
  }

  /**
   * The SFU subscriber received a track: shown now, unless a mesh connection to its publisher
   * exists (then a switch shows it, or it stays hidden while the mesh carries the media).
   * @param {SubscribedTrack} sub
   */
  sfuSubscribed(sub) {
    if (this.peers.has(sub.participantId)) return;
    this._show(this._fromSfu(sub));
  }

  /** @param {SubscribedTrack} sub */
  sfuUnsubscribed(sub) {
    for (const [key, s] of [...this.shown]) {
      if (s.via === 'sfu' && s.track === sub.track) {
        this.shown.delete(key);
        this._hooks.emit('trackUnsubscribed', { ...s });
      }
    }
  }

  /** @param {SubscribedTrack} sub @returns {ShownTrack} */
  _fromSfu(sub) {
    const source = sub.info?.source ?? (sub.kind === 'audio' ? 'microphone' : 'camera');
    return { ...sub, source, receiver: sub.transceiver.receiver, via: 'sfu' };
  }

  /**
   * The receivers the app shows for `participantId` through `via`.
   * @param {string} participantId @param {'mesh' | 'sfu'} via
   * @returns {RTCRtpReceiver[]}
   */
  _shownReceivers(participantId, via) {
    return [...this.shown.values()].filter((s) => s.participantId === participantId && s.via === via).map((s) => s.receiver);
  }

  /** @param {number} epoch */
  async _switchToMesh(epoch) {
    const switched = await Promise.all([...this.peers.values()].map(async (peer) => {
      const received = () => [...(this._received.get(peer.peerId)?.values() ?? [])];
      // Only a peer the app shows through the SFU has anything to keep playing.
      const viaSfu = [...this.shown.values()].some((s) => s.participantId === peer.peerId && s.via === 'sfu');
      const cancelled = () => this._epoch !== epoch;
      if (!viaSfu) {
        peer.notes.say('mesh'); // shown from the mesh from the start
        // No SFU path to fall back on: a connection stuck in ICE still gets its one restart.
        this._meshFlowing(peer, () => cancelled() || peer.closed)
          .catch((e) => this._hooks.log('warn', 'mesh restart', e.message));
        return true;
      }
      const ok = await this._meshFlowing(peer, cancelled, () => this._shownReceivers(peer.peerId, 'sfu'));
      if (cancelled() || peer.closed) return false;
      if (!ok) {
        // The SFU path keeps carrying it: the app stays on it, and we keep sending there.
        this._hooks.log('warn', `mesh media from ${peer.peerId} did not start; staying on the SFU`);
        return false;
      }
      for (const t of received()) this._show(t);
      peer.notes.say('mesh');
      return true;
    }));
    if (this._epoch !== epoch || this.closed || !switched.every(Boolean)) return;
    // Our SFU media may still be what the peers show: stop it once each says it moved.
    const cancelled = () => this._epoch !== epoch || this.closed;
    await Promise.all([...this.peers.values()].map((peer) => peer.notes.heard('mesh', OLD_PATH_MAX_MS, cancelled)));
    if (cancelled()) return;
    this._sfuOff = true;
    await this._hooks.setSfuSending(false);
  }

  /**
   * Waits until the media from `peer`'s mesh connection flows steadily (see `flowing`); if it
   * does not (ICE or DTLS never came up), starts ICE over once and waits again.
   * @param {MeshPeer} peer @param {() => boolean} cancelled
   * @param {() => RTCRtpReceiver[]} [shown] the old path's receivers the app shows now
   * @returns {Promise<boolean>}
   */
  async _meshFlowing(peer, cancelled, shown) {
    const receivers = () => [...(this._received.get(peer.peerId)?.values() ?? [])].map((t) => t.receiver);
    if (await flowing(receivers, cancelled, shown)) return true;
    if (cancelled() || peer.closed) return false;
    this._hooks.log('warn', `mesh media from ${peer.peerId} did not start; restarting ICE`);
    peer.restartIce();
    return flowing(receivers, cancelled, shown);
  }

  /** @param {number} epoch */
  async _switchToSfu(epoch) {
    this._sfuOff = false;
    await this._hooks.setSfuSending(true);
    await Promise.all([...this.peers.values()].map(async (peer) => {
      const id = peer.peerId;
      const sfu = () => [...this._hooks.sfuTracks().values()].filter((s) => s.participantId === id);
      const onMesh = () => this._shownReceivers(id, 'mesh');
      const ok = await flowing(() => sfu().map((s) => s.transceiver.receiver), () => this._epoch !== epoch, onMesh);
      if (this._epoch !== epoch) return;
      if (!ok) this._hooks.log('warn', `SFU media from ${id} did not start; switching anyway`);
      for (const sub of sfu()) this._show(this._fromSfu(sub));
      peer.notes.say('sfu');
      // The peer may still show our mesh media: close once it says it moved (or gave up on it).
      await peer.notes.heard('sfu', OLD_PATH_MAX_MS, () => this._epoch !== epoch || peer.closed);
      if (this._epoch === epoch) this._closePeer(id, true);
    }));
  }

  close() {
    this.closed = true;
    this._epoch++;
    for (const id of [...this.peers.keys()]) this._closePeer(id, false);
  }
}

/**
 * Waits until media flows steadily on the receivers `list()` gives: a video one decodes frames
 * (or, with no video, an audio one receives packets), with counters that grow at each of
 * STEADY_LOOKS looks in a row. Sooner if the path shown now (`shown()`) stalls while the new one
 * decodes at all: then the new one is the better of the two already.
 * @param {() => RTCRtpReceiver[]} list the new path's receivers
 * @param {() => boolean} cancelled
 * @param {() => RTCRtpReceiver[]} [shown] the old path's receivers the app shows now
 * @returns {Promise<boolean>} false on timeout or cancel
 */
async function flowing(list, cancelled, shown = () => []) {
  const deadline = performance.now() + SWITCH_TIMEOUT_MS;
  /** @type {number | null} */
  let before = null;
  let rises = 0;
  /** @type {number | null} */
  let oldBefore = null;
  let oldStill = 0;
  while (performance.now() < deadline && !cancelled()) {
    const now = await receivedCount(list());
    rises = now !== null && before !== null && now > before ? rises + 1 : 0;
    if (rises >= STEADY_LOOKS) return true;
    const old = await receivedCount(shown());
    oldStill = old !== null && oldBefore !== null && old <= oldBefore ? oldStill + 1 : 0;
    if (rises >= 1 && oldStill >= OLD_STALLED_LOOKS) return true;
    if (now !== null) before = now;
    if (old !== null) oldBefore = old;
    await sleep(POLL_MS);
  }
  return false;
}

/**
 * What `receivers` got so far: video frames decoded (or, with no video, audio packets), or
 * null when none has received anything.
 * @param {RTCRtpReceiver[]} receivers
 * @returns {Promise<number | null>}
 */
async function receivedCount(receivers) {
  const video = receivers.filter((r) => r.track.kind === 'video');
  let count = 0;
  let seen = false;
  for (const r of video.length ? video : receivers) {
    try {
      (await r.getStats()).forEach((/** @type {any} */ s) => {
        if (s.type !== 'inbound-rtp') return;
        seen = true;
        count += video.length ? s.framesDecoded ?? 0 : s.packetsReceived ?? 0;
      });
    } catch {} // its connection closed meanwhile
  }
  return seen ? count : null;
}

// @ts-check
// One mesh connection: an RTCPeerConnection straight to another participant, negotiated with the
// W3C "perfect negotiation" pattern through the server's `peer_signal` relay. Both sides add
// their tracks whenever they like; when both offer at once, the polite side (the later joiner,
// as the server's `topology` says) yields and the impolite side's offer wins.
import { SerialQueue } from './util.js';
import { SwitchNotes } from './mesh-notes.js';

/** @typedef {import('./signal-client.js').SignalMessage} SignalMessage */

/**
 * What a mesh connection needs from its MeshTransport.
 * @typedef {object} MeshPeerHooks
 * @property {(msg: SignalMessage) => boolean} send sends a `peer_signal` (the `to` is filled in)
 * @property {(track: MediaStreamTrack) => string} sourceOf the source ('camera', ...) of a local track
 * @property {(peer: MeshPeer, source: string, receiver: RTCRtpReceiver) => void} remoteTrack
 *   a track of the peer arrived
 * @property {(level: string, ...args: any[]) => void} log
 */

/** How long the polite side waits for the impolite side's first offer before it offers itself. */
const FIRST_OFFER_WAIT_MS = 3000;

export class MeshPeer {
  /**
   * @param {string} peerId the other participant
   * @param {boolean} polite our role towards it
   * @param {number} connection the server's number of this connection (`topology`): both ends
   *   use the same, and a signal for another number belongs to an older connection
   * @param {RTCConfiguration} config
   * @param {MeshPeerHooks} hooks
   */
  constructor(peerId, polite, connection, config, hooks) {
    this.peerId = peerId;
    this.polite = polite;
    this.connection = connection;
    this.pc = new RTCPeerConnection(config);
    this._hooks = hooks;
    this._makingOffer = false;
    this._ignoreOffer = false;
    this.closed = false;
    /** @type {Map<string, string>} mid -> source of what the peer sends there */
    this._remoteSources = new Map();
    /** @type {MediaStream} the stream our tracks are announced in */
    this._stream = new MediaStream();
    this._queue = new SerialQueue();
    /** Tells the peer when we moved to a path, and hears when it did. */
    this.notes = new SwitchNotes((note) => this._send({ moved: note }));
    this.pc.onicecandidate = ({ candidate }) => {
      if (candidate && candidate.candidate) this._send({ candidate: candidate.toJSON() });
    };
    // Only the impolite side offers first. Both sides add their tracks the moment the server
    // pairs them, and in that glare Chromium sometimes gathers no candidate at all for the
    // polite side's answer after rolling back its own offer: the pair never connects. The
    // polite side offers only once the first offer is through, or if none came in time (an
    // impolite peer with nothing to send never offers).
    this._awaitFirstOffer = polite;
    this.pc.onnegotiationneeded = () => {
      if (this._awaitFirstOffer) hooks.log('debug', `mesh ${peerId}: its first offer comes from the peer`);
      else this._offer();
    };
    this._firstOfferTimer = polite ? setTimeout(() => {
      if (!this._awaitFirstOffer) return;
      this._awaitFirstOffer = false;
      if (!this.pc.remoteDescription && this.pc.getTransceivers().length) this._offer();
    }, FIRST_OFFER_WAIT_MS) : null;
    // A mesh connection that does not come up is told, so a switch can fall back (and a
    // failure can be read in the console).
    this.pc.onconnectionstatechange = () => {
      const state = this.pc.connectionState;
      const level = state === 'failed' || state === 'disconnected' ? 'warn' : 'debug';
      hooks.log(level, `mesh connection to ${peerId} ${state} (ice ${this.pc.iceConnectionState})`);
    };
    this.pc.onsignalingstatechange = () => hooks.log('debug', `mesh ${peerId} signaling ${this.pc.signalingState}`);
    this.pc.onicegatheringstatechange = () => hooks.log('debug', `mesh ${peerId} gathering ${this.pc.iceGatheringState}`);
    this.pc.ontrack = (e) => {
      const mid = e.transceiver.mid ?? '';
      const source = this._remoteSources.get(mid) ?? (e.track.kind === 'audio' ? 'microphone' : 'camera');
      hooks.remoteTrack(this, source, e.receiver);
    };
  }

  /**
   * Sends `track` to the peer (once).
   * @param {MediaStreamTrack} track
   */
  addLocal(track) {
    if (this.closed || this.pc.getSenders().some((s) => s.track === track)) return;
    this._stream.addTrack(track);
    // addTrack (not addTransceiver): a transceiver the peer's offer made is reused, so both
    // sides' camera share one sendrecv section.
    this.pc.addTrack(track, this._stream);
  }

  /** Starts ICE over (the impolite side's offer carries new credentials); for a stuck connection. */
  restartIce() {
    if (!this.closed && !this.polite) this.pc.restartIce();
  }

  /** @param {object} body */
  _send(body) {
    if (this.closed) return;
    this._hooks.log('debug', `mesh ${this.peerId} sends`, describeSignal(body));
    this._hooks.send({ type: 'peer_signal', to: this.peerId, connection: this.connection, ...body });
  }

  /** What each of our sending sections carries, for the peer's ontrack. */
  _sendingTracks() {
    const out = [];
    for (const t of this.pc.getTransceivers()) {
      const track = t.sender.track;
      if (t.mid != null && track) out.push({ mid: t.mid, source: this._hooks.sourceOf(track) });
    }
    return out;
  }

  async _offer() {
    if (this.closed) return;
    try {
      this._makingOffer = true;
      await this.pc.setLocalDescription();
      this._send({ description: this.pc.localDescription?.toJSON(), tracks: this._sendingTracks() });
    } catch (e) {
      this._hooks.log('warn', `mesh offer to ${this.peerId}`, e.message);
    } finally {
      this._makingOffer = false;
    }
  }

  /**
   * A `peer_signal` from the peer, applied in order.
   * @param {SignalMessage} msg
   * @returns {Promise<void>}
   */
  onSignal(msg) {
    if (msg.connection != null && msg.connection !== this.connection) {
      // From the peer's connection before an SFU spell (or after one we have not heard of
      // yet): applied here it would break this one.
      this._hooks.log('debug', `mesh ${this.peerId}: dropped a signal of connection ${msg.connection} (ours is ${this.connection})`);
      return Promise.resolve();
    }
    if (msg.moved === 'sfu' || msg.moved === 'mesh') {
      this._hooks.log('debug', `mesh ${this.peerId} says it moved to the ${msg.moved}`);
      this.notes.got(msg.moved);
    }
    if (!msg.description && !msg.candidate) return Promise.resolve();
    return this._queue.run(() => this._apply(msg)).catch((e) =>
      this._hooks.log('warn', `mesh signal from ${this.peerId}`, e.message));
  }

  /** @param {SignalMessage} msg */
  async _apply({ description, candidate, tracks }) {
    if (this.closed) return;
    const pc = this.pc;
    this._hooks.log('debug', `mesh ${this.peerId} got`, describeSignal({ description, candidate }),
      `(signaling ${pc.signalingState}, making offer ${this._makingOffer})`);
    if (description) {
      for (const t of tracks ?? []) this._remoteSources.set(String(t.mid), t.source);
      const collision = description.type === 'offer' && (this._makingOffer || pc.signalingState !== 'stable');
      this._ignoreOffer = !this.polite && collision;
      if (this._ignoreOffer) return;
      await pc.setRemoteDescription(description); // a polite side's own offer is rolled back
      if (description.type === 'offer') {
        // Our answer carries our tracks where the offer has room; back in `stable`, the browser
        // asks for a negotiation again if some did not fit, and we offer then.
        this._awaitFirstOffer = false;
        await pc.setLocalDescription();
        this._send({ description: pc.localDescription?.toJSON(), tracks: this._sendingTracks() });
      }
    } else if (candidate) {
      try {
        await pc.addIceCandidate(candidate);
      } catch (e) {
        // Expected to fail: candidates of an offer we ignored, and those of an ICE generation
        // that is over (a rolled-back offer, before an ICE restart): their ufrag is not current.
        const current = /a=ice-ufrag:(\S+)/.exec(pc.remoteDescription?.sdp ?? '')?.[1];
        const stale = candidate.usernameFragment && current && candidate.usernameFragment !== current;
        if (!this._ignoreOffer && !stale) throw e;
      }
    }
  }

  close() {
    this.closed = true;
    clearTimeout(this._firstOfferTimer ?? undefined);
    try { this.pc.close(); } catch {}
  }
}

/**
 * A short line about a signal, for debug logs: the description's type, or the candidate.
 * @param {{description?: any, candidate?: any, moved?: string}} body
 */
function describeSignal({ description, candidate, moved }) {
  if (moved) return `note: moved to the ${moved}`;
  if (description) return `${description.type} (ufrag ${/a=ice-ufrag:(\S+)/.exec(description.sdp ?? '')?.[1] ?? '?'})`;
  return `candidate ${candidate?.candidate ?? ''} (ufrag ${candidate?.usernameFragment ?? '?'})`;
}

// @ts-check
// One RTCPeerConnection and what each of ours needs around it: local ICE candidates trickled to
// the server, the server's candidates held until the remote description is set, its connection
// state reported, and closing. PublisherTransport and SubscriberTransport build on it.

/** @typedef {import('./signal-client.js').SignalMessage} SignalMessage */

/**
 * Which of the client's two connections; candidates name it as their `target`.
 * @typedef {'publisher' | 'subscriber'} TransportRole
 */

/**
 * What a transport needs from its Room.
 * @typedef {object} TransportHooks
 * @property {(msg: SignalMessage) => boolean} send sends a signaling message (false if not connected)
 * @property {(role: TransportRole, state: RTCPeerConnectionState) => void} connectionState
 * @property {(level: string, ...args: any[]) => void} log
 * @property {(message: string, cause?: {code?: any, request?: string}) => void} fail reports a failure
 *   (an 'error' event)
 */

/** @template {TransportHooks} [H=TransportHooks] what the Room gives this kind of transport */
export class PeerTransport {
  /**
   * @param {TransportRole} role
   * @param {RTCConfiguration} config
   * @param {H} hooks
   */
  constructor(role, config, hooks) {
    this.role = role;
    this.pc = new RTCPeerConnection(config);
    /** @type {H} */
    this._hooks = hooks;
    /** Set by close(): a negotiation still queued must not touch the connection. */
    this.closed = false;
    /** @type {RTCIceCandidateInit[]} the server's candidates that came before its description */
    this._pendingCandidates = [];
    this.pc.onicecandidate = (e) => this._sendCandidate(e.candidate);
    this.pc.onconnectionstatechange = () => hooks.connectionState(role, this.pc.connectionState);
  }

  /** True once closed, or when the connection closed by itself. */
  get unusable() {
    return this.closed || this.pc.signalingState === 'closed';
  }

  /**
   * Applies a server message meant for this connection; false when `msg` is not one.
   * @param {SignalMessage} msg
   * @returns {boolean}
   */
  handle(msg) {
    if (msg.type !== 'candidate' || msg.target !== this.role) return false;
    this.addRemoteCandidate(msg.candidate);
    return true;
  }

  /** @param {RTCIceCandidate | null} c */
  _sendCandidate(c) {
    if (!c || !c.candidate) return; // end of candidates: nothing to send
    this._hooks.send({
      type: 'candidate',
      target: this.role,
      candidate: { candidate: c.candidate, sdpMid: c.sdpMid ?? undefined, sdpMLineIndex: c.sdpMLineIndex ?? undefined },
    });
  }

  /**
   * A candidate from the server; held until the remote description is set.
   * @param {RTCIceCandidateInit | null | undefined} cand
   */
  addRemoteCandidate(cand) {
    if (!cand) return;
    if (!this.pc.remoteDescription) {
      this._pendingCandidates.push(cand);
      return;
    }
    this.pc.addIceCandidate(cand).catch((e) => this._hooks.log('warn', `addIceCandidate(${this.role})`, e.message));
  }

  /** Adds the held candidates, once the remote description is set. */
  _flushCandidates() {
    const list = this._pendingCandidates.splice(0);
    for (const c of list) this.pc.addIceCandidate(c).catch((e) => this._hooks.log('warn', 'addIceCandidate', e.message));
  }

  close() {
    this.closed = true;
    try { this.pc.close(); } catch {}
  }
}

// @ts-check
// The view of the room: who is in it, with which tracks, and who is speaking, as the server
// announces it, in whatever order its events arrive. It emits the room's participant and track
// events; what the rest of the SDK must do about a change it asks through its hooks.

/**
 * A track as the server describes it (docs/protocol.md, TrackInfo).
 * @typedef {{id: string, kind: string, source: string, name?: string, muted?: boolean, layers?: object[],
 *   [field: string]: any}} TrackInfo
 */

/**
 * A participant as the server describes it.
 * @typedef {{id: string, identity: string, tracks?: TrackInfo[], [field: string]: any}} ParticipantInfo
 */

/**
 * A participant as the Room keeps it. `placeholder` while only its tracks are known (a
 * track_published came before its participant_joined).
 * @typedef {{id: string, identity: string | null, tracks: TrackInfo[], placeholder?: boolean,
 *   [field: string]: any}} Participant
 */

/** @typedef {{participantId: string, identity: string | null, level: number}} ActiveSpeaker */

/**
 * @typedef {object} RoomStateHooks
 * @property {(type: string, payload?: object) => void} emit dispatches a Room event
 * @property {() => void} localTracksChanged our own track list changed (server ids to bind)
 * @property {(p: Participant) => void} participantKnown `p`'s identity and tracks are known or changed
 * @property {(trackId: string) => void} trackGone a remote track was unpublished
 */

export class RoomState {
  /** @param {RoomStateHooks} hooks */
  constructor(hooks) {
    this._hooks = hooks;
    /** @type {Map<string, Participant>} everyone else in the room, by participant id */
    this.participants = new Map();
    /** @type {Participant | null} ourselves, as the server lists us */
    this.localParticipant = null;
    /** @type {ActiveSpeaker[]} the room's active speakers, loudest first */
    this.activeSpeakers = [];
    /** Participant ids that left: late events about them are ignored. */
    this._departed = new Set();
  }

  /**
   * Applies a server message about the room (who is in it, their tracks, who speaks); false when
   * `msg` is not one of those.
   * @param {import('./signal-client.js').SignalMessage} msg
   * @returns {boolean}
   */
  handle(msg) {
    switch (msg.type) {
      case 'participant_joined': this.upsert(msg.participant, true); return true;
      case 'participant_left': this.remove(msg.participant_id, msg.identity, msg.reason); return true;
      case 'track_published': this.trackPublished(msg.participant_id, msg.track); return true;
      case 'track_unpublished': this.trackUnpublished(msg.participant_id, msg.track_id); return true;
      case 'track_muted': this.trackMuted(msg.participant_id, msg.track_id, msg.muted); return true;
      case 'active_speakers': this.setActiveSpeakers(msg.speakers ?? []); return true;
      case 'stream_state':
        // The server stopped sending a subscribed track (its downlink cannot carry it) or resumed.
        this._hooks.emit('streamState', {
          participantId: msg.participant_id,
          identity: this.identityOf(msg.participant_id),
          trackId: msg.track_id,
          state: msg.state,
          reason: msg.reason ?? null,
        });
        return true;
      default:
        return false;
    }
  }

  /** @param {ParticipantInfo} info ourselves, from `joined` or `resumed` */
  setLocal(info) {
    this.localParticipant = { ...info, tracks: [...(info.tracks ?? [])] };
  }

  /**
   * The participant list after a resume: whoever is gone left while we were away.
   * @param {ParticipantInfo[]} infos
   */
  sync(infos) {
    const present = new Set(infos.map((p) => p.id));
    for (const [id, p] of [...this.participants]) {
      if (!present.has(id)) this.remove(id, p.identity, 'timeout');
    }
    for (const p of infos) this.upsert(p, true);
  }

  /**
   * Adds or updates a participant; `announce` emits participantJoined for a new one.
   * @param {ParticipantInfo} info
   * @param {boolean} announce
   */
  upsert(info, announce) {
    if (!info || !info.id) return;
    if (this.localParticipant && info.id === this.localParticipant.id) return;
    this._departed.delete(info.id);
    const existing = this.participants.get(info.id);
    const tracks = [...(info.tracks ?? [])];
    if (existing) {
      // Events may have raced ahead of this snapshot (a track_published before participant_joined).
      const known = new Map(existing.tracks.map((t) => [t.id, t]));
      for (const t of tracks) known.set(t.id, t);
      const wasPlaceholder = existing.placeholder;
      existing.identity = info.identity ?? existing.identity;
      existing.tracks = [...known.values()];
      existing.placeholder = false;
      if (wasPlaceholder && announce) this._hooks.emit('participantJoined', { participant: existing });
    } else {
      /** @type {Participant} */
      const p = { id: info.id, identity: info.identity, tracks, placeholder: false };
      this.participants.set(info.id, p);
      if (announce) this._hooks.emit('participantJoined', { participant: p });
      for (const t of tracks) this._hooks.emit('trackPublished', { participantId: p.id, identity: p.identity, track: t });
    }
    this._known(info.id);
  }

  /** @param {string} participantId */
  _known(participantId) {
    const p = this.participants.get(participantId);
    if (p) this._hooks.participantKnown(p);
  }

  /**
   * @param {string} id
   * @param {string | null | undefined} identity
   * @param {string} reason
   */
  remove(id, identity, reason) {
    const p = this.participants.get(id);
    if (p) this.participants.delete(id);
    if (this.localParticipant && id === this.localParticipant.id) return;
    this._departed.add(id);
    this._hooks.emit('participantLeft', {
      participantId: id, identity: identity ?? p?.identity ?? null, reason, participant: p ?? null,
    });
  }

  /**
   * @param {string} participantId
   * @param {TrackInfo} track
   */
  trackPublished(participantId, track) {
    if (!track) return;
    if (this.localParticipant && participantId === this.localParticipant.id) {
      const tracks = this.localParticipant.tracks.filter((t) => t.id !== track.id);
      tracks.push(track);
      this.localParticipant.tracks = tracks;
      this._hooks.localTracksChanged();
      this._hooks.emit('localTrackPublished', { track });
      return;
    }
    if (this._departed.has(participantId)) return; // a late event about someone who left
    let p = this.participants.get(participantId);
    if (!p) {
      // The participant_joined event is late: keep a placeholder until it comes.
      p = { id: participantId, identity: null, tracks: [], placeholder: true };
      this.participants.set(participantId, p);
    }
    p.tracks = p.tracks.filter((t) => t.id !== track.id);
    p.tracks.push(track);
    this._known(participantId);
    this._hooks.emit('trackPublished', { participantId, identity: p.identity, track });
  }

  /**
   * @param {string} participantId
   * @param {string} trackId
   */
  trackUnpublished(participantId, trackId) {
    if (this.localParticipant && participantId === this.localParticipant.id) {
      this.localParticipant.tracks = this.localParticipant.tracks.filter((t) => t.id !== trackId);
      return;
    }
    const p = this.participants.get(participantId);
    if (p) p.tracks = p.tracks.filter((t) => t.id !== trackId);
    this._hooks.trackGone(trackId);
    this._hooks.emit('trackUnpublished', { participantId, identity: p?.identity ?? null, trackId });
  }

  /**
   * @param {string} participantId
   * @param {string} trackId
   * @param {boolean} muted
   */
  trackMuted(participantId, trackId, muted) {
    const p = this.participants.get(participantId) ??
      (this.localParticipant?.id === participantId ? this.localParticipant : null);
    const t = p?.tracks.find((x) => x.id === trackId);
    if (t) t.muted = muted;
    this._hooks.emit('trackMuted', { participantId, identity: p?.identity ?? null, trackId, muted });
  }

  /**
   * The server's active speaker list, loudest first.
   * @param {{participant_id: string, level: number}[]} speakers
   */
  setActiveSpeakers(speakers) {
    this.activeSpeakers = speakers.map((s) => ({
      participantId: s.participant_id,
      identity: s.participant_id === this.localParticipant?.id
        ? this.localParticipant.identity
        : this.participants.get(s.participant_id)?.identity ?? null,
      level: s.level,
    }));
    this._hooks.emit('activeSpeakers', { speakers: this.activeSpeakers });
  }

  /**
   * @param {string} participantId
   * @returns {string | null}
   */
  identityOf(participantId) {
    return this.participants.get(participantId)?.identity ?? null;
  }
}

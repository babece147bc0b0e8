// Room methods that keep the view of the room: participants and their tracks as the server
// announces them, in whatever order its events arrive.

/** Mixed into Room (see sdk.js). */
export class RoomState {
  _upsertParticipant(info, announce) {
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
      if (wasPlaceholder && announce) this._emit('participantJoined', { participant: existing });
    } else {
      const p = { id: info.id, identity: info.identity, tracks, placeholder: false };
      this.participants.set(info.id, p);
      if (announce) this._emit('participantJoined', { participant: p });
      for (const t of tracks) this._emit('trackPublished', { participantId: p.id, identity: p.identity, track: t });
    }
    this._fillIdentities(info.id);
  }

  /** Fills the identity of subscribed tracks that arrived before their participant was known. */
  _fillIdentities(participantId) {
    const p = this.participants.get(participantId);
    if (!p) return;
    for (const sub of this.subscribedTracks.values()) {
      if (sub.participantId === participantId && !sub.identity) sub.identity = p.identity;
      if (sub.participantId === participantId && !sub.info) sub.info = p.tracks.find((t) => t.id === sub.trackId) ?? null;
    }
  }

  _removeParticipant(id, identity, reason) {
    const p = this.participants.get(id);
    if (p) this.participants.delete(id);
    if (this.localParticipant && id === this.localParticipant.id) return;
    this._departed.add(id);
    this._emit('participantLeft', { participantId: id, identity: identity ?? p?.identity ?? null, reason, participant: p ?? null });
  }

  _onTrackPublished(participantId, track) {
    if (!track) return;
    if (this.localParticipant && participantId === this.localParticipant.id) {
      const tracks = this.localParticipant.tracks.filter((t) => t.id !== track.id);
      tracks.push(track);
      this.localParticipant.tracks = tracks;
      this._bindLocalTrackIds();
      this._emit('localTrackPublished', { track });
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
    this._fillIdentities(participantId);
    this._emit('trackPublished', { participantId, identity: p.identity, track });
  }

  _onTrackUnpublished(participantId, trackId) {
    if (this.localParticipant && participantId === this.localParticipant.id) {
      this.localParticipant.tracks = this.localParticipant.tracks.filter((t) => t.id !== trackId);
      return;
    }
    const p = this.participants.get(participantId);
    if (p) p.tracks = p.tracks.filter((t) => t.id !== trackId);
    this._subscriptionPrefs.delete(trackId);
    this._appPrefs.delete(trackId);
    this._adaptive?.unobserve(trackId);
    this._emit('trackUnpublished', { participantId, identity: p?.identity ?? null, trackId });
  }

  _onTrackMuted(participantId, trackId, muted) {
    const p = this.participants.get(participantId) ??
      (this.localParticipant?.id === participantId ? this.localParticipant : null);
    const t = p?.tracks.find((x) => x.id === trackId);
    if (t) t.muted = muted;
    this._emit('trackMuted', { participantId, identity: p?.identity ?? null, trackId, muted });
  }
}

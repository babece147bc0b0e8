// Demo conference page: join a room with a dev token, send camera + mic, show everyone else.
import { Room, fetchDevToken } from './sdk.js';

const $ = (sel) => document.querySelector(sel);
const form = $('#join-form');
const grid = $('#grid');
const statusEl = $('#status');
const leaveBtn = $('#leave');
const errorEl = $('#join-error');
const template = $('#tile-template');

/** @type {Room | null} */
let room = null;
/** participant id -> {el, video, audio, stream, videoTrackId, name} */
const tiles = new Map();
let statsTimer = null;

// ?room=...&name=... prefill the form (handy for opening several tabs).
const params = new URLSearchParams(location.search);
$('#room').value = params.get('room') ?? $('#room').value;
$('#identity').value = params.get('name') ?? `guest-${Math.random().toString(36).slice(2, 6)}`;

function setStatus(state, text) {
  statusEl.dataset.state = state;
  statusEl.textContent = text ?? state;
}

function layerName(width) {
  if (!width) return '-';
  if (width <= 400) return 'low';
  if (width <= 800) return 'medium';
  return 'high';
}

function tileFor(participantId, name, { local = false } = {}) {
  let tile = tiles.get(participantId);
  if (tile) return tile;
  const el = template.content.firstElementChild.cloneNode(true);
  if (local) el.classList.add('local');
  el.dataset.participant = participantId;
  el.querySelector('.name').textContent = name ?? participantId;
  const stream = new MediaStream();
  const video = el.querySelector('video');
  const audio = el.querySelector('audio');
  video.srcObject = stream;
  tile = { el, video, audio, stream, videoTrackId: null, name };
  el.querySelector('.quality').addEventListener('change', (e) => {
    if (tile.videoTrackId && room) room.setSubscription(tile.videoTrackId, { layer: e.target.value });
  });
  tiles.set(participantId, tile);
  if (local) grid.prepend(el);
  else grid.append(el);
  return tile;
}

function removeTile(participantId) {
  const tile = tiles.get(participantId);
  if (!tile) return;
  tile.el.remove();
  tiles.delete(participantId);
}

function setName(participantId, name) {
  const tile = tiles.get(participantId);
  if (tile && name) {
    tile.name = name;
    tile.el.querySelector('.name').textContent = name;
  }
}

async function refreshStats() {
  if (!room) return;
  for (const tile of tiles.values()) {
    if (!tile.videoTrackId) continue;
    const s = await room.statsFor(tile.videoTrackId).catch(() => null);
    const box = tile.el.querySelector('.stats');
    if (!s) {
      box.textContent = '';
      continue;
    }
    box.textContent =
      `${s.frameWidth}x${s.frameHeight}  ${Math.round(s.framesPerSecond)} fps\n` +
      `${s.bitrateKbps} kbps  layer: ${layerName(s.frameWidth)}`;
  }
}

function wire(r) {
  r.on('participantJoined', ({ participant }) => {
    tileFor(participant.id, participant.identity);
    setName(participant.id, participant.identity);
  });
  r.on('participantLeft', ({ participantId }) => removeTile(participantId));
  r.on('trackSubscribed', ({ track, trackId, participantId, identity, kind }) => {
    const tile = tileFor(participantId, identity ?? r.participants.get(participantId)?.identity);
    tile.stream.addTrack(track);
    if (kind === 'video') {
      tile.videoTrackId = trackId;
      // Adaptive stream: on 'auto' the tile's size decides the layer; off screen, nothing comes.
      r.observeVideo(trackId, tile.video);
    }
    if (kind === 'audio') {
      tile.audio.srcObject = new MediaStream([track]);
      tile.audio.play().catch(() => {});
    }
    tile.video.play().catch(() => {});
  });
  r.on('trackUnsubscribed', ({ track, trackId, participantId }) => {
    const tile = tiles.get(participantId);
    if (!tile) return;
    tile.stream.removeTrack(track);
    if (tile.videoTrackId === trackId) {
      tile.videoTrackId = null;
      tile.el.querySelector('.stats').textContent = '';
    }
  });
  r.on('trackMuted', ({ participantId, trackId, muted }) => {
    const tile = tiles.get(participantId);
    const info = r.participants.get(participantId)?.tracks.find((t) => t.id === trackId);
    if (!tile || !info) return;
    tile.el.dataset[info.kind === 'audio' ? 'audioMuted' : 'videoMuted'] = muted ? '1' : '';
    renderBadges(tile);
  });
  r.on('streamState', ({ participantId, state, reason }) => {
    const tile = tiles.get(participantId);
    if (!tile) return;
    tile.el.dataset.streamPaused = state === 'paused' ? (reason ?? 'paused') : '';
    renderBadges(tile);
  });
  r.on('activeSpeakers', ({ speakers }) => {
    const speaking = new Set(speakers.map((s) => s.participantId));
    const first = speakers[0]?.participantId;
    for (const [id, tile] of tiles) {
      tile.el.classList.toggle('speaking', speaking.has(id));
      tile.el.classList.toggle('dominant', id === first);
    }
  });
  r.on('reconnecting', ({ attempt }) => setStatus('reconnecting', `reconnecting (attempt ${attempt})`));
  r.on('reconnected', ({ rejoined, participantId, previousParticipantId }) => {
    // Joined again (another node of a cluster): we are a new participant with the same tracks.
    const own = rejoined ? tiles.get(previousParticipantId) : null;
    if (own) {
      tiles.delete(previousParticipantId);
      tiles.set(participantId, own);
      own.el.dataset.participant = participantId;
    }
    setStatus('connected', 'connected');
  });
  r.on('disconnected', ({ reason }) => {
    setStatus('disconnected', `disconnected: ${reason}`);
    teardown();
  });
  r.on('error', ({ code, message }) => console.warn('sfu error', code, message));
}

function teardown() {
  clearInterval(statsTimer);
  statsTimer = null;
  for (const id of [...tiles.keys()]) removeTile(id);
  room = null;
  grid.hidden = true;
  form.hidden = false;
  leaveBtn.hidden = true;
  $('#room-label').textContent = '';
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  errorEl.hidden = true;
  const roomName = $('#room').value.trim();
  const identity = $('#identity').value.trim();
  setStatus('connecting', 'connecting');
  try {
    const token = await fetchDevToken(roomName, identity);
    const r = new Room(location.origin);
    wire(r);
    room = r;
    const joined = await r.join(token);
    form.hidden = true;
    grid.hidden = false;
    leaveBtn.hidden = false;
    $('#room-label').textContent = `room ${joined.room} as ${joined.participant.identity}`;
    setStatus('connected', 'connected');
    for (const p of r.participants.values()) tileFor(p.id, p.identity);
    if ($('#publish').checked) {
      const local = tileFor(joined.participant.id, `${identity} (you)`, { local: true });
      const stream = await r.publish({ video: true, audio: true, simulcast: true });
      for (const t of stream.getVideoTracks()) local.stream.addTrack(t);
      local.video.play().catch(() => {});
    }
    statsTimer = setInterval(refreshStats, 1000);
  } catch (err) {
    console.error(err);
    setStatus('disconnected', 'not connected');
    errorEl.textContent = `Could not join: ${err.message}`;
    errorEl.hidden = false;
    if (room) {
      room.leave().catch(() => {});
      teardown();
    }
  }
});

leaveBtn.addEventListener('click', async () => {
  const r = room;
  if (!r) return;
  // The page returns to the form at once; the SDK finishes telling the server in the background.
  teardown();
  setStatus('idle', 'not connected');
  await r.leave();
});

function renderBadges(tile) {
  const badges = [];
  if (tile.el.dataset.audioMuted) badges.push('mic off');
  if (tile.el.dataset.videoMuted) badges.push('camera off');
  if (tile.el.dataset.streamPaused) badges.push(`paused (${tile.el.dataset.streamPaused})`);
  tile.el.querySelector('.badges').textContent = badges.join(' · ');
}

// Installed in every test page (classic script, before the page's own scripts) as `window.T`.
// The node tests drive the SDK through these helpers with page.evaluate(() => T.something(...)).
/* global window, performance, location */
(() => {
  const EVENTS = [
    'participantJoined', 'participantLeft', 'trackPublished', 'trackUnpublished', 'trackSubscribed',
    'trackUnsubscribed', 'trackMuted', 'streamState', 'data', 'reconnecting', 'reconnected', 'disconnected', 'error',
    'signal', 'connectionStateChanged', 'dataChannelOpen', 'localTrackPublished', 'publisherLayers',
    'activeSpeakers', 'dataRefused', 'redirected', 'topologyChanged',
  ];
  let sdkPromise = null;
  const sdk = () => (sdkPromise ??= import('/sdk.js'));
  const rooms = {};
  const logs = {};
  const samplers = {};
  const tones = {};
  const videos = {};
  const apps = {};

  // Events are kept as plain JSON-able records: {type, t, ...}.
  function plain(type, d) {
    const r = { type, t: performance.now() };
    switch (type) {
      case 'signal': {
        const { sdp, ...rest } = d.message;
        return { ...r, message: rest, hasSdp: sdp !== undefined };
      }
      case 'trackSubscribed':
      case 'trackUnsubscribed':
        return { ...r, trackId: d.trackId, participantId: d.participantId, identity: d.identity, kind: d.kind, mid: d.mid,
          via: d.via ?? null, source: d.source ?? null };
      case 'topologyChanged':
        return { ...r, mode: d.mode, peers: d.peers };
      case 'participantJoined':
        return { ...r, participantId: d.participant.id, identity: d.participant.identity };
      case 'data':
        return { ...r, from: d.from, participantId: d.participantId, binary: d.binary,
          data: d.binary ? Array.from(d.data instanceof Uint8Array ? d.data : new Uint8Array(d.data)) : d.data };
      case 'error':
        return { ...r, code: d.code, message: d.message, request: d.request };
      case 'activeSpeakers':
        return { ...r, speakers: d.speakers.map((s) => ({ participantId: s.participantId, identity: s.identity, level: s.level })) };
      default: {
        const out = { ...r };
        for (const [k, v] of Object.entries(d)) {
          if (v === null || ['string', 'number', 'boolean'].includes(typeof v)) out[k] = v;
          else if (k === 'track' && v && v.id) out.track = JSON.parse(JSON.stringify(v));
        }
        return out;
      }
    }
  }

  const T = {
    rooms,
    logs,

    async token(room, identity) {
      const { fetchDevToken } = await sdk();
      return fetchDevToken(room, identity);
    },

    /**
     * Creates a Room under `key`, joins, optionally publishes; returns a summary. `url`: one
     * signaling URL or a list (default: this page's server).
     */
    async join(key, { room, identity, token, publish = false, options = {}, url }) {
      const { Room } = await sdk();
      logs[key] = [];
      // `captureLog`: the SDK's log lines of every level are kept as 'log' events (T.events).
      const { captureLog, ...roomOptions } = options;
      if (captureLog) {
        roomOptions.log = (level, ...args) => {
          const text = args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
          logs[key].push({ type: 'log', t: performance.now(), level, text });
          if (level === 'warn' || level === 'error') console[level]('[sfu]', text);
        };
      }
      const r = new Room(url ?? location.origin, roomOptions);
      rooms[key] = r;
      for (const type of EVENTS) r.addEventListener(type, (e) => logs[key].push(plain(type, e.detail ?? {})));
      const t0 = performance.now();
      const joined = await r.join(token ?? (await T.token(room, identity)));
      const joinedAt = performance.now();
      if (publish) await r.publish(publish === true ? {} : publish);
      return {
        participantId: joined.participant.id,
        sessionToken: joined.session_token,
        departureTimeoutMs: joined.departure_timeout_ms,
        others: joined.participants.map((p) => p.identity),
        roomSid: joined.room_sid ?? null,
        url: r.url,
        redirects: r.redirects,
        joinMs: joinedAt - t0,
        t0,
      };
    },

    room(key) {
      const r = rooms[key];
      if (!r) throw new Error(`no room '${key}'`);
      return r;
    },

    /** Where `key` is now: its URL, room sid, participant id, state and whom it sees, by identity. */
    where(key) {
      const r = T.room(key);
      return {
        url: r.url, roomSid: r.roomSid, participantId: r.localParticipant?.id ?? null, state: r.state,
        redirects: r.redirects, others: [...r.participants.values()].map((p) => p.identity).sort(),
      };
    },

    events(key, type) {
      return (logs[key] ?? []).filter((e) => !type || e.type === type);
    },

    /** Raw server messages of one type that `key` received. */
    messages(key, type) {
      return T.events(key, 'signal').map((e) => e.message).filter((m) => !type || m.type === type);
    },

    /** The subscribed tracks of `key`, optionally only those of `kind`. */
    tracks(key, kind) {
      return [...T.room(key).subscribedTracks.values()]
        .filter((s) => !kind || s.kind === kind)
        .map((s) => ({ trackId: s.trackId, participantId: s.participantId, identity: s.identity, kind: s.kind, mid: s.mid }));
    },

    /** Stats of the first subscribed track of `kind` (or of `trackId`); null when there is none. */
    async stats(key, kind = 'video', trackId) {
      const r = T.room(key);
      const id = trackId ?? T.tracks(key, kind)[0]?.trackId;
      if (!id) return null;
      const s = await r.statsFor(id);
      return s && { ...s, trackId: id, t: performance.now() };
    },

    pcState(key) {
      const r = T.room(key);
      const one = (pc) => pc && {
        connectionState: pc.connectionState,
        iceConnectionState: pc.iceConnectionState,
        signalingState: pc.signalingState,
        transceivers: pc.getTransceivers().map((t) => ({
          mid: t.mid, direction: t.direction, currentDirection: t.currentDirection, stopped: t.stopped,
          kind: t.receiver.track?.kind,
        })),
      };
      return { state: r.state, publisher: one(r.publisherPc), subscriber: one(r.subscriberPc) };
    },

    /** Samples framesDecoded/frameWidth of one video track every `intervalMs` until stopped. */
    startSampler(key, trackId, intervalMs = 200) {
      T.stopSampler(key);
      const samples = [];
      const timer = setInterval(async () => {
        try {
          const s = await T.room(key).statsFor(trackId);
          if (s) {
            const { framesDecoded, frameWidth, packetsReceived, packetsLost, framesReceived, framesDropped, nackCount, pliCount } = s;
            samples.push({ t: performance.now(), framesDecoded, frameWidth, packetsReceived, packetsLost, framesReceived, framesDropped, nackCount, pliCount });
          }
        } catch {}
      }, intervalMs);
      samplers[key] = { timer, samples };
    },

    stopSampler(key) {
      const s = samplers[key];
      if (!s) return [];
      clearInterval(s.timer);
      delete samplers[key];
      return s.samples;
    },

    /**
     * Publishes a synthetic microphone for `key`: a 440 Hz tone whose loudness `setTone` changes
     * (0 = silence), so a test decides who is speaking.
     */
    async publishTone(key, gain) {
      const ctx = new AudioContext();
      await ctx.resume();
      const osc = ctx.createOscillator();
      osc.frequency.value = 440;
      const amp = ctx.createGain();
      amp.gain.value = gain;
      const out = ctx.createMediaStreamDestination();
      osc.connect(amp).connect(out);
      osc.start();
      tones[key] = amp;
      await T.room(key).publish({ stream: out.stream, video: false, audio: true });
    },

    /** Shows a subscribed video in a <video> of `width`x`height` CSS pixels and lets the SDK follow its size. */
    attachVideo(key, trackId, width, height) {
      const el = document.createElement('video');
      el.muted = true;
      el.autoplay = true;
      el.style.cssText = `display:block;width:${width}px;height:${height}px`;
      el.srcObject = T.room(key).getTrack(trackId).stream;
      document.body.prepend(el);
      videos[key] = el;
      T.room(key).observeVideo(trackId, el);
    },

    resizeVideo(key, width, height) {
      videos[key].style.width = `${width}px`;
      videos[key].style.height = `${height}px`;
    },

    setVideoShown(key, shown) {
      videos[key].style.display = shown ? 'block' : 'none';
    },

    setTone(key, gain) {
      tones[key].gain.value = gain;
    },

    samples(key) {
      return samplers[key]?.samples ?? [];
    },

    /**
     * For a late joiner: polls every 20 ms until the first video frame is decoded; returns the times
     * (page clock, ms) of the subscriber pc reaching 'connected' and of the first decoded frame.
     */
    async firstFrame(key, timeoutMs = 30_000) {
      const r = T.room(key);
      const deadline = performance.now() + timeoutMs;
      while (performance.now() < deadline) {
        const id = T.tracks(key, 'video')[0]?.trackId;
        if (id) {
          const s = await r.statsFor(id);
          if (s && s.framesDecoded > 0) {
            const tFrame = performance.now();
            const connected = T.events(key, 'connectionStateChanged')
              .find((e) => e.role === 'subscriber' && e.state === 'connected');
            return { tFrame, tConnected: connected?.t ?? null, width: s.frameWidth };
          }
        }
        await new Promise((res) => setTimeout(res, 20));
      }
      return null;
    },

    /**
     * A minimal app for mesh rooms: each remote participant's video in its own <video>, pointed at
     * the new stream on every 'trackSubscribed' (how the SDK moves a track between the mesh and
     * the SFU), and followed by adaptive stream (observeVideo). Every 100 ms it samples the framesDecoded of the receiver the element shows; it
     * also notes each frame the element presents (requestVideoFrameCallback).
     */
    showRemoteVideos(key) {
      const r = T.room(key);
      const app = (apps[key] = { shown: {}, samples: [], timer: null });
      const attach = (d) => {
        if (d.kind !== 'video') return;
        let v = app.shown[d.participantId];
        if (!v) {
          const el = document.createElement('video');
          el.muted = true;
          el.autoplay = true;
          el.style.cssText = 'display:block;width:320px;height:180px';
          document.body.append(el);
          v = app.shown[d.participantId] = { el, receiver: null, via: null, moves: [], frames: [], observed: null };
          const onFrame = () => { v.frames.push(performance.now()); el.requestVideoFrameCallback(onFrame); };
          el.requestVideoFrameCallback(onFrame);
        }
        v.el.srcObject = d.stream;
        v.el.play().catch(() => {});
        // As a real app would: the SFU sends the layer that fits the element (adaptive stream).
        if (d.trackId && v.observed !== d.trackId) {
          v.observed = d.trackId;
          r.observeVideo(d.trackId, v.el);
        }
        v.receiver = d.receiver ?? d.transceiver?.receiver ?? null;
        v.via = d.via ?? 'sfu';
        v.moves.push({ t: performance.now(), via: v.via });
      };
      r.addEventListener('trackSubscribed', (e) => attach(e.detail));
      for (const t of r.remoteTracks) attach(t);
      app.timer = setInterval(async () => {
        const t = performance.now();
        for (const [pid, v] of Object.entries(app.shown)) {
          const { receiver, via } = v; // as shown now: a move during the await must not mix them up
          if (!receiver) continue;
          let decoded = null;
          try {
            (await receiver.getStats()).forEach((s) => {
              if (s.type === 'inbound-rtp' && s.kind === 'video') decoded = (decoded ?? 0) + (s.framesDecoded ?? 0);
            });
          } catch {}
          app.samples.push({ t, pid, via, receiver, decoded });
        }
      }, 100);
    },

    /** What the app of `key` shows for each participant: {via, moves, frames presented, framesDecoded}. */
    async shownVideos(key) {
      const out = {};
      for (const [pid, v] of Object.entries(apps[key]?.shown ?? {})) {
        let decoded = 0;
        try {
          (await v.receiver?.getStats())?.forEach((s) => { if (s.type === 'inbound-rtp') decoded += s.framesDecoded ?? 0; });
        } catch {}
        out[pid] = { via: v.via, moves: v.moves, presented: v.frames.length, decoded };
      }
      return out;
    },

    /**
     * The longest time, per remote participant, in which the video `key` shows decoded no new
     * frame (100 ms samples of whatever receiver was shown; a move to a receiver that already
     * decodes counts as progress), and the longest time between presented frames; from `from` to `to`.
     */
    videoGaps(key, from = 0, to = Infinity) {
      const app = apps[key];
      const out = {};
      for (const pid of Object.keys(app.shown)) {
        const samples = app.samples.filter((s) => s.pid === pid && s.t >= from && s.t <= to && s.decoded !== null);
        const last = new Map();
        let lastRise = samples[0]?.t ?? from;
        let worst = { ms: 0, at: null };
        for (const s of samples) {
          const before = last.get(s.receiver);
          const rose = before === undefined ? s.decoded > 0 : s.decoded > before;
          last.set(s.receiver, s.decoded);
          if (rose) {
            if (s.t - lastRise > worst.ms) worst = { ms: s.t - lastRise, at: lastRise };
            lastRise = s.t;
          }
        }
        const end = samples.at(-1)?.t ?? from;
        if (end - lastRise > worst.ms) worst = { ms: end - lastRise, at: lastRise };
        const frames = app.shown[pid].frames.filter((t) => t >= from && t <= to);
        let presentedGap = 0;
        for (let i = 1; i < frames.length; i++) presentedGap = Math.max(presentedGap, frames[i] - frames[i - 1]);
        const around = samples.filter((s) => worst.at !== null && s.t >= worst.at - 300 && s.t <= worst.at + worst.ms + 300)
          .map((s) => [Math.round(s.t), s.via, s.decoded]);
        out[pid] = { decodeGapMs: Math.round(worst.ms), gapAt: worst.at, presentedGapMs: Math.round(presentedGap),
          presented: frames.length, samples: samples.length, around };
      }
      return out;
    },

    /** Bytes our publisher connection has sent to the server, per kind (RTP payload and headers). */
    async publisherBytesSent(key) {
      const out = { audio: 0, video: 0 };
      (await T.room(key).publisherPc.getStats()).forEach((s) => {
        if (s.type === 'outbound-rtp') out[s.kind] += (s.bytesSent ?? 0) + (s.headerBytesSent ?? 0);
      });
      return out;
    },

    /** Publishes raw media straight into /whip and returns {status, location, contentType}. */
    async whipPublish(key, { room, identity, token }) {
      const stream = await navigator.mediaDevices.getUserMedia({
        video: { width: 1280, height: 720, frameRate: 30 }, audio: true,
      });
      const pc = new RTCPeerConnection();
      pc.addTransceiver(stream.getVideoTracks()[0], {
        direction: 'sendonly',
        streams: [stream],
        sendEncodings: [
          { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
          { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
          { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
        ],
      });
      pc.addTransceiver(stream.getAudioTracks()[0], { direction: 'sendonly', streams: [stream] });
      const sender = pc.getSenders().find((x) => x.track.kind === 'video');
      const params = sender.getParameters();
      params.degradationPreference = 'maintain-resolution'; // layers keep 320/640/1280 on a busy machine
      await sender.setParameters(params);
      return T._whipLike(key, pc, `/whip/${encodeURIComponent(room)}`, token ?? (await T.token(room, identity)));
    },

    /** Plays one participant's media from /whep at `layer`. */
    /** With `connect: false` the answer is never applied: the server's connection never comes up. */
    async whepPlay(key, { room, publisher, layer, token, connect = true }) {
      const pc = new RTCPeerConnection();
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      const q = layer ? `?layer=${encodeURIComponent(layer)}` : '';
      return T._whipLike(key, pc, `/whep/${encodeURIComponent(room)}/${encodeURIComponent(publisher)}${q}`, token, connect);
    },

    async _whipLike(key, pc, path, token, connect = true) {
      rooms[key] = { pc };
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      // Non-trickle: wait (bounded) for gathering so the offer carries our candidates.
      await new Promise((resolve) => {
        if (pc.iceGatheringState === 'complete') return resolve();
        const t = setTimeout(resolve, 3000);
        pc.addEventListener('icegatheringstatechange', () => {
          if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
        });
      });
      const url = new URL(path, location.origin);
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${token}` },
        body: pc.localDescription.sdp,
      });
      const body = await res.text();
      const loc = res.headers.get('Location');
      const out = { status: res.status, location: loc, contentType: res.headers.get('Content-Type'), body: res.ok ? '' : body };
      if (res.status === 201) {
        rooms[key].resource = new URL(loc, url).toString();
        if (connect) await pc.setRemoteDescription({ type: 'answer', sdp: body });
      }
      return out;
    },

    async rawStats(key, kind = 'video') {
      const pc = rooms[key].pc;
      const report = await pc.getStats();
      let best = null;
      report.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === kind && (!best || s.bytesReceived > best.bytesReceived)) best = s;
      });
      return best && {
        frameWidth: best.frameWidth ?? 0, frameHeight: best.frameHeight ?? 0, framesDecoded: best.framesDecoded ?? 0,
        packetsReceived: best.packetsReceived ?? 0, bytesReceived: best.bytesReceived ?? 0,
        connectionState: pc.connectionState,
      };
    },

    /** Widths of the simulcast layers a raw (WHIP) pc is encoding at >= `minFps` frames/s. */
    async rawLiveLayers(key, minFps = 20) {
      const widths = [];
      (await rooms[key].pc.getStats()).forEach((s) => {
        if (s.type === 'outbound-rtp' && s.kind === 'video' && (s.framesPerSecond ?? 0) >= minFps) widths.push(s.frameWidth);
      });
      return widths;
    },

    rawState(key) {
      const pc = rooms[key].pc;
      return { connectionState: pc.connectionState, iceConnectionState: pc.iceConnectionState };
    },

    /** DELETEs the WHIP/WHEP resource and closes the pc; returns the HTTP status. */
    async rawDelete(key, token) {
      const { pc, resource } = rooms[key];
      const headers = token ? { Authorization: `Bearer ${token}` } : {};
      const res = await fetch(resource, { method: 'DELETE', headers });
      pc.close();
      return res.status;
    },
  };

  window.T = T;
})();

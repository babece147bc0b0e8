// Installed in every page of benches/topologies.mjs (classic script, before the page's own) as
// `window.P`, beside the e2e helpers (`T`). It measures what the topology table needs, the same
// way whatever carries the media:
// - bytes: every RTCPeerConnection the page makes is remembered (the SFU's two, or one per mesh
//   peer), and bytes() sums their transports' bytesSent/bytesReceived;
// - latency: an audio onset method. The probe page publishes a WebAudio tone gated on in short
//   bursts; every page runs the same onset detector (an AudioWorklet) on the probe's signal: the
//   probe on its own signal before it is encoded, the others on the remote track as played out.
//   Both stamp an onset on the shared clock (performance.timeOrigin + performance.now(), one
//   machine), so receive - send is the mouth-to-ear delay, and the detector's own delay cancels.
/* global window, performance, document, AudioContext, MediaStream, AudioWorkletNode, Blob, URL */
(() => {
  const pcs = [];
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      pcs.push(this);
    }
  };

  // Onset: a sample above `threshold` after at least `quietMs` below it. Posts the context time.
  const WORKLET = `
    class Onset extends AudioWorkletProcessor {
      constructor(o) {
        super();
        this.threshold = o.processorOptions.threshold;
        this.quietNeeded = Math.round(o.processorOptions.quietMs * sampleRate / 1000);
        this.quiet = 0;
        this.peak = 0;
      }
      process(inputs) {
        const ch = inputs[0] && inputs[0][0];
        if (!ch) return true;
        for (let i = 0; i < ch.length; i++) {
          const v = Math.abs(ch[i]);
          if (v > this.peak) this.peak = v;
          if (v > this.threshold) {
            if (this.quiet >= this.quietNeeded) this.port.postMessage({ t: currentTime + i / sampleRate });
            this.quiet = 0;
          } else {
            this.quiet++;
          }
        }
        return true;
      }
    }
    registerProcessor('onset', Onset);`;
  const THRESHOLD = 0.1;
  const QUIET_MS = 250;
  const TONE_HZ = 1000;

  let ctx = null;
  let burstGain = null;
  const detectors = new Map(); // track id -> {label, onsets, node, el}
  const sendOnsets = [];

  async function audio() {
    if (ctx) return ctx;
    ctx = new AudioContext({ sampleRate: 48000 });
    await ctx.resume();
    const url = URL.createObjectURL(new Blob([WORKLET], { type: 'application/javascript' }));
    await ctx.audioWorklet.addModule(url);
    return ctx;
  }

  /** Wall-clock ms (shared by every page on the machine) of context time `t`. */
  function wallOf(t) {
    const ts = ctx.getOutputTimestamp();
    const perf = ts.performanceTime > 0
      ? ts.performanceTime + (t - ts.contextTime) * 1000
      : performance.now() - (ctx.currentTime - t) * 1000;
    return performance.timeOrigin + perf;
  }

  /** An onset detector fed by `source`, whose onsets go to `into` ({t, at}: wall-clock ms). */
  function detector(source, into) {
    const node = new AudioWorkletNode(ctx, 'onset', { processorOptions: { threshold: THRESHOLD, quietMs: QUIET_MS } });
    // Also when the message arrived: a cross-check of the clock mapping (it adds the message's delay).
    node.port.onmessage = (e) => into.push({ t: wallOf(e.data.t), at: performance.timeOrigin + performance.now() });
    const sink = ctx.createGain();
    sink.gain.value = 0; // pulled by the destination, heard by nobody
    source.connect(node).connect(sink).connect(ctx.destination);
    return node;
  }

  const P = {
    pcs,

    /**
     * The page's media to publish: the fake camera's video and a WebAudio tone. The probe's tone
     * is silent between bursts (startBursts) and watched by a local detector; the others' is a
     * steady quiet tone (below the detector's threshold), so every page sends a live microphone.
     */
    async stream({ probe, video, checkDelayMs = 0 }) {
      await audio();
      const osc = ctx.createOscillator();
      osc.frequency.value = probe ? TONE_HZ : 300 + 50 * Math.floor(Math.random() * 8);
      const gain = ctx.createGain();
      gain.gain.value = probe ? 0 : 0.02;
      const dest = ctx.createMediaStreamDestination();
      osc.connect(gain);
      if (checkDelayMs > 0) {
        // A known delay after the send detector's tap: the measured latency must grow by it.
        const delay = ctx.createDelay(1);
        delay.delayTime.value = checkDelayMs / 1000;
        gain.connect(delay).connect(dest);
      } else {
        gain.connect(dest);
      }
      osc.start();
      if (probe) {
        burstGain = gain;
        detector(gain, sendOnsets);
      }
      const tracks = [...dest.stream.getAudioTracks()];
      if (video) {
        const cam = await navigator.mediaDevices.getUserMedia({ video: video === true ? { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } } : video });
        tracks.unshift(...cam.getVideoTracks());
      }
      return new MediaStream(tracks);
    },

    /** Gates the probe's tone on for `onMs` every `periodMs`, `count` times, from 200 ms on. */
    startBursts(count, periodMs, onMs = 150) {
      const g = burstGain.gain;
      const t0 = ctx.currentTime + 0.2;
      for (let i = 0; i < count; i++) {
        const t = t0 + (i * periodMs) / 1000;
        g.setValueAtTime(0.5, t);
        g.setValueAtTime(0, t + onMs / 1000);
      }
      return { until: wallOf(t0 + (count * periodMs) / 1000) };
    },

    sendOnsets() {
      return sendOnsets.slice();
    },

    /**
     * Every 250 ms: puts a detector on each new remote audio track that `match` accepts (by the
     * sender's identity; null: every audio track, e.g. the one mixed track of an MCU), and asks
     * for `layer` on each new SFU video track. A remote track must play in a (muted) element for
     * WebAudio to see its samples.
     */
    async watch(key, { identity, layer }) {
      await audio();
      const asked = new Set();
      const scan = () => {
        let room;
        try { room = T.room(key); } catch { return; }
        const tracks = [...room.subscribedTracks.values(), ...(room.remoteTracks ?? [])];
        for (const s of tracks) {
          if (s.kind === 'audio' && (identity === null || s.identity === identity) && s.track && !detectors.has(s.track.id)) {
            const el = document.createElement('audio');
            el.muted = true;
            el.autoplay = true;
            el.srcObject = new MediaStream([s.track]);
            document.body.append(el);
            el.play().catch(() => {});
            const onsets = [];
            const node = detector(ctx.createMediaStreamSource(new MediaStream([s.track])), onsets);
            detectors.set(s.track.id, { label: `${s.identity ?? '?'}${s.via ? `/${s.via}` : ''}`, onsets, node, el });
          }
          if (layer && s.kind === 'video' && s.trackId && !s.via && !asked.has(s.trackId)) {
            asked.add(s.trackId);
            room.setSubscription(s.trackId, { layer });
          }
        }
      };
      scan();
      setInterval(scan, 250);
    },

    /** Onsets seen on each watched remote track: [{label, onsets}]. */
    receiveOnsets() {
      return [...detectors.values()].map((d) => ({ label: d.label, onsets: d.onsets.slice() }));
    },

    /**
     * Remote video tracks the page receives packets on (any connection), and how many decode
     * (the simulated participants' video is VP8-shaped filler: received, never decoded).
     */
    async videoIn() {
      let tracks = 0;
      let receiving = 0;
      let decoding = 0;
      for (const pc of pcs) {
        if (pc.connectionState === 'closed') continue;
        (await pc.getStats()).forEach((s) => {
          if (s.type === 'inbound-rtp' && s.kind === 'video') {
            tracks++;
            if ((s.packetsReceived ?? 0) > 0) receiving++;
            if ((s.framesDecoded ?? 0) > 0) decoding++;
          }
        });
      }
      // The SFU video tracks subscribed that have received nothing: whose, and which track.
      const silent = [];
      let room = null;
      try { room = T.room('k'); } catch {}
      for (const sub of room?.subscribedTracks.values() ?? []) {
        if (sub.kind !== 'video') continue;
        let packets = 0;
        (await sub.transceiver.receiver.getStats()).forEach((s) => { if (s.type === 'inbound-rtp') packets += s.packetsReceived ?? 0; });
        if (packets === 0) silent.push(`${sub.identity ?? sub.participantId}/${sub.trackId}/mid ${sub.transceiver.mid}`);
      }
      return { tracks, receiving, decoding, silent };
    },

    /**
     * Counters of every open connection, keyed so two snapshots can be subtracted: per pc its
     * transports' bytes, outbound RTP per kind and rid, inbound RTP per kind, the audio jitter
     * buffer, and the selected pair's candidate types.
     */
    async counters() {
      const out = { t: performance.timeOrigin + performance.now(), pcs: [] };
      for (const [i, pc] of pcs.entries()) {
        if (pc.connectionState === 'closed') continue;
        const report = await pc.getStats();
        const byId = new Map();
        report.forEach((s) => byId.set(s.id, s));
        const one = { i, sent: 0, recv: 0, outbound: {}, inbound: { audio: 0, video: 0, audioStreams: 0, videoStreams: 0 }, jb: { delay: 0, emitted: 0 }, pair: null };
        report.forEach((s) => {
          if (s.type === 'transport') {
            one.sent += s.bytesSent ?? 0;
            one.recv += s.bytesReceived ?? 0;
            const pair = byId.get(s.selectedCandidatePairId);
            const local = pair && byId.get(pair.localCandidateId);
            if (local) one.pair = { type: local.candidateType, protocol: local.protocol, relayProtocol: local.relayProtocol ?? null };
          } else if (s.type === 'outbound-rtp') {
            const k = `${s.kind}:${s.rid ?? ''}:${s.ssrc}`;
            one.outbound[k] = { kind: s.kind, rid: s.rid ?? null, bytes: (s.bytesSent ?? 0) + (s.headerBytesSent ?? 0), width: s.frameWidth ?? null, fps: s.framesPerSecond ?? null };
          } else if (s.type === 'inbound-rtp') {
            one.inbound[s.kind] += (s.bytesReceived ?? 0) + (s.headerBytesReceived ?? 0);
            if ((s.packetsReceived ?? 0) > 0) one.inbound[`${s.kind}Streams`]++;
            if (s.kind === 'audio') {
              one.jb.delay += s.jitterBufferDelay ?? 0;
              one.jb.emitted += s.jitterBufferEmittedCount ?? 0;
            }
          }
        });
        out.pcs.push(one);
      }
      return out;
    },
  };

  window.P = P;
})();

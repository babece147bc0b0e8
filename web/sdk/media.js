// @ts-check
// Helpers around RTCPeerConnection media: codec preference and receive statistics.

/**
 * Puts codec `name` (e.g. 'vp8') first in `transceiver`'s preferences; `warn` gets any failure.
 * @param {RTCRtpTransceiver} transceiver
 * @param {string} name
 * @param {(message: string) => void} warn
 */
export function preferCodec(transceiver, name, warn) {
  if (!transceiver.setCodecPreferences || !RTCRtpSender.getCapabilities) return;
  const caps = RTCRtpSender.getCapabilities('video');
  if (!caps) return;
  const want = `video/${name}`.toLowerCase();
  const first = caps.codecs.filter((c) => c.mimeType.toLowerCase() === want);
  if (!first.length) return;
  const rest = caps.codecs.filter((c) => c.mimeType.toLowerCase() !== want);
  try {
    transceiver.setCodecPreferences([...first, ...rest]);
  } catch (e) {
    warn(e.message);
  }
}

/**
 * Receive statistics of one track, as Room.statsFor gives them.
 * @typedef {object} InboundStats
 * @property {string} kind
 * @property {number} frameWidth
 * @property {number} frameHeight
 * @property {number} framesDecoded
 * @property {number} framesPerSecond
 * @property {number} bytesReceived
 * @property {number} packetsReceived
 * @property {number} packetsLost
 * @property {number} framesReceived
 * @property {number} framesDropped
 * @property {number} nackCount
 * @property {number} pliCount
 * @property {number} bitrateKbps
 */

/**
 * Summarizes the inbound-rtp entry of a receiver's stats `report` (the one with the most bytes).
 * `previous` (track id -> {bytes, t}) carries byte counts between calls for the bitrate.
 * @param {RTCStatsReport} report
 * @param {string} kind
 * @param {string} trackId
 * @param {Map<string, {bytes: number, t: number}>} previous
 * @returns {InboundStats | null}
 */
export function inboundStats(report, kind, trackId, previous) {
  /** @type {any} an inbound-rtp entry (RTCInboundRtpStreamStats, some fields browser-specific) */
  let inbound = null;
  report.forEach((/** @type {any} */ s) => {
    if (s.type !== 'inbound-rtp') return;
    if (!inbound || (s.bytesReceived ?? 0) > (inbound.bytesReceived ?? 0)) inbound = s;
  });
  if (!inbound) return null;
  const now = performance.now();
  const bytes = inbound.bytesReceived ?? 0;
  const prev = previous.get(trackId);
  let bitrateKbps = 0;
  if (prev && now > prev.t && bytes >= prev.bytes) bitrateKbps = ((bytes - prev.bytes) * 8) / (now - prev.t);
  if (!prev || now - prev.t >= 500) previous.set(trackId, { bytes, t: now });
  return {
    kind: inbound.kind ?? kind,
    frameWidth: inbound.frameWidth ?? 0,
    frameHeight: inbound.frameHeight ?? 0,
    framesDecoded: inbound.framesDecoded ?? 0,
    framesPerSecond: inbound.framesPerSecond ?? 0,
    bytesReceived: bytes,
    packetsReceived: inbound.packetsReceived ?? 0,
    packetsLost: inbound.packetsLost ?? 0,
    framesReceived: inbound.framesReceived ?? 0,
    framesDropped: inbound.framesDropped ?? 0,
    nackCount: inbound.nackCount ?? 0,
    pliCount: inbound.pliCount ?? 0,
    bitrateKbps: Math.round(bitrateKbps),
  };
}

// Readings shared by the ingress-path tests (r-multihomed, s-forged-stun, t-lossy-uplink): server
// counters that a binary may or may not have, SRTP replay refusals, and the layers a publishing
// browser encodes.

import { readFileSync } from 'node:fs';
import { poll } from './server.mjs';

/**
 * The sum of a counter's series on `/metrics` whose labels include every string in `labels`, or
 * null when the binary does not export the metric at all (an older server).
 */
export async function metricOrNull(httpUrl, name, labels = []) {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  const series = text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  if (series.length === 0) return null;
  return series.filter((l) => labels.every((want) => l.includes(want)))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

/** Like metricOrNull, but 0 for a metric the server does not export. */
export async function metric(httpUrl, name, labels = []) {
  return (await metricOrNull(httpUrl, name, labels)) ?? 0;
}

// The rtc stack logs an SRTP packet its replay window refuses as
// "SrtpHandler.handle_read got error: srtp ssrc=.. index=..: duplicated" at warn level.
const REPLAY_LINE = /WARN.*(duplicated|replay)/i;

/** Lines of a log file (colours stripped) that match `pattern`. */
export function logLines(logFile, pattern) {
  let text = '';
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {}
  return text.split('\n').map((l) => l.replace(/\x1b\[[0-9;]*m/g, '')).filter((l) => pattern.test(l));
}

/** Lines of the server log that report an SRTP replay refusal. */
export function replayLogLines(logFile) {
  return logLines(logFile, REPLAY_LINE);
}

/** The server's peer connections that went Disconnected or Failed, as "<direction> <state>". */
export function lostConnections(logFile) {
  return logLines(logFile, /peer connection state .*state=(Disconnected|Failed)/)
    .map((l) => `${/direction=(\w+)/.exec(l)?.[1]} ${/state=(\w+)/.exec(l)?.[1]}`);
}

/**
 * SRTP replay refusals so far: the server's `sfu_ingress_rejected_total{reason="srtp_replay"}`
 * when it has that metric, else the count of warnings in its log. Returns {count, source, logged}.
 */
export async function replayRefusals(server) {
  const logged = replayLogLines(server.logFile).length;
  const counted = await metricOrNull(server.httpUrl, 'sfu_ingress_rejected_total', ['reason="srtp_replay"']);
  return counted === null ? { count: logged, source: 'log', logged } : { count: counted, source: 'metric', logged };
}

/**
 * The publishing pc's video encodings, one per rid ({rid, width, framesEncoded, fps, retransmitted,
 * ...}); `key` names the SDK room or the raw (WHIP) pc in the page.
 */
export async function publisherOutbound(page, key = 'p') {
  return page.evaluate(async (k) => {
    const pc = T.rooms[k].publisherPc ?? T.rooms[k].pc;
    const out = [];
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video') {
        out.push({
          rid: s.rid ?? null, width: s.frameWidth ?? 0, framesEncoded: s.framesEncoded ?? 0,
          fps: s.framesPerSecond ?? 0, retransmitted: s.retransmittedPacketsSent ?? 0,
          packetsSent: s.packetsSent ?? 0, nacks: s.nackCount ?? 0, limit: s.qualityLimitationReason,
        });
      }
    });
    return out;
  }, key);
}

/**
 * Polls the publishing page until every width in `widths` is encoded with framesEncoded rising
 * between two polls; returns ms from `since` (Date.now() clock), or null after `timeoutMs`.
 */
export async function waitEncodedWidths(page, widths, { key = 'p', since = Date.now(), timeoutMs = 30_000 } = {}) {
  let previous = new Map();
  let last = [];
  try {
    await poll(async () => {
      last = await publisherOutbound(page, key);
      const live = last.filter((l) => l.framesEncoded > (previous.get(l.rid) ?? Infinity)).map((l) => l.width);
      previous = new Map(last.map((l) => [l.rid, l.framesEncoded]));
      return widths.every((w) => live.includes(w));
    }, { timeoutMs, intervalMs: 250, what: `encoding ${widths.join('+')}` });
    return Date.now() - since;
  } catch {
    console.log(`  publisher never encoded ${widths.join('+')} within ${timeoutMs} ms; last seen ${JSON.stringify(last)}`);
    return null;
  }
}

/**
 * Collects failed checks so a test reports every one of them, not only the first:
 * `check(ok, message)` for each, then `checks.assertAll()`.
 */
export function checks() {
  const failed = [];
  const check = (ok, message) => {
    if (!ok) failed.push(message);
  };
  check.assertAll = () => {
    if (failed.length) throw new Error(`${failed.length} check(s) failed:\n  - ${failed.join('\n  - ')}`);
  };
  return check;
}

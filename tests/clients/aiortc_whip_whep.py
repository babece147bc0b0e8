#!/usr/bin/env python3
"""A WHIP publisher and a WHEP viewer, both aiortc (a non-browser WebRTC stack), against the server.

The publisher sends a synthetic VP8 video track (a moving pattern) and, unless --no-audio, a silent
Opus track; the viewer plays that participant with ?layer=auto and decodes what it receives. After
--duration seconds of viewing, one JSON document goes to stdout (and to --json if given):

  events:  every connectionstatechange / iceconnectionstatechange of both peers, with the time in
           seconds since the script started (t) and the wall clock in ms (wall_ms)
  viewer:  frames decoded (video), audio frames, the longest gap between decoded video frames,
           decoded frames per second of the run, and per kind the inbound RTP packets received and
           lost (getStats, and per SSRC so an RTX stream is told apart from the media stream)
  publisher: packets sent and the loss the server's receiver reports tell

aiortc never offers a loopback candidate: the server must listen on another address.
"""

import argparse
import asyncio
import fractions
import json
import sys
import time
import urllib.error
import urllib.request

import av
from aiortc import (
    AudioStreamTrack,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
    VideoStreamTrack,
)

START = time.monotonic()


def now_s() -> float:
    return round(time.monotonic() - START, 3)


class PatternTrack(VideoStreamTrack):
    """Diagonal bars that move one step per frame: every frame differs, so the encoder keeps sending."""

    def __init__(self, width: int, height: int, fps: int) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self.count = 0
        ramp = bytes((i * 4) & 0xFF for i in range(256))
        self.luma = ramp * ((width + height) // 256 + 2)
        self.chroma_u = bytes([96]) * ((width // 2) * (height // 2))
        self.chroma_v = bytes([160]) * ((width // 2) * (height // 2))

    async def recv(self) -> av.VideoFrame:
        # Paced at `fps`, not VideoStreamTrack's fixed 30.
        if self.count:
            await asyncio.sleep(max(0.0, self._start + self.count / self.fps - time.time()))
        else:
            self._start = time.time()
        pts = self.count * (90000 // self.fps)
        shift = self.count * 3
        self.count += 1
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        y, u, v = frame.planes
        rows = []
        for row in range(self.height):
            start = (row + shift) % 256
            line = self.luma[start : start + self.width]
            rows.append(line + bytes(y.line_size - self.width))
        y.update(b"".join(rows))
        u.update(pad_plane(self.chroma_u, self.width // 2, self.height // 2, u.line_size))
        v.update(pad_plane(self.chroma_v, self.width // 2, self.height // 2, v.line_size))
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, 90000)
        return frame


def pad_plane(data: bytes, width: int, height: int, line_size: int) -> bytes:
    if line_size == width:
        return data
    pad = bytes(line_size - width)
    return b"".join(data[r * width : (r + 1) * width] + pad for r in range(height))


def prefer_vp8(transceiver) -> None:
    caps = RTCRtpSender.getCapabilities("video")
    codecs = [c for c in caps.codecs if c.mimeType.lower() in ("video/vp8", "video/rtx")]
    transceiver.setCodecPreferences(codecs)


def watch_states(pc: RTCPeerConnection, peer: str, events: list) -> None:
    def record(kind: str, value: str) -> None:
        events.append({"t": now_s(), "wall_ms": int(time.time() * 1000), "peer": peer, "kind": kind, "state": value})

    @pc.on("connectionstatechange")
    def _conn() -> None:
        record("connectionState", pc.connectionState)

    @pc.on("iceconnectionstatechange")
    def _ice() -> None:
        record("iceConnectionState", pc.iceConnectionState)


def http(method: str, url: str, token: str, body: str | None = None, timeout: float = 15.0):
    req = urllib.request.Request(url, method=method, data=body.encode() if body is not None else None)
    req.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        req.add_header("Content-Type", "application/sdp")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return res.status, res.headers.get("Location"), res.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, None, e.read().decode(errors="replace")


async def negotiate(pc: RTCPeerConnection, url: str, token: str) -> str:
    """Posts the offer (all candidates gathered: no trickle) and applies the answer; returns the Location."""
    await pc.setLocalDescription(await pc.createOffer())
    status, location, answer = await asyncio.to_thread(http, "POST", url, token, pc.localDescription.sdp)
    if status != 201:
        raise RuntimeError(f"POST {url}: HTTP {status}: {answer.strip()[:300]}")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return location


async def wait_state(pc: RTCPeerConnection, state: str, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while pc.connectionState != state:
        if pc.connectionState in ("failed", "closed") or time.monotonic() > deadline:
            raise RuntimeError(f"{what}: connectionState {pc.connectionState}, waited for {state}")
        await asyncio.sleep(0.1)


async def inbound_stats(pc: RTCPeerConnection) -> dict:
    """Per kind: getStats' inbound-rtp, plus each SSRC's counters (aiortc's getStats reports one
    entry per receiver, so a seen RTX stream can hide the media stream's figures)."""
    out = {}
    for transceiver in pc.getTransceivers():
        receiver = transceiver.receiver
        kind = transceiver.kind
        report = await receiver.getStats()
        entry = {"getStats": None, "streams": []}
        for s in report.values():
            if s.type == "inbound-rtp":
                entry["getStats"] = {"ssrc": s.ssrc, "packetsReceived": s.packetsReceived, "packetsLost": s.packetsLost}
        rtx_of = getattr(receiver, "_RTCRtpReceiver__rtx_ssrc", {})
        for ssrc, stream in getattr(receiver, "_RTCRtpReceiver__remote_streams", {}).items():
            entry["streams"].append({
                "ssrc": ssrc,
                "rtx": ssrc in rtx_of,
                "packetsReceived": stream.packets_received,
                "packetsExpected": stream.packets_expected,
                "packetsLost": stream.packets_lost,
            })
        media = [s for s in entry["streams"] if not s["rtx"]]
        entry["packetsReceived"] = sum(s["packetsReceived"] for s in media)
        entry["packetsLost"] = sum(s["packetsLost"] for s in media)
        entry["rtxPacketsReceived"] = sum(s["packetsReceived"] for s in entry["streams"] if s["rtx"])
        out[kind] = entry
    return out


async def outbound_stats(pc: RTCPeerConnection) -> dict:
    out = {}
    for transceiver in pc.getTransceivers():
        report = await transceiver.sender.getStats()
        entry = {}
        for s in report.values():
            if s.type == "outbound-rtp":
                entry["packetsSent"] = s.packetsSent
            elif s.type == "remote-inbound-rtp":
                entry["remotePacketsLost"] = s.packetsLost
        out[transceiver.kind] = entry
    return out


class Sink:
    """Pulls decoded frames off a remote track, noting when each video frame came."""

    def __init__(self) -> None:
        self.video_times: list[float] = []
        self.audio_frames = 0
        self.sizes: set = set()
        self.tasks: list[asyncio.Task] = []

    def attach(self, track) -> None:
        self.tasks.append(asyncio.ensure_future(self._pull(track)))

    async def _pull(self, track) -> None:
        while True:
            try:
                frame = await track.recv()
            except Exception:
                return
            if track.kind == "video":
                self.video_times.append(time.monotonic() - START)
                self.sizes.add(f"{frame.width}x{frame.height}")
            else:
                self.audio_frames += 1

    def summary(self, since: float, until: float) -> dict:
        """Frames from `since` (the viewer connected) to `until`; gaps and per-second counts run
        from the first frame, whose delay is reported on its own."""
        times = [t for t in self.video_times if since <= t <= until]
        out = {
            "videoFrames": len(times),
            "firstFrameAfterS": round(times[0] - since, 3) if times else None,
            "frameSizes": sorted(self.sizes),
            "audioFrames": self.audio_frames,
        }
        if times:
            gaps = [b - a for a, b in zip(times, times[1:])] + [until - times[-1]]  # a stall at the end counts too
            per_second = [0] * int(until - times[0])  # whole seconds only
            for t in times:
                if int(t - times[0]) < len(per_second):
                    per_second[int(t - times[0])] += 1
            out["maxFrameGapMs"] = round(max(gaps) * 1000)
            out["framesPerSecond"] = per_second
        return out

    def first_video_frame(self) -> bool:
        return bool(self.video_times)


def phase(name: str) -> None:
    """A line on stderr for a driver that samples the server between phases."""
    print(json.dumps({"phase": name, "t": now_s(), "wall_ms": int(time.time() * 1000)}), file=sys.stderr, flush=True)


async def run(args) -> dict:
    events: list = []
    result: dict = {"events": events, "args": {k: v for k, v in vars(args).items() if "token" not in k}}
    base = args.url.rstrip("/")

    pub = RTCPeerConnection()
    watch_states(pub, "publisher", events)
    video = pub.addTransceiver(PatternTrack(args.width, args.height, args.fps), direction="sendonly")
    prefer_vp8(video)
    if args.audio:
        pub.addTransceiver(AudioStreamTrack(), direction="sendonly")
    viewer = RTCPeerConnection()
    watch_states(viewer, "viewer", events)
    sink = Sink()
    viewer.on("track", sink.attach)
    pub_location = view_location = None
    try:
        pub_location = await negotiate(pub, f"{base}/whip/{args.room}", args.whip_token)
        await wait_state(pub, "connected", args.connect_timeout, "WHIP publisher")

        prefer_vp8(viewer.addTransceiver("video", direction="recvonly"))
        if args.audio:
            viewer.addTransceiver("audio", direction="recvonly")
        view_started = now_s()
        view_location = await negotiate(viewer, f"{base}/whep/{args.room}/{args.identity}?layer=auto", args.whep_token)
        await wait_state(viewer, "connected", args.connect_timeout, "WHEP viewer")
        connected = now_s()
        deadline = time.monotonic() + args.connect_timeout
        while not sink.first_video_frame() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        phase("viewing")

        timeline = []
        end = time.monotonic() + args.duration
        while time.monotonic() < end:
            await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
            stats = await inbound_stats(viewer)
            timeline.append({"t": now_s(), **{k: {"received": v["packetsReceived"], "lost": v["packetsLost"]} for k, v in stats.items()}})
        until = now_s()
        phase("ending")
        result["viewer"] = {
            "startedAtS": view_started,
            "connectedAtS": connected,
            "endedAtS": until,
            **sink.summary(connected, until),
            "inbound": await inbound_stats(viewer),
            "timeline": timeline,
        }
        result["publisher"] = {"framesGenerated": video.sender.track.count, "outbound": await outbound_stats(pub)}
        result["ok"] = True
    except Exception as e:  # reported in the JSON, with whatever was seen before
        result["ok"] = False
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        for location, token in ((view_location, args.whep_token), (pub_location, args.whip_token)):
            if location:
                status, _, _ = await asyncio.to_thread(http, "DELETE", base + location, token)
                result.setdefault("deletes", []).append(status)
        await viewer.close()
        await pub.close()
        for task in sink.tasks:
            task.cancel()
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="the server's HTTP base, e.g. http://10.88.0.1:7880")
    p.add_argument("--room", required=True)
    p.add_argument("--identity", required=True, help="the WHIP publisher's identity (its token's)")
    p.add_argument("--whip-token", required=True)
    p.add_argument("--whep-token", required=True)
    p.add_argument("--duration", type=float, default=30.0, help="seconds of viewing")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--no-audio", dest="audio", action="store_false")
    p.add_argument("--connect-timeout", type=float, default=30.0)
    p.add_argument("--json", help="also write the result here")
    args = p.parse_args()
    result = asyncio.run(asyncio.wait_for(run(args), args.duration + 3 * args.connect_timeout + 30))
    text = json.dumps(result)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())

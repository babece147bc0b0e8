//! SDP as the shard accepts it: a publisher's offer (WHIP or the `offer` message), a viewer's
//! offer (WHEP), and trickled candidates, each of any text.

use arbitrary::Unstructured;
use sfu_proto::{IceCandidate, LayerInfo, ParticipantId, Rid, TrackDescription, TrackSource};
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};
use tokio::sync::oneshot;

use crate::ConnId;
use crate::shard::command::{Command, Reply};
use crate::shard::core::{ShardCore, ShardSettings};

fn ask<T>(core: &mut ShardCore, now: Instant, make: impl FnOnce(Reply<T>) -> Command) -> Option<T> {
    let (reply, mut answer) = oneshot::channel();
    core.handle_command(make(reply), now);
    while core.settle(now) {
        core.transmits().drain();
    }
    core.transmits().drain();
    answer.try_recv().expect("the core answers a request in the call that handles it").ok()
}

/// The tracks a client says its offer carries: a simulcast camera and a microphone, at mids
/// the input may or may not have.
fn described(u: &mut Unstructured<'_>) -> Vec<TrackDescription> {
    let layers =
        ["q", "h", "f"].into_iter().map(|rid| LayerInfo { rid: Rid(rid.into()), width: 320, height: 180 }).collect();
    let mid = |u: &mut Unstructured<'_>, default: &str| {
        u.arbitrary::<Option<String>>().ok().flatten().unwrap_or_else(|| default.to_owned())
    };
    vec![
        TrackDescription { mid: mid(u, "0"), source: TrackSource::Camera, name: "camera".into(), layers },
        TrackDescription { mid: mid(u, "1"), source: TrackSource::Microphone, name: "mic".into(), layers: vec![] },
    ]
}

/// The first byte says which offer the rest is; after an accepted offer, the input's lines
/// are trickled to it as candidates.
pub fn sdp_offer(data: &[u8]) {
    let Some((&kind, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let (sdp, trickle) = text.split_once("\n--\n").unwrap_or((&text, ""));
    let mut u = Unstructured::new(trickle.as_bytes());
    let now = Instant::now();
    let announce = SocketAddr::from(([127, 0, 0, 1], 7882));
    let settings = ShardSettings {
        index: 0,
        announce,
        tcp_announce: None,
        estimate_bandwidth: true,
        dynacast: true,
        shards: 1,
        relay_rtcp_ssrc: 1,
    };
    let mut core = ShardCore::new(settings, now, SystemTime::now());
    let conn = ConnId::new(0, 1);
    let owner = ParticipantId("PA_fuzz".into());
    let sdp = sdp.replace('\n', "\r\n");
    let accepted = if kind % 2 == 0 {
        let tracks = described(&mut u);
        let answer = ask(&mut core, now, |reply| Command::PublisherOffer { conn, owner, sdp, tracks, reply });
        answer.is_some()
    } else {
        let answer = ask(&mut core, now, |reply| Command::EgressOffer { conn, owner, sdp, tracks: vec![], reply });
        answer.is_some()
    };
    if !accepted {
        return;
    }
    for line in trickle.lines().take(16) {
        let candidate = IceCandidate {
            candidate: line.to_owned(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: None,
            username_fragment: None,
        };
        let _ = ask(&mut core, now, |reply| Command::RemoteCandidate { conn, candidate, reply });
    }
    core.handle_command(Command::Close { conn }, now);
    while core.settle(now) {
        core.transmits().drain();
    }
}

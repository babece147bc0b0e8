//! Nodes joined by links, set up as their control planes would: both ends of a link opened with
//! mirrored keys, a track received on one node (`AddRelayTrack`) and sent from the other
//! (`AddRelayOut`) to where the first said.

use crate::api::PublishedTrack;
use crate::relay::{LinkId, LinkSpec, RelayEndpoint, RelayTrack, RelayTrackSpec, SrtpKeyMaterial};
use crate::shard::command::Command;
use std::sync::Arc;

use super::harness::Net;
use super::relay_glue::RelayGlue;
use super::session::{Publisher, track_id};

/// The link of most scenarios.
pub(crate) const LINK: LinkId = LinkId(7);

/// Key material made of one byte.
pub(crate) fn keys(byte: u8) -> SrtpKeyMaterial {
    SrtpKeyMaterial { key: [byte; 16], salt: [byte.wrapping_add(1); 12] }
}

impl Net {
    /// How `shard` looks to the other nodes.
    pub fn relay_endpoint(&self, shard: usize) -> RelayEndpoint {
        RelayEndpoint { media: self.shards[shard].addr, rtcp_ssrc: 0x5000 + shard as u32 }
    }

    /// Opens `link` on every shard of one node, whose peer node has `peer_shards`.
    pub fn open_link_on(
        &mut self,
        link: LinkId,
        shards: &[usize],
        peer_shards: &[usize],
        out: SrtpKeyMaterial,
        r#in: SrtpKeyMaterial,
    ) {
        let spec = Arc::new(LinkSpec {
            link,
            peer: format!("node-of-{}", peer_shards.first().copied().unwrap_or(0)),
            srtp_out: out,
            srtp_in: r#in,
            peer_shards: peer_shards.iter().map(|&s| self.relay_endpoint(s)).collect(),
        });
        for &shard in shards {
            self.tell(shard, Command::OpenLink(spec.clone()));
        }
    }

    /// Opens `link` between two nodes: `a` seals with `a_to_b`, `b` with `b_to_a`.
    pub fn link_nodes(
        &mut self,
        link: LinkId,
        a: &[usize],
        b: &[usize],
        a_to_b: SrtpKeyMaterial,
        b_to_a: SrtpKeyMaterial,
    ) {
        self.open_link_on(link, a, b, a_to_b.clone(), b_to_a.clone());
        self.open_link_on(link, b, a, b_to_a, a_to_b);
    }

    /// Closes `link` on these shards.
    pub fn close_link_on(&mut self, link: LinkId, shards: &[usize]) {
        for &shard in shards {
            self.tell(shard, Command::CloseLink(link));
        }
    }

    /// Receives `publisher`'s tracks on shard `receiver` (of another node) over `link`, and has
    /// the publisher's shard send them there. Returns the camera's relay track, and the
    /// publisher as subscribers on the receiving node see it (its tracks are relay tracks).
    pub fn relay(
        &mut self,
        link: LinkId,
        publisher: &Publisher,
        publisher_shard: usize,
        receiver: usize,
    ) -> (RelayTrack, Publisher) {
        let video = self.relay_track(link, &publisher.video, publisher, publisher_shard, receiver);
        let audio = publisher.audio.as_ref().map(|audio| {
            let relayed = self.relay_track(link, audio, publisher, publisher_shard, receiver);
            PublishedTrack { key: relayed.key, ..audio.clone() }
        });
        let remote = Publisher {
            client: publisher.client,
            conn: publisher.conn,
            owner: publisher.owner.clone(),
            video: PublishedTrack { key: video.key, ..publisher.video.clone() },
            audio,
        };
        (video, remote)
    }

    fn relay_track(
        &mut self,
        link: LinkId,
        track: &PublishedTrack,
        publisher: &Publisher,
        publisher_shard: usize,
        receiver: usize,
    ) -> RelayTrack {
        let relayed = self.receive_relay_track(link, track, publisher, receiver);
        let (key, dest, ssrcs) = (track.key, relayed.dest, relayed.ssrcs.clone());
        self.ask(publisher_shard, |reply| Command::AddRelayOut { key, link, dest, ssrcs, reply })
            .expect("the publisher's shard sends the track over the link");
        let glue = RelayGlue { link, key, publisher_shard, relay_key: relayed.key, receiver_shard: receiver };
        self.relay_glue.push(glue);
        relayed
    }

    /// Only the receiving end of [`Self::relay`].
    pub fn receive_relay_track(
        &mut self,
        link: LinkId,
        track: &PublishedTrack,
        publisher: &Publisher,
        receiver: usize,
    ) -> RelayTrack {
        let spec = Box::new(RelayTrackSpec {
            track_id: track_id(track.key),
            publisher: publisher.owner.clone(),
            kind: track.kind,
            mime: track.mime.clone(),
            clock_rate: track.clock_rate,
            layers: track.layers.clone(),
            source: sfu_proto::TrackSource::Camera,
        });
        self.ask(receiver, |reply| Command::AddRelayTrack { link, spec, reply }).expect("the link is open there")
    }
}

//! Two nodes joined by a link under arbitrary sequences of what a peer node (or anyone who can
//! reach the shard sockets) and the control planes do: RTP sealed with the link's key on any
//! SSRC with any header and payload, sealed NACKs and PLIs for anything, raw datagrams from a
//! peer's address, layer demands and layer reports, subscription changes, outs removed, the
//! link closed and lossy. Real ICE, DTLS and SRTP clients publish on one node and subscribe on
//! the other. At the end everyone leaves and the link closes, and no shard may hold anything of
//! any of them.

use arbitrary::Unstructured;
use bytes::Bytes;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
use sfu_core::LayerSet;
use sfu_proto::LayerPreference;
use std::time::Duration;

use crate::relay::{LinkSpec, RelayTrack};
use crate::send_batch::SendBatch;
use crate::shard::command::Command;
use crate::shard::core::tests::harness::{Net, Options};
use crate::shard::core::tests::relay::{LINK, keys};
use crate::shard::core::tests::session::{Publisher, Subscriber, wanting};
use crate::shard::relay::Link;

const A: usize = 0;
const B: usize = 1;
const MAX_OPS: usize = 32;
const MAX_RUN: Duration = Duration::from_millis(800);
const MAX_VIRTUAL_TIME: Duration = Duration::from_secs(8);

struct Cluster {
    net: Net,
    alice: Publisher,
    remote: Publisher,
    bob: Subscriber,
    track: RelayTrack,
    /// Seal as A's shard does (to B), and as B's shard does (to A).
    as_a: Link,
    as_b: Link,
    link_open: bool,
}

pub fn relay_sequence(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut net = Net::nodes(&[1, 1], Options { estimate_bandwidth: true, dynacast: true, ..Options::default() });
    net.link_nodes(LINK, &[A], &[B], keys(1), keys(2));
    let alice = net.publish_with_audio(A, "alice");
    let (track, remote) = net.relay(LINK, &alice, A, B);
    let bob = net.subscribe(B, "bob", &remote);
    let side = |out: u8, r#in: u8| {
        let spec =
            LinkSpec { link: LINK, peer: "fuzz".into(), srtp_out: keys(out), srtp_in: keys(r#in), peer_shards: vec![] };
        Link::new(&spec, 0).expect("keys of the right size")
    };
    let (as_a, as_b) = (side(1, 2), side(2, 1));
    let mut cluster = Cluster { net, alice, remote, bob, track, as_a, as_b, link_open: true };
    let start = cluster.net.now;
    for _ in 0..MAX_OPS {
        if u.is_empty() || cluster.net.now - start > MAX_VIRTUAL_TIME || cluster.step(&mut u).is_err() {
            break;
        }
    }
    cluster.everyone_leaves();
}

fn layers(u: &mut Unstructured<'_>) -> arbitrary::Result<LayerSet> {
    let bits: u8 = u.arbitrary()?;
    Ok((0..8).filter(|layer| bits & (1 << layer) != 0).collect())
}

impl Cluster {
    fn step(&mut self, u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
        let (a, b) = (self.net.shards[A].addr, self.net.shards[B].addr);
        match u.int_in_range(0..=10u8)? {
            0 => self.net.run_for(Duration::from_millis(u.int_in_range(1..=MAX_RUN.as_millis() as u64)?)),
            1 => {
                // What A's shard could send: any header and payload, on a relay SSRC or not.
                let ssrc = match u.ratio(1, 8)? {
                    true => u.arbitrary()?,
                    false => *u.choose(&self.track.ssrcs)?,
                };
                let header = rtc::rtp::header::Header {
                    version: 2,
                    padding: u.arbitrary()?,
                    marker: u.arbitrary()?,
                    payload_type: u.int_in_range(0..=127)?,
                    sequence_number: u.arbitrary()?,
                    timestamp: u.arbitrary()?,
                    ssrc,
                    ..Default::default()
                };
                let packet = rtc::rtp::Packet { header, payload: Bytes::from(u.arbitrary::<Vec<u8>>()?) };
                let mut batch = SendBatch::default();
                if self.as_a.seal_rtp(&packet, b, &mut batch).is_ok() {
                    for (to, datagram) in batch.drain() {
                        self.net.inject(a, to, datagram);
                    }
                }
            }
            2 => {
                // What B's shard could ask: NACKs and PLIs about any SSRC.
                let sender_ssrc = self.net.relay_endpoint(B).rtcp_ssrc;
                let media_ssrc = match u.ratio(1, 8)? {
                    true => u.arbitrary()?,
                    false => *u.choose(&self.track.ssrcs)?,
                };
                let packet: Box<dyn rtc::rtcp::Packet> = match u.arbitrary()? {
                    true => Box::new(PictureLossIndication { sender_ssrc, media_ssrc }),
                    false => {
                        let count = u.int_in_range(1..=8)?;
                        let nacks = (0..count)
                            .map(|_| Ok(NackPair { packet_id: u.arbitrary()?, lost_packets: u.arbitrary()? }))
                            .collect::<arbitrary::Result<Vec<_>>>()?;
                        Box::new(TransportLayerNack { sender_ssrc, media_ssrc, nacks })
                    }
                };
                if let Ok(sealed) = self.as_b.seal_rtcp(&[packet]) {
                    self.net.inject(b, a, sealed);
                }
            }
            3 => {
                let (from, to) = if u.arbitrary()? { (a, b) } else { (b, a) };
                self.net.inject(from, to, Bytes::from(u.arbitrary::<Vec<u8>>()?));
            }
            4 => {
                let key = self.remote.key();
                let mut settings = wanting(key);
                settings.layer = *u.choose(&[LayerPreference::Low, LayerPreference::High, LayerPreference::Auto])?;
                settings.paused = u.ratio(1, 4)?;
                self.net.set_subscription(B, self.bob.conn, key, settings);
            }
            5 => {
                let (layer, sending) = (u.int_in_range(0..=2)?, u.arbitrary()?);
                self.net.client_mut(self.alice.client).set_sending(layer, sending);
            }
            6 => {
                let command = Command::SetRelayLayers {
                    key: self.alice.key(),
                    link: LINK,
                    used: layers(u)?,
                    wanted: u.arbitrary()?,
                };
                self.net.tell(A, command);
            }
            7 => self.net.tell(B, Command::RelayLayersActive { key: self.remote.key(), layers: layers(u)? }),
            8 => self.net.tell(A, Command::RemoveRelayOut { key: self.alice.key(), link: LINK }),
            9 if u.ratio(1, 4)? => {
                self.link_open = false;
                self.net.close_link_on(LINK, &[A, B]);
            }
            10 => {
                let per_mille = u.int_in_range(0..=300)?;
                self.net.set_path_loss(a, b, per_mille);
                self.net.set_path_loss(b, a, per_mille);
            }
            _ => {}
        }
        Ok(())
    }

    /// Everyone leaves, the relay tracks go and the link closes: a second later no shard knows
    /// any of them.
    fn everyone_leaves(mut self) {
        self.net.close(A, self.alice.conn);
        self.net.close(B, self.bob.conn);
        let relay_keys = [Some(self.remote.key()), self.remote.audio.as_ref().map(|t| t.key)];
        for key in relay_keys.into_iter().flatten() {
            self.net.tell(B, Command::RemoveRelayTrack { key });
        }
        if self.link_open {
            self.net.close_link_on(LINK, &[A, B]);
        }
        self.net.run_for(Duration::from_secs(1));
        for shard in [A, B] {
            let core = self.net.core(shard);
            let traces = core.traces_of_link(LINK);
            assert!(traces.is_empty(), "shard {shard} still holds {traces:?} of the link");
            for conn in [self.alice.conn, self.bob.conn] {
                let traces = core.traces_of(conn);
                assert!(traces.is_empty(), "shard {shard} still holds {conn:?} in {traces:?}");
            }
            let keys = [Some(self.alice.key()), self.alice.audio.as_ref().map(|t| t.key)];
            for key in keys.into_iter().chain(relay_keys).flatten() {
                let traces = core.traces_of_track(key);
                assert!(traces.is_empty(), "shard {shard} still holds track {key:?} in {traces:?}");
            }
        }
    }
}

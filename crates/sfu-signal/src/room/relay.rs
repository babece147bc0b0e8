//! Media between nodes, control side (docs/cluster.md, "The relay"). A node with subscribers of
//! a track published on another node receives it once over their link, as a relay track its
//! subscribers subscribe to like any other; it asks the origin with `Subscribe`, which adds one
//! relay out for that link. Which layers cross follows the receiving node's use
//! (`RelayDemand` here, `LinkLayers` there); which exist follows the publisher (`LayersActive`).

use sfu_cluster::NodeId;
use sfu_cluster::mesh::{LinkKeys, PeerMessage, ShardEndpoint};
use sfu_core::LayerSet;
use sfu_proto::{ParticipantId, RoomId, TrackId};
use sfu_transport::{LinkId, LinkSpec, RelayEndpoint, RelayTrackSpec, SrtpKeyMaterial, TrackKey};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use super::{Hub, MediaControl, Room};

impl<M: MediaControl> Hub<M> {
    /// A link to `node` came up: every shard gets its keys.
    pub fn open_link(&self, node: &NodeId, keys: &LinkKeys, shards: &[ShardEndpoint]) {
        let link = LinkId(self.next_link.fetch_add(1, Ordering::Relaxed));
        let material = |k: &sfu_cluster::mesh::SrtpKey| SrtpKeyMaterial { key: *k.key(), salt: *k.salt() };
        let spec = LinkSpec {
            link,
            peer: node.to_string(),
            srtp_out: material(&keys.srtp_out),
            srtp_in: material(&keys.srtp_in),
            peer_shards: shards.iter().map(|s| RelayEndpoint { media: s.media_addr, rtcp_ssrc: s.rtcp_ssrc }).collect(),
        };
        self.media.open_link(spec);
        if let Some(old) = self.links.lock().insert(node.clone(), link) {
            self.media.close_link(old);
        }
    }

    /// The link to `node` is gone with its relay tracks and outs (the rooms forget them as the
    /// node's participants leave).
    pub fn close_link(&self, node: &NodeId) {
        if let Some(link) = self.links.lock().remove(node) {
            self.media.close_link(link);
        }
    }

    fn link_to(&self, node: &NodeId) -> Option<LinkId> {
        self.links.lock().get(node).copied()
    }

    /// Receives a remote participant's track over its node's link, unless it already is or
    /// nobody here subscribes; returns its key here.
    pub(super) async fn relay_in(
        &self,
        room: &mut Room,
        publisher: &ParticipantId,
        track: &TrackId,
    ) -> Option<TrackKey> {
        let member = room.remote.get(publisher)?;
        let remote = member.tracks.iter().find(|t| &t.info.id == track)?;
        if let Some(key) = remote.relay {
            return Some(key);
        }
        if !room.participants.values().any(|p| p.subscribes()) || remote.clock_rate == 0 {
            return None;
        }
        let node = member.node.clone();
        let link = self.link_to(&node)?;
        let spec = RelayTrackSpec {
            track_id: remote.info.id.clone(),
            publisher: publisher.clone(),
            kind: remote.info.kind,
            mime: remote.mime.clone(),
            clock_rate: remote.clock_rate,
            layers: remote.info.layers.clone(),
            source: remote.info.source,
        };
        let muted = remote.info.muted;
        let relay = match self.media.add_relay_track(link, spec).await {
            Ok(relay) => relay,
            Err(e) => {
                tracing::warn!(room = %room.id.escaped(), %track, %node, error = %e, "relay track refused");
                return None;
            }
        };
        let slot = room.remote.get_mut(publisher)?.tracks.iter_mut().find(|t| &t.info.id == track)?;
        slot.relay = Some(relay.key);
        if muted {
            self.media.set_muted(relay.key, true);
        }
        let subscribe = PeerMessage::Subscribe {
            room: room.id.clone(),
            track: track.clone(),
            dest: relay.dest,
            ssrcs: relay.ssrcs,
        };
        self.cluster_send(&node, subscribe);
        tracing::info!(room = %room.id.escaped(), %track, %node, key = ?relay.key, "relaying a remote track here");
        Some(relay.key)
    }

    /// Relays a remote track here if anyone subscribes, and subscribes every local subscriber.
    pub(super) async fn subscribe_remote(&self, room: &mut Room, publisher: &ParticipantId, track: &TrackId) {
        if self.relay_in(room, publisher, track).await.is_none() {
            return;
        }
        let Some(entry) =
            room.remote.get(publisher).and_then(|m| m.tracks.iter().find(|t| &t.info.id == track)?.entry())
        else {
            return;
        };
        let subscribers: Vec<ParticipantId> =
            room.participants.values().filter(|s| s.subscribes()).map(|s| s.id.clone()).collect();
        for subscriber in &subscribers {
            self.subscribe(room, subscriber, publisher, &entry).await;
        }
        for subscriber in subscribers {
            self.negotiate(room, &subscriber).await;
        }
    }

    /// Every remote track, relayed here if need be, for one (new) local subscriber; negotiation
    /// is the caller's.
    pub(super) async fn subscribe_to_remote(&self, room: &mut Room, subscriber: &ParticipantId) {
        let tracks: Vec<(ParticipantId, TrackId)> =
            room.remote.values().flat_map(|m| m.tracks.iter().map(|t| (m.id().clone(), t.info.id.clone()))).collect();
        for (publisher, track) in tracks {
            if self.relay_in(room, &publisher, &track).await.is_none() {
                continue;
            }
            let entry = room.remote.get(&publisher).and_then(|m| m.tracks.iter().find(|t| t.info.id == track)?.entry());
            if let Some(entry) = entry {
                self.subscribe(room, subscriber, &publisher, &entry).await;
            }
        }
    }

    /// Stops receiving relay tracks (their publisher or its node left, or the room closed
    /// here), telling the origin when it still serves them.
    pub(super) fn drop_relays(&self, room: &RoomId, node: &NodeId, relays: &[(TrackId, TrackKey)], tell_origin: bool) {
        for (track, key) in relays {
            self.media.remove_relay_track(*key);
            if tell_origin {
                self.cluster_send(node, PeerMessage::Unsubscribe { room: room.clone(), track: track.clone() });
            }
        }
    }

    /// The origin's side of `Subscribe`: one relay out of a local track for that link.
    pub(super) async fn on_subscribe(
        &self,
        room: &mut Room,
        from: &NodeId,
        track: &TrackId,
        dest: SocketAddr,
        ssrcs: Vec<u32>,
    ) {
        let Some((_, entry)) = room.track(track).map(|(p, t)| (p.id.clone(), t.clone())) else { return };
        let Some(link) = self.link_to(from) else { return };
        match self.media.add_relay_out(entry.key, link, dest, ssrcs).await {
            Ok(()) => {
                room.relayed_to.entry(track.clone()).or_default().insert(from.clone());
                tracing::info!(room = %room.id.escaped(), %track, node = %from, "relaying a track to a peer");
            }
            Err(e) => tracing::warn!(room = %room.id.escaped(), %track, node = %from, error = %e, "relay out refused"),
        }
    }

    pub(super) fn on_unsubscribe(&self, room: &mut Room, from: &NodeId, track: &TrackId) {
        let Some(key) = room.track(track).map(|(_, t)| t.key) else { return };
        if let Some(link) = self.link_to(from) {
            self.media.remove_relay_out(key, link);
        }
        if let Some(nodes) = room.relayed_to.get_mut(track) {
            nodes.remove(from);
        }
    }

    pub(super) fn on_link_layers(&self, room: &Room, from: &NodeId, track: &TrackId, used: &[u8], wanted: Option<u8>) {
        let (Some((_, entry)), Some(link)) = (room.track(track), self.link_to(from)) else { return };
        self.media.set_relay_layers(entry.key, link, used.iter().copied().collect(), wanted);
    }

    pub(super) fn on_layers_active(&self, room: &Room, from: &NodeId, track: &TrackId, layers: &[u8]) {
        let relay = room
            .remote
            .values()
            .filter(|m| &m.node == from)
            .find_map(|m| m.tracks.iter().find(|t| &t.info.id == track).and_then(|t| t.relay));
        if let Some(key) = relay {
            self.media.relay_layers_active(key, layers.iter().copied().collect());
        }
    }

    /// A relay track's demand here changed: tell its origin which layers to send.
    pub async fn on_relay_demand(&self, key: TrackKey, used: LayerSet, wanted: Option<u8>) {
        for room_ref in self.all_rooms() {
            let room = room_ref.lock().await;
            let found = room.remote.values().find_map(|m| {
                let t = m.tracks.iter().find(|t| t.relay == Some(key))?;
                Some((m.node.clone(), t.info.id.clone()))
            });
            if let Some((node, track)) = found {
                let used = layer_list(used);
                self.cluster_send(&node, PeerMessage::LinkLayers { room: room.id.clone(), track, used, wanted });
                return;
            }
        }
    }

    /// A local track's active layers changed: tell the nodes it is relayed to.
    pub async fn on_layers_active_here(&self, key: TrackKey, layers: LayerSet) {
        for room_ref in self.all_rooms() {
            let room = room_ref.lock().await;
            let Some((_, entry)) = room.track_by_key(key) else { continue };
            let Some(nodes) = room.relayed_to.get(&entry.info.id) else { return };
            let message = PeerMessage::LayersActive {
                room: room.id.clone(),
                track: entry.info.id.clone(),
                layers: layer_list(layers),
            };
            for node in nodes {
                self.cluster_send(node, message.clone());
            }
            return;
        }
    }
}

fn layer_list(set: LayerSet) -> Vec<u8> {
    (0..8u8).filter(|l| set.contains(*l)).collect()
}

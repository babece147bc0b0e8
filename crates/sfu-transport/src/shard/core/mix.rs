//! Room mixes on this shard (docs/topologies.md, "Mixing on the server"). A mix is a published
//! audio track whose source is the mixer: listeners on any shard subscribe to it as to any
//! track. Its inputs, the speakers' audio tracks, reach this shard as they would reach a
//! subscriber here (`Downstream`, then `Forward`); every 20 ms the mix's frame is handed on like
//! a publisher's packet, carrying the mix-minus payloads that the speakers' down tracks pick.

use sfu_core::{LayerOrder, PacketMeta};
use sfu_proto::{ParticipantId, TrackKind};
use std::sync::Arc;
use std::time::Instant;

use super::ShardCore;
use crate::shard::command::Command;
use crate::shard::mix::RoomMix;
use crate::shard::published::{MediaPacket, Published, Source};
use crate::{MediaError, TrackKey};

impl ShardCore {
    /// A new room mix on this shard: its track's key, which listeners subscribe to.
    pub(super) fn add_mix(&mut self, now: Instant) -> Result<TrackKey, MediaError> {
        let key = TrackKey::new(self.index, self.next_track_serial);
        let mix = RoomMix::new(rand::random(), now).map_err(|e| MediaError::AudioMixUnavailable(e.to_string()))?;
        self.next_track_serial += 1;
        let published = Published::new(
            Source::Mixer,
            TrackKind::Audio,
            "audio/opus",
            LayerOrder::new(Vec::<(String, Option<(u16, u16)>)>::new()),
        );
        self.published.insert(key, published);
        self.mixes.insert(key, mix);
        tracing::info!(shard = self.index, ?key, "room mix added");
        Ok(key)
    }

    /// The mix `key` ends: its inputs are let go (its subscriptions go as the control plane
    /// removes them).
    pub(super) fn remove_mix(&mut self, key: TrackKey, now: Instant) {
        let Some(mix) = self.mixes.remove(&key) else { return };
        for input in mix.input_keys().collect::<Vec<_>>() {
            self.mix_inputs.remove(&input);
            self.send_to_shard(
                input.shard(),
                Command::Downstream { key: input, shard: self.index, attach: false },
                now,
            );
        }
        self.forget_published(key);
    }

    /// `input`, `speaker`'s audio track, is mixed into `mix` from now on.
    pub(super) fn add_mix_input(
        &mut self,
        mix: TrackKey,
        input: TrackKey,
        speaker: ParticipantId,
        now: Instant,
    ) -> Result<(), MediaError> {
        let room_mix = self.mixes.get_mut(&mix).ok_or(MediaError::NoTrack)?;
        if self.mix_inputs.contains_key(&input) {
            return Ok(());
        }
        room_mix.add_input(input, speaker).map_err(|e| MediaError::AudioMixUnavailable(e.to_string()))?;
        self.mix_inputs.insert(input, mix);
        // This shard now takes the track's packets, as for a subscriber here.
        self.send_to_shard(input.shard(), Command::Downstream { key: input, shard: self.index, attach: true }, now);
        Ok(())
    }

    /// `input` is no longer mixed into `mix` (its speaker left or unpublished).
    pub(super) fn remove_mix_input(&mut self, mix: TrackKey, input: TrackKey, now: Instant) {
        let Some(room_mix) = self.mixes.get_mut(&mix) else { return };
        if room_mix.remove_input(input) {
            self.mix_inputs.remove(&input);
            self.send_to_shard(
                input.shard(),
                Command::Downstream { key: input, shard: self.index, attach: false },
                now,
            );
        }
    }

    /// A packet of a track some mix here takes (before any local subscribers' fan-out).
    pub(super) fn feed_mix(&mut self, packet: &MediaPacket, now: Instant) {
        let Some(mix) = self.mix_inputs.get(&packet.key).copied() else { return };
        let Some(room_mix) = self.mixes.get_mut(&mix) else { return };
        if packet.meta.padding_only {
            return;
        }
        room_mix.on_packet(packet.key, packet.meta.timestamp, &packet.payload, now);
    }

    /// When the next mixed frame is due, if this shard mixes.
    pub(super) fn next_mix_tick(&self) -> Option<Instant> {
        self.mixes.values().map(|m| m.next_tick).min()
    }

    /// Makes every mix's frames due by `now` and hands them on to the mix's listeners.
    pub(super) fn run_mixes(&mut self, now: Instant) {
        let keys: Vec<TrackKey> = self.mixes.iter().filter(|(_, m)| m.next_tick <= now).map(|(key, _)| *key).collect();
        for key in keys {
            let Some(room_mix) = self.mixes.get_mut(&key) else { continue };
            let ssrc = room_mix.ssrc;
            let before = room_mix.undecodable;
            let frames = room_mix.tick(now);
            self.metrics.mix_undecodable.increment(room_mix.undecodable - before);
            for frame in frames {
                if let Some(published) = self.published.get_mut(&key) {
                    published.activity.on_packet(0, now);
                }
                self.metrics.mix_frames.increment(1);
                let media = Arc::new(MediaPacket {
                    key,
                    meta: PacketMeta {
                        layer: 0,
                        ssrc,
                        seq: frame.seq,
                        timestamp: frame.timestamp,
                        marker: frame.marker,
                        keyframe: false,
                        padding_only: false,
                        vp8: None,
                    },
                    payload: frame.all,
                    arrived: now,
                    mix_minus: frame.minus,
                });
                self.distribute(media, now);
            }
        }
    }
}

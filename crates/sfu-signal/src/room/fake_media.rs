//! A media plane for room tests: no sockets, no shards. It records every request in order and
//! answers with canned SDP. A publisher offer is read just far enough to know its tracks: each
//! `m=audio` / `m=video` section with a nonzero port and an `a=mid` is a track, and a mid missing
//! from (or stopped in) a later offer is a removed track.

use bytes::Bytes;
use parking_lot::Mutex;
use sfu_proto::{IceCandidate, ParticipantId, SubscriptionSettings, TrackDescription, TrackKind};
use sfu_transport::{ConnId, DownTrackSpec, MediaError, PublishedTrack, PublisherAnswer, SubscriberOffer, TrackKey};
use std::collections::HashMap;

use super::{MediaControl, RelayMedia};
use sfu_core::LayerSet;
use sfu_transport::{LinkId, LinkSpec, RelayTrack, RelayTrackSpec};

/// One request the room made, with what identifies it.
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    PublisherOffer { conn: ConnId },
    AddDownTrack { conn: ConnId, key: TrackKey },
    RemoveDownTrack { conn: ConnId, key: TrackKey },
    SubscriberOffer { conn: ConnId, ice_restart: bool },
    SubscriberAnswer { conn: ConnId },
    EgressOffer { conn: ConnId, keys: Vec<TrackKey> },
    Candidate { conn: ConnId },
    SetSubscription { conn: ConnId, key: TrackKey },
    SetMuted { key: TrackKey, muted: bool },
    SetSpeaking { participant: ParticipantId, speaking: bool },
    SetAmongLoudest { key: TrackKey, among: bool },
    SendData { conn: ConnId },
    Close { conn: ConnId },
    OpenLink { link: LinkId },
    CloseLink { link: LinkId },
    AddRelayTrack { link: LinkId, track: sfu_proto::TrackId, key: TrackKey },
    RemoveRelayTrack { key: TrackKey },
    AddRelayOut { key: TrackKey, link: LinkId, dest: std::net::SocketAddr, ssrcs: Vec<u32> },
    RemoveRelayOut { key: TrackKey, link: LinkId },
    SetRelayLayers { key: TrackKey, link: LinkId, used: LayerSet, wanted: Option<u8> },
    RelayLayersActive { key: TrackKey, layers: LayerSet },
    AddMix { key: TrackKey },
    RemoveMix { key: TrackKey },
    AddMixInput { mix: TrackKey, input: TrackKey, speaker: ParticipantId },
    RemoveMixInput { mix: TrackKey, input: TrackKey },
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    next_serial: u64,
    /// Per publisher connection, its live tracks by mid.
    published: HashMap<ConnId, Vec<(String, TrackKey)>>,
    /// Per subscriber connection, its down tracks in the order they were added.
    down: HashMap<ConnId, Vec<TrackKey>>,
    /// Down tracks added held back by top-N audio.
    held_back: Vec<(ConnId, TrackKey)>,
}

#[derive(Default)]
pub struct FakeMedia {
    state: Mutex<State>,
}

impl FakeMedia {
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().calls.clone()
    }

    /// Forgets the calls so far, to look only at what follows.
    pub fn clear_calls(&self) {
        self.state.lock().calls.clear();
    }

    /// The down tracks a subscriber connection carries now.
    /// Whether the down track `key` was added to `conn` held back by top-N audio.
    pub fn added_held_back(&self, conn: ConnId, key: TrackKey) -> bool {
        self.state.lock().held_back.contains(&(conn, key))
    }

    pub fn down_tracks(&self, conn: ConnId) -> Vec<TrackKey> {
        self.state.lock().down.get(&conn).cloned().unwrap_or_default()
    }

    fn record(&self, call: Call) {
        self.state.lock().calls.push(call);
    }

    fn serial(state: &mut State) -> u64 {
        state.next_serial += 1;
        state.next_serial
    }
}

/// The live media sections of an offer: (mid, kind).
fn sections(sdp: &str) -> Vec<(String, TrackKind)> {
    let mut out = Vec::new();
    let mut current: Option<TrackKind> = None;
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            let mut words = m.split(' ');
            let kind = words.next();
            let live = words.next() != Some("0");
            current = match kind {
                Some("audio") if live => Some(TrackKind::Audio),
                Some("video") if live => Some(TrackKind::Video),
                _ => None,
            };
        } else if let (Some(mid), Some(kind)) = (line.strip_prefix("a=mid:"), current) {
            out.push((mid.to_owned(), kind));
        }
    }
    out
}

impl MediaControl for FakeMedia {
    fn allocate_conn(&self) -> ConnId {
        ConnId::new(0, Self::serial(&mut self.state.lock()))
    }

    fn allocate_conn_pair(&self) -> (ConnId, ConnId) {
        let mut state = self.state.lock();
        (ConnId::new(0, Self::serial(&mut state)), ConnId::new(0, Self::serial(&mut state)))
    }

    async fn publisher_offer(
        &self,
        conn: ConnId,
        _owner: ParticipantId,
        sdp: String,
        _tracks: Vec<TrackDescription>,
    ) -> Result<PublisherAnswer, MediaError> {
        if !sdp.starts_with("v=0") {
            return Err(MediaError::Sdp("not an offer".into()));
        }
        let mut state = self.state.lock();
        state.calls.push(Call::PublisherOffer { conn });
        let offered = sections(&sdp);
        let before = state.published.get(&conn).cloned().unwrap_or_default();
        let removed: Vec<TrackKey> =
            before.iter().filter(|(mid, _)| !offered.iter().any(|(m, _)| m == mid)).map(|(_, key)| *key).collect();
        let mut live: Vec<(String, TrackKey)> = before.into_iter().filter(|(_, key)| !removed.contains(key)).collect();
        let mut added = Vec::new();
        for (mid, kind) in offered {
            if live.iter().any(|(m, _)| *m == mid) {
                continue;
            }
            let key = TrackKey::new(0, Self::serial(&mut state));
            live.push((mid.clone(), key));
            let (mime, clock_rate) = match kind {
                TrackKind::Audio => ("audio/opus", 48_000),
                TrackKind::Video => ("video/VP8", 90_000),
            };
            added.push(PublishedTrack { mid, key, kind, mime: mime.into(), clock_rate, layers: Vec::new() });
        }
        state.published.insert(conn, live);
        Ok(PublisherAnswer { sdp: format!("v=0\r\ns=answer {}\r\n", conn.0), added, removed })
    }

    async fn subscriber_add_track(
        &self,
        conn: ConnId,
        _owner: ParticipantId,
        spec: DownTrackSpec,
    ) -> Result<(), MediaError> {
        let mut state = self.state.lock();
        state.calls.push(Call::AddDownTrack { conn, key: spec.key });
        state.down.entry(conn).or_default().push(spec.key);
        if !spec.among_loudest {
            state.held_back.push((conn, spec.key));
        }
        Ok(())
    }

    async fn subscriber_remove_track(&self, conn: ConnId, key: TrackKey) -> Result<(), MediaError> {
        let mut state = self.state.lock();
        state.calls.push(Call::RemoveDownTrack { conn, key });
        let tracks = state.down.get_mut(&conn).ok_or(MediaError::NoConnection)?;
        let before = tracks.len();
        tracks.retain(|k| *k != key);
        if tracks.len() == before { Err(MediaError::NoTrack) } else { Ok(()) }
    }

    async fn subscriber_offer(&self, conn: ConnId, ice_restart: bool) -> Result<SubscriberOffer, MediaError> {
        let mut state = self.state.lock();
        state.calls.push(Call::SubscriberOffer { conn, ice_restart });
        let keys = state.down.get(&conn).ok_or(MediaError::NoConnection)?;
        let tracks: Vec<(String, TrackKey)> = keys.iter().map(|k| (k.0.to_string(), *k)).collect();
        let mut sdp = format!("v=0\r\ns=offer {}\r\n", conn.0);
        for (mid, _) in &tracks {
            sdp.push_str(&format!("m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:{mid}\r\n"));
        }
        Ok(SubscriberOffer { sdp, tracks })
    }

    async fn subscriber_answer(&self, conn: ConnId, _sdp: String) -> Result<(), MediaError> {
        self.record(Call::SubscriberAnswer { conn });
        Ok(())
    }

    async fn egress_offer(
        &self,
        conn: ConnId,
        _owner: ParticipantId,
        _sdp: String,
        tracks: Vec<DownTrackSpec>,
    ) -> Result<String, MediaError> {
        let keys: Vec<TrackKey> = tracks.iter().map(|t| t.key).collect();
        let mut state = self.state.lock();
        state.calls.push(Call::EgressOffer { conn, keys: keys.clone() });
        state.down.insert(conn, keys);
        Ok(format!("v=0\r\ns=egress {}\r\n", conn.0))
    }

    async fn add_remote_candidate(&self, conn: ConnId, _candidate: IceCandidate) -> Result<(), MediaError> {
        self.record(Call::Candidate { conn });
        Ok(())
    }

    fn set_subscription(&self, conn: ConnId, key: TrackKey, _settings: SubscriptionSettings) {
        self.record(Call::SetSubscription { conn, key });
    }

    fn set_muted(&self, key: TrackKey, muted: bool) {
        self.record(Call::SetMuted { key, muted });
    }

    fn set_speaking(&self, participant: &ParticipantId, speaking: bool) {
        self.record(Call::SetSpeaking { participant: participant.clone(), speaking });
    }

    fn set_among_loudest(&self, key: TrackKey, among: bool) {
        self.record(Call::SetAmongLoudest { key, among });
    }

    async fn add_mix(&self) -> Result<TrackKey, MediaError> {
        let mut state = self.state.lock();
        let key = TrackKey::new(0, Self::serial(&mut state));
        state.calls.push(Call::AddMix { key });
        Ok(key)
    }

    fn remove_mix(&self, key: TrackKey) {
        self.record(Call::RemoveMix { key });
    }

    async fn add_mix_input(&self, mix: TrackKey, input: TrackKey, speaker: ParticipantId) -> Result<(), MediaError> {
        self.record(Call::AddMixInput { mix, input, speaker });
        Ok(())
    }

    fn remove_mix_input(&self, mix: TrackKey, input: TrackKey) {
        self.record(Call::RemoveMixInput { mix, input });
    }

    fn send_data(&self, conn: ConnId, _text: bool, _payload: Bytes) {
        self.record(Call::SendData { conn });
    }

    fn close(&self, conn: ConnId) {
        self.record(Call::Close { conn });
    }
}

impl RelayMedia for FakeMedia {
    fn open_link(&self, spec: LinkSpec) {
        self.record(Call::OpenLink { link: spec.link });
    }

    fn close_link(&self, link: LinkId) {
        self.record(Call::CloseLink { link });
    }

    async fn add_relay_track(&self, link: LinkId, spec: RelayTrackSpec) -> Result<RelayTrack, MediaError> {
        let mut state = self.state.lock();
        let serial = Self::serial(&mut state);
        let key = TrackKey::new(0, serial);
        state.calls.push(Call::AddRelayTrack { link, track: spec.track_id.clone(), key });
        let layers = spec.layers.len().max(1);
        let ssrcs = (0..layers).map(|i| 1000 * serial as u32 + i as u32).collect();
        Ok(RelayTrack { key, dest: "127.0.0.1:7882".parse().expect("an address"), ssrcs })
    }

    fn remove_relay_track(&self, key: TrackKey) {
        self.record(Call::RemoveRelayTrack { key });
    }

    async fn add_relay_out(
        &self,
        key: TrackKey,
        link: LinkId,
        dest: std::net::SocketAddr,
        ssrcs: Vec<u32>,
    ) -> Result<(), MediaError> {
        self.record(Call::AddRelayOut { key, link, dest, ssrcs });
        Ok(())
    }

    fn remove_relay_out(&self, key: TrackKey, link: LinkId) {
        self.record(Call::RemoveRelayOut { key, link });
    }

    fn set_relay_layers(&self, key: TrackKey, link: LinkId, used: LayerSet, wanted: Option<u8>) {
        self.record(Call::SetRelayLayers { key, link, used, wanted });
    }

    fn relay_layers_active(&self, key: TrackKey, layers: LayerSet) {
        self.record(Call::RelayLayersActive { key, layers });
    }
}

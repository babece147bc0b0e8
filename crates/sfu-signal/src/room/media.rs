//! What the rooms ask of the media plane. The [`Hub`](super::Hub) is generic over it so room
//! behaviour can be tested against a stand-in that records each request and answers it.

use bytes::Bytes;
use sfu_proto::{IceCandidate, ParticipantId, SubscriptionSettings, TrackDescription};
use sfu_transport::{ConnId, DownTrackSpec, MediaError, MediaPlane, PublisherAnswer, SubscriberOffer, TrackKey};
use std::future::Future;

/// The media-plane requests the control plane makes; see [`MediaPlane`] for what each does.
/// The futures are `Send` because rooms are served from a multi-threaded runtime.
pub trait MediaControl: super::RelayMedia + Send + Sync + 'static {
    fn allocate_conn(&self) -> ConnId;
    fn allocate_conn_pair(&self) -> (ConnId, ConnId);
    fn publisher_offer(
        &self,
        conn: ConnId,
        owner: ParticipantId,
        sdp: String,
        tracks: Vec<TrackDescription>,
    ) -> impl Future<Output = Result<PublisherAnswer, MediaError>> + Send;
    fn subscriber_add_track(
        &self,
        conn: ConnId,
        owner: ParticipantId,
        spec: DownTrackSpec,
    ) -> impl Future<Output = Result<(), MediaError>> + Send;
    fn subscriber_remove_track(
        &self,
        conn: ConnId,
        key: TrackKey,
    ) -> impl Future<Output = Result<(), MediaError>> + Send;
    fn subscriber_offer(
        &self,
        conn: ConnId,
        ice_restart: bool,
    ) -> impl Future<Output = Result<SubscriberOffer, MediaError>> + Send;
    fn subscriber_answer(&self, conn: ConnId, sdp: String) -> impl Future<Output = Result<(), MediaError>> + Send;
    fn egress_offer(
        &self,
        conn: ConnId,
        owner: ParticipantId,
        sdp: String,
        tracks: Vec<DownTrackSpec>,
    ) -> impl Future<Output = Result<String, MediaError>> + Send;
    fn add_remote_candidate(
        &self,
        conn: ConnId,
        candidate: IceCandidate,
    ) -> impl Future<Output = Result<(), MediaError>> + Send;
    fn set_subscription(&self, conn: ConnId, key: TrackKey, settings: SubscriptionSettings);
    fn set_muted(&self, key: TrackKey, muted: bool);
    fn set_speaking(&self, participant: &ParticipantId, speaking: bool);
    fn set_among_loudest(&self, key: TrackKey, among: bool);
    fn add_mix(&self) -> impl Future<Output = Result<TrackKey, MediaError>> + Send;
    fn remove_mix(&self, key: TrackKey);
    fn add_mix_input(
        &self,
        mix: TrackKey,
        input: TrackKey,
        speaker: ParticipantId,
    ) -> impl Future<Output = Result<(), MediaError>> + Send;
    fn remove_mix_input(&self, mix: TrackKey, input: TrackKey);
    fn send_data(&self, conn: ConnId, text: bool, payload: Bytes);
    fn close(&self, conn: ConnId);
}

// Each method hands over to the inherent one of the same name.
impl MediaControl for MediaPlane {
    fn allocate_conn(&self) -> ConnId {
        MediaPlane::allocate_conn(self)
    }

    fn allocate_conn_pair(&self) -> (ConnId, ConnId) {
        MediaPlane::allocate_conn_pair(self)
    }

    fn publisher_offer(
        &self,
        conn: ConnId,
        owner: ParticipantId,
        sdp: String,
        tracks: Vec<TrackDescription>,
    ) -> impl Future<Output = Result<PublisherAnswer, MediaError>> + Send {
        MediaPlane::publisher_offer(self, conn, owner, sdp, tracks)
    }

    fn subscriber_add_track(
        &self,
        conn: ConnId,
        owner: ParticipantId,
        spec: DownTrackSpec,
    ) -> impl Future<Output = Result<(), MediaError>> + Send {
        MediaPlane::subscriber_add_track(self, conn, owner, spec)
    }

    fn subscriber_remove_track(
        &self,
        conn: ConnId,
        key: TrackKey,
    ) -> impl Future<Output = Result<(), MediaError>> + Send {
        MediaPlane::subscriber_remove_track(self, conn, key)
    }

    fn subscriber_offer(
        &self,
        conn: ConnId,
        ice_restart: bool,
    ) -> impl Future<Output = Result<SubscriberOffer, MediaError>> + Send {
        MediaPlane::subscriber_offer(self, conn, ice_restart)
    }

    fn subscriber_answer(&self, conn: ConnId, sdp: String) -> impl Future<Output = Result<(), MediaError>> + Send {
        MediaPlane::subscriber_answer(self, conn, sdp)
    }

    fn egress_offer(
        &self,
        conn: ConnId,
        owner: ParticipantId,
        sdp: String,
        tracks: Vec<DownTrackSpec>,
    ) -> impl Future<Output = Result<String, MediaError>> + Send {
        MediaPlane::egress_offer(self, conn, owner, sdp, tracks)
    }

    fn add_remote_candidate(
        &self,
        conn: ConnId,
        candidate: IceCandidate,
    ) -> impl Future<Output = Result<(), MediaError>> + Send {
        MediaPlane::add_remote_candidate(self, conn, candidate)
    }

    fn set_subscription(&self, conn: ConnId, key: TrackKey, settings: SubscriptionSettings) {
        MediaPlane::set_subscription(self, conn, key, settings);
    }

    fn set_muted(&self, key: TrackKey, muted: bool) {
        MediaPlane::set_muted(self, key, muted);
    }

    fn set_speaking(&self, participant: &ParticipantId, speaking: bool) {
        MediaPlane::set_speaking(self, participant, speaking);
    }

    fn set_among_loudest(&self, key: TrackKey, among: bool) {
        MediaPlane::set_among_loudest(self, key, among);
    }

    fn add_mix(&self) -> impl Future<Output = Result<TrackKey, MediaError>> + Send {
        MediaPlane::add_mix(self)
    }

    fn remove_mix(&self, key: TrackKey) {
        MediaPlane::remove_mix(self, key);
    }

    fn add_mix_input(
        &self,
        mix: TrackKey,
        input: TrackKey,
        speaker: ParticipantId,
    ) -> impl Future<Output = Result<(), MediaError>> + Send {
        MediaPlane::add_mix_input(self, mix, input, speaker)
    }

    fn remove_mix_input(&self, mix: TrackKey, input: TrackKey) {
        MediaPlane::remove_mix_input(self, mix, input);
    }

    fn send_data(&self, conn: ConnId, text: bool, payload: Bytes) {
        MediaPlane::send_data(self, conn, text, payload);
    }

    fn close(&self, conn: ConnId) {
        MediaPlane::close(self, conn);
    }
}

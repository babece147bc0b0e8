//! What the control plane does with the shards, for one publisher or subscriber: the same
//! requests, in the same order, as `MediaPlane` and the signaling side make them.

use sfu_proto::{
    LayerInfo, ParticipantId, Rid, SubscriptionSettings, TrackDescription, TrackId, TrackKind, TrackSource,
};
use std::time::Duration;

use super::client::Role;
use super::harness::{ClientId, Net};
use super::media::LAYERS;
use crate::api::{DownTrackSpec, MediaEvent, PublishedTrack};
use crate::remote::Transport;
use crate::sdp_candidates::tidy_candidates;
use crate::shard::command::Command;
use crate::{ConnId, TrackKey};

/// ICE and DTLS over a 10 ms round trip take a few round trips; this is ample.
pub(crate) const CONNECT_LIMIT: Duration = Duration::from_secs(3);

pub(crate) struct Publisher {
    pub client: ClientId,
    pub conn: ConnId,
    pub owner: ParticipantId,
    pub video: PublishedTrack,
    pub audio: Option<PublishedTrack>,
}

pub(crate) struct Subscriber {
    pub client: ClientId,
    pub conn: ConnId,
}

impl Publisher {
    /// The camera's track.
    pub fn key(&self) -> TrackKey {
        self.video.key
    }

    /// What a subscriber's shard is given to forward `track`.
    pub fn down_track(&self, track: &PublishedTrack, settings: SubscriptionSettings) -> DownTrackSpec {
        DownTrackSpec {
            key: track.key,
            track_id: track_id(track.key),
            publisher: self.owner.clone(),
            kind: track.kind,
            mime: track.mime.clone(),
            clock_rate: track.clock_rate,
            layers: track.layers.clone(),
            settings,
            muted: false,
            among_loudest: true,
            source: if track.kind == TrackKind::Audio { TrackSource::Microphone } else { TrackSource::Camera },
        }
    }
}

pub(crate) fn track_id(key: TrackKey) -> TrackId {
    TrackId(format!("TR_{}", key.0))
}

/// A subscriber's wishes for one track: `auto` with no viewport limit unless changed.
pub(crate) fn wanting(key: TrackKey) -> SubscriptionSettings {
    SubscriptionSettings {
        track_id: track_id(key),
        layer: Default::default(),
        max_width: None,
        max_height: None,
        paused: false,
    }
}

impl Net {
    /// A simulcast camera published on `shard`: offer, answer, then connected.
    pub fn publish(&mut self, shard: usize, name: &str) -> Publisher {
        self.publish_tracks(shard, name, false, Transport::Udp)
    }

    /// A simulcast camera and a microphone published on `shard`.
    pub fn publish_with_audio(&mut self, shard: usize, name: &str) -> Publisher {
        self.publish_tracks(shard, name, true, Transport::Udp)
    }

    /// A camera and a microphone published on `shard` by a client that reaches it only over
    /// `transport`.
    pub fn publish_over(&mut self, shard: usize, name: &str, transport: Transport) -> Publisher {
        self.publish_tracks(shard, name, true, transport)
    }

    fn publish_tracks(&mut self, shard: usize, name: &str, with_audio: bool, transport: Transport) -> Publisher {
        let client = self.add_client_over(Role::Publisher, transport);
        let conn = self.allocate_conn(shard);
        let owner = ParticipantId(format!("PA_{name}"));
        let now = self.now;
        let (sdp, video_mid, audio_mid) = self.client_mut(client).offer(with_audio, now);
        let layers = LAYERS
            .iter()
            .map(|l| LayerInfo { rid: Rid(l.rid.into()), width: l.width.into(), height: l.height.into() })
            .collect();
        let mut tracks =
            vec![TrackDescription { mid: video_mid, source: TrackSource::Camera, name: "camera".into(), layers }];
        if let Some(mid) = audio_mid {
            tracks.push(TrackDescription { mid, source: TrackSource::Microphone, name: "mic".into(), layers: vec![] });
        }
        let answer = self
            .ask(shard, |reply| Command::PublisherOffer { conn, owner: owner.clone(), sdp, tracks, reply })
            .expect("the shard accepts the offer");
        let (video, audio): (Vec<_>, Vec<_>) = answer.added.into_iter().partition(|t| t.kind == TrackKind::Video);
        let video = video.into_iter().next().expect("the camera is published");
        let audio = audio.into_iter().next();
        assert_eq!(audio.is_some(), with_audio);
        let sdp = tidy_candidates(&answer.sdp);
        self.client_mut(client).accept_answer(sdp, now);
        self.flush();
        self.wait_connected(shard, client, conn);
        Publisher { client, conn, owner, video, audio }
    }

    /// A subscriber on `shard` to `publisher`'s tracks: the down track, the shard's offer, the
    /// client's answer, then connected.
    pub fn subscribe(&mut self, shard: usize, name: &str, publisher: &Publisher) -> Subscriber {
        self.subscribe_with(shard, name, publisher, wanting(publisher.key()))
    }

    /// [`Self::subscribe`] by a client that reaches the shard only over `transport`.
    pub fn subscribe_over(
        &mut self,
        shard: usize,
        name: &str,
        publisher: &Publisher,
        transport: Transport,
    ) -> Subscriber {
        self.subscribe_client(shard, name, publisher, wanting(publisher.key()), transport)
    }

    /// [`Self::subscribe`] with the subscriber's wishes for the track given from the start.
    pub fn subscribe_with(
        &mut self,
        shard: usize,
        name: &str,
        publisher: &Publisher,
        settings: SubscriptionSettings,
    ) -> Subscriber {
        self.subscribe_client(shard, name, publisher, settings, Transport::Udp)
    }

    fn subscribe_client(
        &mut self,
        shard: usize,
        name: &str,
        publisher: &Publisher,
        settings: SubscriptionSettings,
        transport: Transport,
    ) -> Subscriber {
        let client = self.add_client_over(Role::Subscriber, transport);
        let conn = self.allocate_conn(shard);
        let owner = ParticipantId(format!("PA_{name}"));
        let mut specs = vec![publisher.down_track(&publisher.video, settings)];
        if let Some(audio) = &publisher.audio {
            specs.push(publisher.down_track(audio, wanting(audio.key)));
        }
        let count = specs.len();
        for spec in specs {
            let (owner, spec) = (owner.clone(), Box::new(spec));
            self.ask(shard, |reply| Command::AddDownTrack { conn, owner, spec, reply }).expect("down track added");
        }
        let offer =
            self.ask(shard, |reply| Command::SubscriberOffer { conn, ice_restart: false, reply }).expect("offer");
        assert_eq!(offer.tracks.len(), count, "the offer carries every track");
        let now = self.now;
        let sdp = self.client_mut(client).answer(tidy_candidates(&offer.sdp), now);
        self.ask(shard, |reply| Command::SubscriberAnswer { conn, sdp, reply }).expect("answer accepted");
        self.wait_connected(shard, client, conn);
        Subscriber { client, conn }
    }

    fn wait_connected(&mut self, shard: usize, client: ClientId, conn: ConnId) {
        let since = self.now;
        self.run_until("the client connects and the shard says so", CONNECT_LIMIT, |net| {
            net.client(client).connected
                && net.events_since(shard, since).any(|e| matches!(e, MediaEvent::Connected { conn: c } if *c == conn))
        });
    }

    /// Changes what a subscriber wants of a track, as a `subscription` message does.
    pub fn set_subscription(&mut self, shard: usize, conn: ConnId, key: TrackKey, settings: SubscriptionSettings) {
        self.tell(shard, Command::SetSubscription { conn, key, settings });
    }

    /// Closes a connection, as the plane does when its participant leaves.
    pub fn close(&mut self, shard: usize, conn: ConnId) {
        self.tell(shard, Command::Close { conn });
    }
}

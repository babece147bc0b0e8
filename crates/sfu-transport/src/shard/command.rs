//! What a shard is asked to do: by the control plane (through [`crate::MediaPlane`]) and by
//! the other shards (the inter-shard protocol: `Downstream`, `LayersFlowing`, `LayerDemand`,
//! `KeyframeRequest`, `Forward`, `AvailableLayers`).

use bytes::Bytes;
use sfu_core::LayerSet;
use sfu_proto::{IceCandidate, ParticipantId, SubscriptionSettings, TrackDescription};
use std::sync::Arc;
use tokio::sync::oneshot;

use super::published::MediaPacket;
use crate::api::{DownTrackSpec, PublisherAnswer, SubscriberOffer};
use crate::relay::{LinkId, LinkSpec, RelayTrack, RelayTrackSpec};
use crate::{ConnId, MediaError, TrackKey};

/// Where a request's result goes: answered in the same call that handles the request.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, MediaError>>;

/// Work for a shard, from the control plane or from another shard.
pub(crate) enum Command {
    PublisherOffer {
        conn: ConnId,
        owner: ParticipantId,
        sdp: String,
        tracks: Vec<TrackDescription>,
        reply: Reply<PublisherAnswer>,
    },
    AddDownTrack {
        conn: ConnId,
        owner: ParticipantId,
        spec: Box<DownTrackSpec>,
        reply: Reply<()>,
    },
    RemoveDownTrack {
        conn: ConnId,
        key: TrackKey,
        reply: Reply<()>,
    },
    SubscriberOffer {
        conn: ConnId,
        ice_restart: bool,
        reply: Reply<SubscriberOffer>,
    },
    SubscriberAnswer {
        conn: ConnId,
        sdp: String,
        reply: Reply<()>,
    },
    EgressOffer {
        conn: ConnId,
        owner: ParticipantId,
        sdp: String,
        tracks: Vec<DownTrackSpec>,
        reply: Reply<String>,
    },
    RemoteCandidate {
        conn: ConnId,
        candidate: IceCandidate,
        reply: Reply<()>,
    },
    SetSubscription {
        conn: ConnId,
        key: TrackKey,
        settings: SubscriptionSettings,
    },
    SetMuted {
        key: TrackKey,
        muted: bool,
    },
    /// Top-N audio: the audio track `key` is (again) among its room's loudest, or no longer.
    SetAmongLoudest {
        key: TrackKey,
        among: bool,
    },
    /// The participant started or stopped being one of its room's active speakers.
    SetSpeaking {
        participant: ParticipantId,
        speaking: bool,
    },
    SendData {
        conn: ConnId,
        text: bool,
        payload: Bytes,
    },
    Close {
        conn: ConnId,
    },
    /// From a subscriber's shard to the publisher's: start/stop sending this track's packets.
    Downstream {
        key: TrackKey,
        shard: usize,
        attach: bool,
    },
    /// From the publisher's shard to one that just attached: the layers the publisher sends.
    LayersFlowing {
        key: TrackKey,
        layers: Vec<u8>,
    },
    /// From a subscriber's shard to the publisher's: the highest layer of the track that
    /// subscribers on `shard` ask for (`None`: none of them wants it any more), and the layers
    /// their forwarders are on or moving to.
    LayerDemand {
        key: TrackKey,
        shard: usize,
        wanted: Option<u8>,
        used: LayerSet,
    },
    /// From a subscriber's shard to the publisher's: a keyframe is wanted on this layer.
    KeyframeRequest {
        key: TrackKey,
        layer: u8,
    },
    /// From the publisher's shard: a packet for the subscribers living here.
    Forward(Arc<MediaPacket>),
    /// A link to another node came up (to every shard): media may cross it.
    OpenLink(Arc<LinkSpec>),
    /// The link is gone (to every shard): everything that crossed it stops.
    CloseLink(LinkId),
    /// A track published on the link's peer is to be received on this shard.
    AddRelayTrack {
        link: LinkId,
        spec: Box<RelayTrackSpec>,
        reply: Reply<RelayTrack>,
    },
    RemoveRelayTrack {
        key: TrackKey,
    },
    /// A track published here is to cross `link` to `dest`, layer `i` as `ssrcs[i]`.
    AddRelayOut {
        key: TrackKey,
        link: LinkId,
        dest: std::net::SocketAddr,
        ssrcs: Vec<u32>,
        reply: Reply<()>,
    },
    RemoveRelayOut {
        key: TrackKey,
        link: LinkId,
    },
    /// The far side of `link` uses `used` of track `key` (published here) and asks for at most
    /// `wanted`.
    SetRelayLayers {
        key: TrackKey,
        link: LinkId,
        used: LayerSet,
        wanted: Option<u8>,
    },
    /// To a relay track's shard: the publisher's node says the publisher sends `layers`.
    RelayLayersActive {
        key: TrackKey,
        layers: LayerSet,
    },
    /// From a relay track's shard to one with subscribers of it: the publisher sends `layers`,
    /// whether or not they cross.
    AvailableLayers {
        key: TrackKey,
        layers: LayerSet,
    },
    /// A room's audio mix is to be made on this shard: the key of its track.
    AddMix {
        reply: Reply<TrackKey>,
    },
    RemoveMix {
        key: TrackKey,
    },
    /// `speaker`'s audio track `input` (on any shard) is mixed into `mix` (on this one).
    AddMixInput {
        mix: TrackKey,
        input: TrackKey,
        speaker: ParticipantId,
        reply: Reply<()>,
    },
    RemoveMixInput {
        mix: TrackKey,
        input: TrackKey,
    },
}

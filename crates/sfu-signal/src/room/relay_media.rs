//! What the rooms ask of the media plane about links to other nodes: a part of
//! [`MediaControl`](super::MediaControl), apart because it only matters in a cluster. See
//! [`MediaPlane`] for what each request does.

use sfu_core::LayerSet;
use sfu_transport::{LinkId, LinkSpec, MediaError, MediaPlane, RelayTrack, RelayTrackSpec, TrackKey};
use std::future::Future;
use std::net::SocketAddr;

pub trait RelayMedia: Send + Sync + 'static {
    fn open_link(&self, spec: LinkSpec);
    fn close_link(&self, link: LinkId);
    fn add_relay_track(
        &self,
        link: LinkId,
        spec: RelayTrackSpec,
    ) -> impl Future<Output = Result<RelayTrack, MediaError>> + Send;
    fn remove_relay_track(&self, key: TrackKey);
    fn add_relay_out(
        &self,
        key: TrackKey,
        link: LinkId,
        dest: SocketAddr,
        ssrcs: Vec<u32>,
    ) -> impl Future<Output = Result<(), MediaError>> + Send;
    fn remove_relay_out(&self, key: TrackKey, link: LinkId);
    fn set_relay_layers(&self, key: TrackKey, link: LinkId, used: LayerSet, wanted: Option<u8>);
    fn relay_layers_active(&self, key: TrackKey, layers: LayerSet);
}

// Each method hands over to the inherent one of the same name.
impl RelayMedia for MediaPlane {
    fn open_link(&self, spec: LinkSpec) {
        MediaPlane::open_link(self, spec);
    }

    fn close_link(&self, link: LinkId) {
        MediaPlane::close_link(self, link);
    }

    fn add_relay_track(
        &self,
        link: LinkId,
        spec: RelayTrackSpec,
    ) -> impl Future<Output = Result<RelayTrack, MediaError>> + Send {
        MediaPlane::add_relay_track(self, link, spec)
    }

    fn remove_relay_track(&self, key: TrackKey) {
        MediaPlane::remove_relay_track(self, key);
    }

    fn add_relay_out(
        &self,
        key: TrackKey,
        link: LinkId,
        dest: SocketAddr,
        ssrcs: Vec<u32>,
    ) -> impl Future<Output = Result<(), MediaError>> + Send {
        MediaPlane::add_relay_out(self, key, link, dest, ssrcs)
    }

    fn remove_relay_out(&self, key: TrackKey, link: LinkId) {
        MediaPlane::remove_relay_out(self, key, link);
    }

    fn set_relay_layers(&self, key: TrackKey, link: LinkId, used: LayerSet, wanted: Option<u8>) {
        MediaPlane::set_relay_layers(self, key, link, used, wanted);
    }

    fn relay_layers_active(&self, key: TrackKey, layers: LayerSet) {
        MediaPlane::relay_layers_active(self, key, layers);
    }
}

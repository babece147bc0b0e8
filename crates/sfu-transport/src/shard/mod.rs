//! One worker shard: a thread owning a UDP socket, the peer connections multiplexed on it,
//! their timers, and the forwarding state of the tracks published or subscribed on it.

mod command;
mod conn;
mod consent;
mod core;
mod demux;
mod down_track;
mod egress;
#[cfg(feature = "fuzzing")]
pub(crate) mod fuzz;
mod mix;
mod published;
mod relay;
mod sdp_info;
mod shell;
mod uplink;

pub(crate) use command::Command;
pub(crate) use core::ShardSettings;
pub(crate) use relay::rtcp_ssrcs;
pub(crate) use shell::{PeerShard, ShardChannels, ShardHandle, ShardShell};

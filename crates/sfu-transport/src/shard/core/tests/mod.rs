//! Virtual-time tests of shard cores wired together with no sockets: real `rtc` peer connections
//! as clients, datagrams and inter-shard commands routed in memory, one clock advanced by the
//! harness (see `harness`). Each scenario file drives one behaviour across shards end to end.
//!
//! The harness (everything but the scenarios) is also built with the `fuzzing` feature: the
//! shard's sequence fuzz target (`crate::fuzzing::shard_sequence`) drives the same virtual network.
// Under `fuzzing` alone, the parts only the scenarios use are unused.
#![cfg_attr(not(test), allow(dead_code))]

pub(crate) mod client;
pub(crate) mod codecs;
pub(crate) mod harness;
pub(crate) mod inspect;
pub(crate) mod media;
pub(crate) mod relay;
pub(crate) mod relay_glue;
pub(crate) mod session;
pub(crate) mod source;

#[cfg(test)]
mod bandwidth_pause;
#[cfg(test)]
mod close_mid_fanout;
#[cfg(test)]
mod dynacast_pauses;
#[cfg(test)]
mod ice_tcp;
#[cfg(test)]
mod keyframe_requests;
#[cfg(test)]
mod layers_across_shards;
#[cfg(test)]
mod nack_history;
#[cfg(test)]
mod overload_shedding;
#[cfg(test)]
mod relay_layers;
#[cfg(test)]
mod relay_media;
#[cfg(test)]
mod relay_repair;

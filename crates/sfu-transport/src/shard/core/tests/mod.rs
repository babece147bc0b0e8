//! Virtual-time tests of shard cores wired together with no sockets: real `rtc` peer connections
//! as clients, datagrams and inter-shard commands routed in memory, one clock advanced by the
//! harness (see `harness`). Each scenario file drives one behaviour across shards end to end.

mod client;
mod codecs;
mod harness;
mod inspect;
mod media;
mod session;
mod source;

mod bandwidth_pause;
mod close_mid_fanout;
mod dynacast_pauses;
mod keyframe_requests;
mod layers_across_shards;
mod nack_history;
mod overload_shedding;

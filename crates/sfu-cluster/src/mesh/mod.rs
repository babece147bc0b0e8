//! The node-to-node control mesh (docs/cluster.md, "Room state across nodes" and "The relay"):
//! the sans-IO protocol of one authenticated connection per pair of live nodes.

pub mod frame;
pub mod handshake;
pub mod keys;
pub mod messages;

mod wire;

pub use frame::FrameError;
pub use handshake::{HandshakeError, LocalNode, MESH_VERSION, RefuseReason, ShardEndpoint};
pub use keys::{ClusterSecret, CtlKey, LinkKeys, MIN_SECRET_LEN, SecretTooShort, Side, SrtpKey};
pub use messages::{DecodeError, PeerMessage, RemoteParticipant};

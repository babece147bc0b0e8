//! What the embedded server counts; the shell copies it to the metrics every second.

/// Counters of a [`crate::TurnCore`] since it started (`allocations` is a level).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TurnStats {
    /// Allocations alive now (relay socket open or being opened).
    pub allocations: u64,
    /// Allocations made.
    pub allocations_total: u64,
    /// 401 to a request without credentials: the normal first step of every client.
    pub challenges: u64,
    /// 401 for a credential whose expiry passed.
    pub auth_expired: u64,
    /// 401 for a wrong password, a username not in the REST form, or another realm.
    pub auth_rejected: u64,
    /// 438: a nonce of ours that expired (the client retries with the new one).
    pub stale_nonces: u64,
    /// 403: a permission or channel asked for an address that is not this node's media.
    pub refused_peers: u64,
    /// Requests refused by a bound: 486 (per-IP allocations) or 508 (all allocations, or an
    /// allocation's permissions or channels).
    pub quota_refusals: u64,
    /// Payload bytes relayed from clients to this node's media sockets.
    pub bytes_to_peers: u64,
    /// Payload bytes relayed from this node's media sockets to clients.
    pub bytes_to_clients: u64,
    /// Data dropped: a Send, ChannelData or peer datagram with no permission or channel for
    /// its address (a peer that is not ours included).
    pub dropped_no_permission: u64,
    /// Data or a request naming no allocation of this client.
    pub dropped_no_allocation: u64,
    /// Datagrams and frames that are neither STUN nor ChannelData, or that do not parse.
    pub dropped_malformed: u64,
}

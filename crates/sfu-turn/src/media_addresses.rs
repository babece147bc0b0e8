//! The only peers the embedded server relays to: this node's media sockets.

use std::net::SocketAddr;

/// This node's media addresses: each as clients know it (the address in the server's ICE
/// candidates, what a client names in XOR-PEER-ADDRESS) and where the relay sends to reach it
/// (the socket's own address on this host; the same unless `announce` differs from `bind`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MediaAddresses {
    pairs: Vec<(SocketAddr, SocketAddr)>,
}

impl MediaAddresses {
    /// `(announced, local)` pairs, one per media socket (shard).
    pub fn new(pairs: impl IntoIterator<Item = (SocketAddr, SocketAddr)>) -> Self {
        MediaAddresses { pairs: pairs.into_iter().collect() }
    }

    /// Where to send for a peer a client named, if it is one of ours.
    pub fn local_for(&self, announced: SocketAddr) -> Option<SocketAddr> {
        self.pairs.iter().find(|(a, _)| *a == announced).map(|(_, l)| *l)
    }

    /// The address a client knows for a datagram that came from `local`, if it is one of ours.
    pub fn announced_for(&self, local: SocketAddr) -> Option<SocketAddr> {
        self.pairs.iter().find(|(_, l)| *l == local).map(|(a, _)| *a)
    }

    /// Every address clients know.
    pub fn announced(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.pairs.iter().map(|(a, _)| *a)
    }

    /// Whether there is no media address at all (the server then refuses every peer).
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_media_addresses_match() {
        let a: SocketAddr = "203.0.113.5:7882".parse().unwrap();
        let l: SocketAddr = "10.0.0.5:7882".parse().unwrap();
        let m = MediaAddresses::new([(a, l)]);
        assert_eq!(m.local_for(a), Some(l));
        assert_eq!(m.announced_for(l), Some(a));
        // Same IP, another port; another IP, same port; the local address named as a peer.
        assert_eq!(m.local_for("203.0.113.5:7883".parse().unwrap()), None);
        assert_eq!(m.local_for("203.0.113.6:7882".parse().unwrap()), None);
        assert_eq!(m.local_for(l), None);
        assert_eq!(m.announced_for(a), None);
    }
}

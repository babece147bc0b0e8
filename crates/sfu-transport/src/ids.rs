//! Numeric handles used on the per-packet path (string ids stay in the control plane), and the
//! maps keyed by them.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by [`ConnId`] or [`TrackKey`]. Forwarding looks these up for every packet and
/// every subscriber; the keys are the server's own serial numbers, never chosen by a client, so
/// SipHash's resistance to crafted collisions buys nothing and its cost does show.
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// A multiplicative hash of one `u64` (what the id types' derived `Hash` writes).
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, value: u64) {
        let h = (self.0 ^ value).wrapping_mul(GOLDEN);
        // The table takes its bucket from the low bits and its tag from the top ones: fold the
        // well-mixed high half into the low.
        self.0 = h ^ (h >> 32);
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
}

/// One peer connection. The top 16 bits name the shard that owns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl ConnId {
    pub fn new(shard: usize, serial: u64) -> Self {
        Self(((shard as u64) << 48) | (serial & 0xFFFF_FFFF_FFFF))
    }
    pub fn shard(self) -> usize {
        (self.0 >> 48) as usize
    }
}

/// One published track. The top 16 bits name the shard of its publisher.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackKey(pub u64);

impl TrackKey {
    pub fn new(shard: usize, serial: u64) -> Self {
        Self(((shard as u64) << 48) | (serial & 0xFFFF_FFFF_FFFF))
    }
    pub fn shard(self) -> usize {
        (self.0 >> 48) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_hashes_spread_over_buckets_and_tags() {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let build = BuildHasherDefault::<IdHasher>::default();
        let mut buckets = std::collections::HashSet::new();
        let mut tags = std::collections::HashSet::new();
        for serial in 0..1024 {
            let h = build.hash_one(ConnId::new(1, serial));
            buckets.insert(h & 1023);
            tags.insert(h >> 57);
        }
        // Sequential ids land in most of 1024 buckets and use most of the 128 tags.
        assert!(buckets.len() > 600, "{}", buckets.len());
        assert!(tags.len() > 100, "{}", tags.len());
        let mut map: IdMap<TrackKey, u64> = IdMap::default();
        for serial in 0..1000 {
            map.insert(TrackKey::new(2, serial), serial);
        }
        assert!((0..1000).all(|s| map[&TrackKey::new(2, s)] == s));
    }

    #[test]
    fn shard_survives_the_round_trip() {
        for (shard, serial) in [(0, 0), (3, 42), (65535, u64::MAX)] {
            assert_eq!(ConnId::new(shard, serial).shard(), shard);
            assert_eq!(TrackKey::new(shard, serial).shard(), shard);
        }
    }
}

//! Numeric handles used on the per-packet path (string ids stay in the control plane).

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
    fn shard_survives_the_round_trip() {
        for (shard, serial) in [(0, 0), (3, 42), (65535, u64::MAX)] {
            assert_eq!(ConnId::new(shard, serial).shard(), shard);
            assert_eq!(TrackKey::new(shard, serial).shard(), shard);
        }
    }
}

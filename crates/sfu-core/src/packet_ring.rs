//! The recent packets of one published track, stored once however many subscribers get them.

/// A fixed ring of the last packets pushed, each under the running index `push` returned.
///
/// Subscribers' retransmission histories keep only this index (a few bytes written per copy
/// sent) instead of a handle to the payload each; a NACK fetches the payload here. A slot
/// remembers its index, so an index whose packet was overwritten finds nothing rather than a
/// newer packet.
#[derive(Debug)]
pub struct PacketRing<T> {
    slots: Vec<Option<(u32, T)>>,
    mask: u32,
    next: u32,
}

impl<T> PacketRing<T> {
    /// A ring of `capacity` packets, rounded up to a power of two and clamped to 1..=65536.
    pub fn new(capacity: usize) -> Self {
        Self::starting_at(capacity, 0)
    }

    fn starting_at(capacity: usize, next: u32) -> Self {
        let capacity = capacity.clamp(1, 1 << 16).next_power_of_two();
        Self { slots: std::iter::repeat_with(|| None).take(capacity).collect(), mask: capacity as u32 - 1, next }
    }

    /// How many packets fit.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Stores `packet` over the oldest one and returns its index.
    pub fn push(&mut self, packet: T) -> u32 {
        let index = self.next;
        self.next = self.next.wrapping_add(1);
        if let Some(slot) = self.slots.get_mut((index & self.mask) as usize) {
            *slot = Some((index, packet));
        }
        index
    }

    /// The packet pushed under `index`, unless it has been overwritten since.
    pub fn get(&self, index: u32) -> Option<&T> {
        match self.slots.get((index & self.mask) as usize)? {
            Some((held, packet)) if *held == index => Some(packet),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_is_a_bounded_power_of_two() {
        for (asked, expected) in [(0, 1), (3, 4), (1024, 1024), (1025, 2048), (1 << 20, 1 << 16)] {
            assert_eq!(PacketRing::<()>::new(asked).capacity(), expected, "{asked}");
        }
    }

    #[test]
    fn finds_what_is_still_held_and_nothing_overwritten() {
        let mut ring = PacketRing::new(4);
        let indices: Vec<u32> = (0..6).map(|i| ring.push(i * 10)).collect();
        assert_eq!(indices, [0, 1, 2, 3, 4, 5]);
        // (index, expected): 0 and 1 were overwritten by 4 and 5; 6 was never pushed.
        let cases = [(0, None), (1, None), (2, Some(20)), (5, Some(50)), (6, None), (u32::MAX, None)];
        for (index, expected) in cases {
            assert_eq!(ring.get(index).copied(), expected, "index {index}");
        }
    }

    #[test]
    fn indices_keep_working_across_the_wrap() {
        let mut ring = PacketRing::starting_at(4, u32::MAX - 1);
        let indices: Vec<u32> = (0..4).map(|i| ring.push(i)).collect();
        assert_eq!(indices, [u32::MAX - 1, u32::MAX, 0, 1]);
        assert_eq!(ring.get(u32::MAX - 1), Some(&0));
        assert_eq!(ring.get(1), Some(&3));
        ring.push(4);
        assert_eq!(ring.get(u32::MAX - 1), None, "overwritten after the wrap");
        assert_eq!(ring.get(2), Some(&4));
    }
}

//! A room's active speakers: who is talking, loudest first, from each participant's smoothed
//! loudness ([`AudioLevelMeter`](crate::AudioLevelMeter)).
//!
//! The ranking changes only when it means something to a viewer: someone starts or stops
//! speaking, or a new participant becomes clearly the loudest. Two people talking at similar
//! levels do not swap places with every report.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

/// Smoothed loudness at which a participant starts to count as speaking (about -40 dBov).
pub const SPEAKING_LEVEL: f32 = 0.01;
/// Smoothed loudness below which a speaker stops counting as speaking. Lower than
/// [`SPEAKING_LEVEL`], so a level hovering around the threshold does not flap.
pub const SILENT_LEVEL: f32 = 0.005;
/// A speaker takes the first place only when louder than the current first by this factor.
pub const DOMINANCE_MARGIN: f32 = 1.25;

/// One room's speaker ranking, keyed by participant.
#[derive(Clone, Debug)]
pub struct ActiveSpeakers<K> {
    levels: HashMap<K, f32>,
    speaking: HashSet<K>,
    /// The ranking last handed out.
    ranking: Vec<K>,
}

impl<K> Default for ActiveSpeakers<K> {
    fn default() -> Self {
        Self { levels: HashMap::new(), speaking: HashSet::new(), ranking: Vec::new() }
    }
}

impl<K: Clone + Eq + Hash + Ord> ActiveSpeakers<K> {
    /// A room where nobody has spoken yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// `who`'s latest smoothed loudness.
    pub fn update(&mut self, who: K, level: f32) {
        let level = if level.is_finite() { level.max(0.0) } else { 0.0 };
        let threshold = if self.speaking.contains(&who) { SILENT_LEVEL } else { SPEAKING_LEVEL };
        if level >= threshold {
            self.speaking.insert(who.clone());
        } else {
            self.speaking.remove(&who);
        }
        self.levels.insert(who, level);
    }

    /// `who` left the room (or stopped publishing audio).
    pub fn remove(&mut self, who: &K) {
        self.levels.remove(who);
        self.speaking.remove(who);
    }

    /// The new ranking (speakers with their loudness, first = dominant) when it changed since
    /// the last call: someone started or stopped speaking, or the first place changed hands.
    pub fn poll_change(&mut self) -> Option<Vec<(K, f32)>> {
        let level = |k: &K| self.levels.get(k).copied().unwrap_or(0.0);
        let mut next: Vec<K> = self.speaking.iter().cloned().collect();
        // Loudest first; ties by key so the order never depends on hashing.
        next.sort_by(|a, b| level(b).total_cmp(&level(a)).then_with(|| a.cmp(b)));
        // The current first keeps its place unless clearly outdone.
        if let (Some(first), Some(challenger)) = (self.ranking.first(), next.first())
            && first != challenger
            && let Some(at) = next.iter().position(|k| k == first)
            && level(challenger) < level(first) * DOMINANCE_MARGIN
        {
            let keep = next.remove(at);
            next.insert(0, keep);
        }
        let same_set = next.len() == self.ranking.len() && next.iter().all(|k| self.ranking.contains(k));
        if same_set && next.first() == self.ranking.first() {
            return None;
        }
        self.ranking = next;
        Some(self.ranking.iter().map(|k| (k.clone(), level(k))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ranking: Option<Vec<(&'static str, f32)>>) -> Option<Vec<&'static str>> {
        ranking.map(|r| r.into_iter().map(|(k, _)| k).collect())
    }

    #[test]
    fn speakers_enter_loudest_first_and_leave_below_the_lower_threshold() {
        let mut s = ActiveSpeakers::new();
        s.update("a", 0.05);
        s.update("b", 0.2);
        s.update("c", 0.001);
        assert_eq!(ids(s.poll_change()), Some(vec!["b", "a"]));
        assert_eq!(s.poll_change(), None, "nothing changed");
        s.update("a", 0.007);
        assert_eq!(s.poll_change(), None, "between the thresholds a speaker stays");
        s.update("a", 0.004);
        assert_eq!(ids(s.poll_change()), Some(vec!["b"]));
        s.update("a", 0.007);
        assert_eq!(s.poll_change(), None, "between the thresholds a silent one does not enter");
    }

    #[test]
    fn the_first_place_changes_only_with_a_clear_margin() {
        let mut s = ActiveSpeakers::new();
        s.update("a", 0.10);
        s.update("b", 0.05);
        assert_eq!(ids(s.poll_change()), Some(vec!["a", "b"]));
        s.update("b", 0.11);
        assert_eq!(s.poll_change(), None, "10 % louder is not enough");
        s.update("b", 0.13);
        assert_eq!(ids(s.poll_change()), Some(vec!["b", "a"]));
    }

    #[test]
    fn removal_and_silence_empty_the_ranking() {
        let mut s = ActiveSpeakers::new();
        s.update("a", 0.1);
        s.update("b", 0.1);
        assert_eq!(ids(s.poll_change()), Some(vec!["a", "b"]), "ties by key");
        s.remove(&"a");
        assert_eq!(ids(s.poll_change()), Some(vec!["b"]));
        s.update("b", 0.0);
        assert_eq!(ids(s.poll_change()), Some(vec![]));
        s.update("b", f32::NAN);
        assert_eq!(s.poll_change(), None, "a bad level reads as silence");
    }
}

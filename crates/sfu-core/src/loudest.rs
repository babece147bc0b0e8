//! Top-N audio: in a large room each listener is sent only the few loudest speakers' audio, so
//! a room of hundreds costs each listener N audio streams, not hundreds.
//!
//! The N places are sticky. A participant takes a free place as soon as it speaks, and a taken
//! place only from one clearly quieter than itself; nobody loses a place by falling silent. So
//! the last few speakers stay audible (a reply is not clipped while its speaker waits for a
//! place), and two speakers at similar levels do not trade places with every report.

use std::collections::HashMap;
use std::hash::Hash;

use crate::speakers::{DOMINANCE_MARGIN, SPEAKING_LEVEL};

/// The N participants whose audio is forwarded, from their smoothed loudness.
#[derive(Clone, Debug)]
pub struct LoudestSpeakers<K> {
    places: usize,
    levels: HashMap<K, f32>,
    /// Who holds a place, in the order they took it.
    selected: Vec<K>,
}

/// Who took a place and who lost one in a [`LoudestSpeakers::poll_change`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectionChange<K> {
    /// Newly among the loudest: their audio is forwarded again.
    pub entered: Vec<K>,
    /// No longer among the loudest: their audio is held back.
    pub left: Vec<K>,
}

impl<K: Clone + Eq + Hash + Ord> LoudestSpeakers<K> {
    /// `places` participants are forwarded at a time (at least one).
    pub fn new(places: usize) -> Self {
        Self { places: places.max(1), levels: HashMap::new(), selected: Vec::new() }
    }

    /// `who`'s latest smoothed loudness (a bad value reads as silence).
    pub fn update(&mut self, who: K, level: f32) {
        let level = if level.is_finite() { level.max(0.0) } else { 0.0 };
        self.levels.insert(who, level);
    }

    /// `who` left the room or stopped publishing audio: its place is free.
    pub fn remove(&mut self, who: &K) {
        self.levels.remove(who);
        self.selected.retain(|k| k != who);
    }

    /// Whether `who` holds a place.
    pub fn is_selected(&self, who: &K) -> bool {
        self.selected.contains(who)
    }

    /// Who holds a place, in the order they took it.
    pub fn selected(&self) -> &[K] {
        &self.selected
    }

    /// Applies the latest levels: free places go to speakers, loudest first; then a speaker
    /// clearly louder than the quietest holder takes that holder's place, again loudest first.
    /// Returns what changed, if anything.
    pub fn poll_change(&mut self) -> Option<SelectionChange<K>> {
        let level = |levels: &HashMap<K, f32>, k: &K| levels.get(k).copied().unwrap_or(0.0);
        let mut candidates: Vec<K> = self
            .levels
            .iter()
            .filter(|(k, l)| **l >= SPEAKING_LEVEL && !self.selected.contains(k))
            .map(|(k, _)| k.clone())
            .collect();
        // Loudest first; ties by key so the outcome never depends on hashing.
        candidates.sort_by(|a, b| level(&self.levels, b).total_cmp(&level(&self.levels, a)).then_with(|| a.cmp(b)));
        let mut change = SelectionChange { entered: Vec::new(), left: Vec::new() };
        for candidate in candidates {
            let loudness = level(&self.levels, &candidate);
            if self.selected.len() < self.places {
                self.selected.push(candidate.clone());
                change.entered.push(candidate);
                continue;
            }
            let quietest = self
                .selected
                .iter()
                .enumerate()
                .min_by(|(_, a), (_, b)| {
                    level(&self.levels, a).total_cmp(&level(&self.levels, b)).then_with(|| b.cmp(a))
                })
                .map(|(i, k)| (i, level(&self.levels, k)));
            let Some((at, quietest_level)) = quietest else { break };
            if loudness <= quietest_level * DOMINANCE_MARGIN {
                // Candidates only get quieter from here.
                break;
            }
            let out = self.selected.remove(at);
            self.selected.push(candidate.clone());
            change.entered.push(candidate);
            change.left.push(out);
        }
        // Who came and went again within one poll changed nothing.
        let both: Vec<K> = change.entered.iter().filter(|k| change.left.contains(k)).cloned().collect();
        change.entered.retain(|k| !both.contains(k));
        change.left.retain(|k| !both.contains(k));
        (!change.entered.is_empty() || !change.left.is_empty()).then_some(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut v: Vec<&'static str>) -> Vec<&'static str> {
        v.sort();
        v
    }

    #[test]
    fn the_loudest_take_the_free_places_and_the_silent_none() {
        let mut s = LoudestSpeakers::new(3);
        for (who, level) in [("a", 0.5), ("b", 0.3), ("c", 0.2), ("d", 0.1), ("e", 0.001)] {
            s.update(who, level);
        }
        let change = s.poll_change().expect("places taken");
        assert_eq!(sorted(change.entered), vec!["a", "b", "c"]);
        assert!(change.left.is_empty());
        assert_eq!(s.poll_change(), None, "nothing changed");
        assert!(!s.is_selected(&"d") && !s.is_selected(&"e"));
    }

    #[test]
    fn places_are_kept_through_silence_and_lost_only_to_a_clearly_louder_speaker() {
        let mut s = LoudestSpeakers::new(2);
        s.update("a", 0.2);
        s.update("b", 0.1);
        s.poll_change();
        // Both fall silent: they keep their places.
        s.update("a", 0.0);
        s.update("b", 0.0);
        assert_eq!(s.poll_change(), None);
        // c speaks: it takes the place of a silent holder (b, the quietest; ties by key, later first).
        s.update("c", 0.05);
        let change = s.poll_change().expect("c enters");
        assert_eq!((change.entered, change.left), (vec!["c"], vec!["b"]));
        // d, 10 % louder than the quietest holder, is not enough; 50 % louder is.
        s.update("a", 0.1);
        s.update("d", 0.055);
        assert_eq!(s.poll_change(), None);
        s.update("d", 0.08);
        let change = s.poll_change().expect("d enters");
        assert_eq!((change.entered, change.left), (vec!["d"], vec!["c"]));
        assert_eq!(sorted(s.selected().to_vec()), vec!["a", "d"]);
    }

    #[test]
    fn a_departure_frees_a_place() {
        let mut s = LoudestSpeakers::new(1);
        s.update("a", 0.2);
        s.update("b", 0.15);
        s.poll_change();
        assert_eq!(s.selected(), ["a"]);
        s.remove(&"a");
        let change = s.poll_change().expect("b takes the free place");
        assert_eq!((change.entered, change.left), (vec!["b"], vec![]));
        s.update("b", f32::NAN);
        assert_eq!(s.poll_change(), None, "a bad level changes nothing");
    }

    #[test]
    fn never_more_than_the_places_whatever_the_levels() {
        let mut s = LoudestSpeakers::new(3);
        let mut level = 0.01_f32;
        for round in 0..50 {
            for who in ["a", "b", "c", "d", "e", "f"] {
                level = (level * 1.7) % 1.0 + 0.01;
                s.update(who, if round % 7 == 0 { 0.0 } else { level });
            }
            s.poll_change();
            assert!(s.selected().len() <= 3);
            let mut unique = s.selected().to_vec();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), s.selected().len());
        }
    }
}

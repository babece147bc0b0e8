//! Which simulcast layer a subscriber should receive: a pure function of its wishes, the layers
//! the publisher offers, which of them are flowing, and an optional bandwidth cap.

use sfu_proto::{LayerPreference, SubscriptionSettings};

/// Most layers a track may have; [`LayerSet`] is a bit set of this many layers.
pub const MAX_LAYERS: usize = 8;

/// A set of layer indices (0 = lowest), as a bit set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LayerSet(u8);

impl LayerSet {
    /// No layer.
    pub const EMPTY: LayerSet = LayerSet(0);
    /// Every layer.
    pub const ALL: LayerSet = LayerSet(u8::MAX);

    /// Layers `0..count`.
    pub fn first(count: usize) -> Self {
        match count {
            0 => Self::EMPTY,
            n if n >= MAX_LAYERS => Self::ALL,
            n => LayerSet((1u8 << n) - 1),
        }
    }

    /// Whether `layer` is in the set.
    pub fn contains(self, layer: u8) -> bool {
        usize::from(layer) < MAX_LAYERS && self.0 & (1 << layer) != 0
    }

    /// The set with `layer` added (layers beyond [`MAX_LAYERS`] are ignored).
    pub fn with(self, layer: u8) -> Self {
        if usize::from(layer) < MAX_LAYERS { LayerSet(self.0 | (1 << layer)) } else { self }
    }

    /// The set with `layer` removed.
    pub fn without(self, layer: u8) -> Self {
        if usize::from(layer) < MAX_LAYERS { LayerSet(self.0 & !(1 << layer)) } else { self }
    }

    /// Every layer in either set.
    pub fn union(self, other: LayerSet) -> Self {
        LayerSet(self.0 | other.0)
    }

    /// Whether the set holds no layer.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The highest layer in the set.
    pub fn highest(self) -> Option<u8> {
        (0..MAX_LAYERS as u8).rev().find(|&layer| self.contains(layer))
    }
}

impl FromIterator<u8> for LayerSet {
    fn from_iter<I: IntoIterator<Item = u8>>(layers: I) -> Self {
        layers.into_iter().fold(LayerSet::EMPTY, LayerSet::with)
    }
}

/// One subscriber's wishes for one video track, and the rules that turn them into a layer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerSelector {
    /// The quality the subscriber asked for.
    pub preference: LayerPreference,
    /// Largest width the subscriber can use (its viewport), for [`LayerPreference::Auto`].
    pub max_width: Option<u32>,
    /// Largest height the subscriber can use, for [`LayerPreference::Auto`].
    pub max_height: Option<u32>,
    /// The subscriber paused the track: no layer at all.
    pub paused: bool,
}

impl LayerSelector {
    /// A selector for the given subscription settings.
    pub fn from_settings(settings: &SubscriptionSettings) -> Self {
        Self {
            preference: settings.layer,
            max_width: settings.max_width,
            max_height: settings.max_height,
            paused: settings.paused,
        }
    }

    /// The layer the subscriber wants among `layers` (resolutions ordered lowest to highest,
    /// `None` where not known yet), before activity and bandwidth are considered.
    /// `None` when paused or there is no layer.
    pub fn preferred(&self, layers: &[Option<(u16, u16)>]) -> Option<u8> {
        if self.paused || layers.is_empty() {
            return None;
        }
        let highest = layers.len().min(MAX_LAYERS) - 1;
        let preferred = match self.preference {
            LayerPreference::Low => 0,
            LayerPreference::Medium => highest.min(1),
            LayerPreference::High => highest,
            LayerPreference::Auto => self.highest_fitting(&layers[..=highest]),
        };
        u8::try_from(preferred).ok()
    }

    /// The layer to forward: the preferred one, lowered to `max_layer_by_bandwidth` if given,
    /// then moved to the nearest layer in `active` (below first, else above, even past the
    /// bandwidth cap: some video beats none). `None` when paused or no layer is active.
    pub fn target(
        &self,
        layers: &[Option<(u16, u16)>],
        active: LayerSet,
        max_layer_by_bandwidth: Option<u8>,
    ) -> Option<u8> {
        let preferred = self.preferred(layers)?;
        let wanted = max_layer_by_bandwidth.map_or(preferred, |cap| preferred.min(cap));
        let count = layers.len().min(MAX_LAYERS) as u8;
        (0..=wanted).rev().chain(wanted + 1..count).find(|&layer| active.contains(layer))
    }

    /// Index of the highest layer whose known resolution fits the size limits; the lowest layer
    /// when none fits (or sizes are unknown), the highest when there are no limits.
    fn highest_fitting(&self, layers: &[Option<(u16, u16)>]) -> usize {
        if self.max_width.is_none() && self.max_height.is_none() {
            return layers.len() - 1;
        }
        let fits = |size: &Option<(u16, u16)>| {
            size.is_some_and(|(width, height)| {
                self.max_width.is_none_or(|max| u32::from(width) <= max)
                    && self.max_height.is_none_or(|max| u32::from(height) <= max)
            })
        };
        layers.iter().rposition(fits).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LayerPreference::{Auto, High, Low, Medium};

    const SIMULCAST3: &[Option<(u16, u16)>] = &[Some((320, 180)), Some((640, 360)), Some((1280, 720))];
    const SIMULCAST2: &[Option<(u16, u16)>] = &[Some((640, 360)), Some((1280, 720))];
    const SINGLE: &[Option<(u16, u16)>] = &[Some((1280, 720))];
    const UNKNOWN3: &[Option<(u16, u16)>] = &[None, None, None];

    fn selector(preference: LayerPreference, max: Option<(u32, u32)>) -> LayerSelector {
        LayerSelector { preference, max_width: max.map(|(w, _)| w), max_height: max.map(|(_, h)| h), paused: false }
    }

    /// (name, selector, layers, expected layer)
    type PreferenceCase = (&'static str, LayerSelector, &'static [Option<(u16, u16)>], Option<u8>);
    /// (name, preference, active layers, bandwidth cap, expected layer)
    type TargetCase = (&'static str, LayerPreference, LayerSet, Option<u8>, Option<u8>);

    #[test]
    fn preference_picks_a_layer() {
        let cases: &[PreferenceCase] = &[
            ("low", selector(Low, None), SIMULCAST3, Some(0)),
            ("medium of 3", selector(Medium, None), SIMULCAST3, Some(1)),
            ("medium of 2", selector(Medium, None), SIMULCAST2, Some(1)),
            ("medium of 1", selector(Medium, None), SINGLE, Some(0)),
            ("high", selector(High, None), SIMULCAST3, Some(2)),
            ("high of 1", selector(High, None), SINGLE, Some(0)),
            ("auto without limits", selector(Auto, None), SIMULCAST3, Some(2)),
            ("auto fits 640x360", selector(Auto, Some((640, 360))), SIMULCAST3, Some(1)),
            ("auto fits between layers", selector(Auto, Some((1000, 600))), SIMULCAST3, Some(1)),
            ("auto large viewport", selector(Auto, Some((1920, 1080))), SIMULCAST3, Some(2)),
            ("auto nothing fits", selector(Auto, Some((100, 100))), SIMULCAST3, Some(0)),
            ("auto width only", selector(Auto, Some((400, u32::MAX))), SIMULCAST3, Some(0)),
            ("auto unknown sizes", selector(Auto, Some((640, 360))), UNKNOWN3, Some(0)),
            ("auto unknown, no limits", selector(Auto, None), UNKNOWN3, Some(2)),
            (
                "auto skips unknown layer",
                selector(Auto, Some((1280, 720))),
                &[Some((320, 180)), None, Some((1280, 720))],
                Some(2),
            ),
            ("no layers", selector(High, None), &[], None),
            ("paused", LayerSelector { paused: true, ..selector(High, None) }, SIMULCAST3, None),
        ];
        for (name, selector, layers, expected) in cases {
            assert_eq!(selector.preferred(layers), *expected, "{name}");
            assert_eq!(selector.target(layers, LayerSet::ALL, None), *expected, "{name}");
        }
    }

    #[test]
    fn activity_and_bandwidth_move_the_target() {
        let only = |layers: &[u8]| layers.iter().copied().collect::<LayerSet>();
        let cases: &[TargetCase] = &[
            ("all active", High, LayerSet::ALL, None, Some(2)),
            ("top inactive: next below", High, only(&[0, 1]), None, Some(1)),
            ("only lowest active", High, only(&[0]), None, Some(0)),
            ("below inactive: nearest above", Low, only(&[2]), None, Some(2)),
            ("medium, middle inactive: below first", Medium, only(&[0, 2]), None, Some(0)),
            ("nothing active", High, LayerSet::EMPTY, None, None),
            ("bandwidth cap lowers", High, LayerSet::ALL, Some(0), Some(0)),
            ("bandwidth cap above preference", Low, LayerSet::ALL, Some(2), Some(0)),
            ("cap then activity below", High, only(&[0, 2]), Some(1), Some(0)),
            ("cap with nothing below: above", High, only(&[2]), Some(1), Some(2)),
            ("cap beyond layer count", High, LayerSet::ALL, Some(9), Some(2)),
        ];
        for (name, preference, active, cap, expected) in cases {
            let got = selector(*preference, None).target(SIMULCAST3, *active, *cap);
            assert_eq!(got, *expected, "{name}");
        }
    }

    #[test]
    fn from_settings_copies_every_field() {
        let settings = SubscriptionSettings {
            track_id: "TR_1".into(),
            layer: Medium,
            max_width: Some(640),
            max_height: None,
            paused: true,
        };
        let selector = LayerSelector::from_settings(&settings);
        assert_eq!(
            selector,
            LayerSelector { preference: Medium, max_width: Some(640), max_height: None, paused: true }
        );
    }

    #[test]
    fn layer_set_operations() {
        assert_eq!(LayerSet::first(0), LayerSet::EMPTY);
        assert_eq!(LayerSet::first(3), [0, 1, 2].into_iter().collect());
        assert_eq!(LayerSet::first(20), LayerSet::ALL);
        assert!(!LayerSet::ALL.contains(8));
        assert_eq!(LayerSet::EMPTY.with(200), LayerSet::EMPTY);
        assert!(!LayerSet::ALL.without(1).contains(1));
        let low_high: LayerSet = [0, 2].into_iter().collect();
        assert_eq!(low_high.union(LayerSet::EMPTY.with(1)), LayerSet::first(3));
        assert_eq!(low_high.highest(), Some(2));
        assert_eq!(LayerSet::EMPTY.highest(), None);
        assert!(LayerSet::EMPTY.is_empty() && !low_high.is_empty());
    }
}

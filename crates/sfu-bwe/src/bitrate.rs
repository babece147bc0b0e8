//! [`Bitrate`]: bits per second as a newtype, so rates and byte counts never mix by accident.

use std::fmt;
use std::ops::{Add, Mul, Sub};
use std::time::Duration;

/// A rate in bits per second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bitrate(u64);

impl Bitrate {
    /// No rate at all.
    pub const ZERO: Bitrate = Bitrate(0);
    /// The largest representable rate; used as "no limit".
    pub const MAX: Bitrate = Bitrate(u64::MAX);

    /// A rate of `bps` bits per second.
    pub const fn bps(bps: u64) -> Self {
        Bitrate(bps)
    }

    /// A rate of `kbps` kilobits (1000 bits) per second.
    pub const fn kbps(kbps: u64) -> Self {
        Bitrate(kbps * 1_000)
    }

    /// A rate of `mbps` megabits (10^6 bits) per second.
    pub const fn mbps(mbps: u64) -> Self {
        Bitrate(mbps * 1_000_000)
    }

    /// A rate from a float number of bits per second; negative and NaN become zero.
    pub fn from_f64(bps: f64) -> Self {
        if bps.is_nan() || bps <= 0.0 {
            Bitrate(0)
        } else if bps >= u64::MAX as f64 {
            Bitrate::MAX
        } else {
            Bitrate(bps.round() as u64)
        }
    }

    /// The rate at which `bytes` pass in `over`; `None` if `over` is zero.
    pub fn from_bytes(bytes: u64, over: Duration) -> Option<Self> {
        let secs = over.as_secs_f64();
        (secs > 0.0).then(|| Bitrate::from_f64(bytes as f64 * 8.0 / secs))
    }

    /// Bits per second.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Bits per second as a float.
    pub fn as_f64(self) -> f64 {
        self.0 as f64
    }

    /// Megabits per second as a float (for reports and plots).
    pub fn as_mbps(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// How many bytes this rate moves in `d`.
    pub fn bytes_in(self, d: Duration) -> f64 {
        self.0 as f64 * d.as_secs_f64() / 8.0
    }

    /// How long this rate takes to move `bytes`; `None` for a zero rate.
    pub fn time_for(self, bytes: usize) -> Option<Duration> {
        (self.0 > 0).then(|| Duration::from_secs_f64(bytes as f64 * 8.0 / self.0 as f64))
    }
}

impl Mul<f64> for Bitrate {
    type Output = Bitrate;
    fn mul(self, rhs: f64) -> Bitrate {
        Bitrate::from_f64(self.0 as f64 * rhs)
    }
}

impl Add for Bitrate {
    type Output = Bitrate;
    fn add(self, rhs: Bitrate) -> Bitrate {
        Bitrate(self.0.saturating_add(rhs.0))
    }
}

impl Sub for Bitrate {
    type Output = Bitrate;
    /// Saturates at zero.
    fn sub(self, rhs: Bitrate) -> Bitrate {
        Bitrate(self.0.saturating_sub(rhs.0))
    }
}

impl fmt::Display for Bitrate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0 as f64;
        if v >= 1e6 {
            write!(f, "{:.3} Mbit/s", v / 1e6)
        } else if v >= 1e3 {
            write!(f, "{:.1} kbit/s", v / 1e3)
        } else {
            write!(f, "{} bit/s", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        let cases: &[(Bitrate, u64)] = &[
            (Bitrate::bps(7), 7),
            (Bitrate::kbps(300), 300_000),
            (Bitrate::mbps(2), 2_000_000),
            (Bitrate::from_f64(-5.0), 0),
            (Bitrate::from_f64(f64::NAN), 0),
            (Bitrate::from_f64(1499.6), 1500),
            (Bitrate::kbps(100) * 0.85, 85_000),
            (Bitrate::kbps(100) - Bitrate::kbps(200), 0),
            (Bitrate::kbps(1) + Bitrate::bps(1), 1001),
        ];
        for (i, (got, want)) in cases.iter().enumerate() {
            assert_eq!(got.as_u64(), *want, "case {i}");
        }
    }

    #[test]
    fn bytes_and_time() {
        let r = Bitrate::mbps(1);
        assert_eq!(r.bytes_in(Duration::from_millis(8)), 1000.0);
        assert_eq!(r.time_for(1250), Some(Duration::from_millis(10)));
        assert_eq!(Bitrate::ZERO.time_for(1), None);
        assert_eq!(Bitrate::from_bytes(125_000, Duration::from_secs(1)), Some(Bitrate::mbps(1)));
        assert_eq!(Bitrate::from_bytes(1, Duration::ZERO), None);
    }

    #[test]
    fn display() {
        assert_eq!(Bitrate::kbps(2500).to_string(), "2.500 Mbit/s");
        assert_eq!(Bitrate::kbps(300).to_string(), "300.0 kbit/s");
        assert_eq!(Bitrate::bps(12).to_string(), "12 bit/s");
    }
}

//! Whether a client still wants its connection (RFC 7675 consent freshness, seen from an ICE-lite
//! server).
//!
//! The server is ICE-lite: it never sends checks of its own, so it cannot refresh consent
//! itself; it can only notice that the client went quiet. Anything authenticated that arrives
//! from a validated address counts: STUN checks that pass MESSAGE-INTEGRITY, SRTP and SRTCP
//! that decrypt, DTLS. Clients refresh at very different paces (Chromium every few seconds,
//! aiortc every ~5 s, libnice keepalives every ~25 s), and media alone proves a publisher is
//! there, so a connection lapses only after [`CONSENT_TIMEOUT`] of silence, the time RFC 7675
//! gives consent. The ICE agent's own disconnected and failed timers, which count STUN only,
//! are turned off (see `peer_factory`): they flapped on clients that check rarely.
//!
//! The timer is lazy: hearing from the client only stores an instant, and the deadline the
//! shard sleeps on moves when it passes, so a busy connection costs no timer updates.

use std::time::{Duration, Instant};

/// Silence after which a connection has lapsed (RFC 7675 section 5.1).
pub(crate) const CONSENT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a consent deadline passing means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConsentCheck {
    /// The client was heard from since: nothing changes.
    Fresh,
    /// Nothing for [`CONSENT_TIMEOUT`]: stop sending, tell the control plane.
    Lapsed,
}

#[derive(Debug)]
pub(crate) struct Consent {
    last_heard: Instant,
    /// When to look again; `None` once lapsed (until heard from again).
    check_at: Option<Instant>,
}

impl Consent {
    /// A connection made at `now` has until `now + CONSENT_TIMEOUT` to be heard from.
    pub fn new(now: Instant) -> Self {
        Self { last_heard: now, check_at: Some(now + CONSENT_TIMEOUT) }
    }

    /// Something authenticated arrived. Returns true when this revives a lapsed connection.
    pub fn on_heard(&mut self, now: Instant) -> bool {
        self.last_heard = self.last_heard.max(now);
        if self.check_at.is_none() {
            self.check_at = Some(self.last_heard + CONSENT_TIMEOUT);
            return true;
        }
        false
    }

    /// When [`Self::on_timeout`] must run next.
    pub fn deadline(&self) -> Option<Instant> {
        self.check_at
    }

    /// Runs when the deadline passed (it may be called early or late; it looks at `now`).
    pub fn on_timeout(&mut self, now: Instant) -> ConsentCheck {
        let Some(check_at) = self.check_at else { return ConsentCheck::Fresh };
        if now < check_at {
            return ConsentCheck::Fresh;
        }
        let expires = self.last_heard + CONSENT_TIMEOUT;
        if now >= expires {
            self.check_at = None;
            ConsentCheck::Lapsed
        } else {
            self.check_at = Some(expires);
            ConsentCheck::Fresh
        }
    }

    #[cfg(test)]
    pub fn is_lapsed(&self) -> bool {
        self.check_at.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_client_heard_every_25_s_never_lapses() {
        let t0 = Instant::now();
        let mut consent = Consent::new(t0);
        let mut t = t0;
        for _ in 0..20 {
            t += secs(25);
            consent.on_heard(t);
            while let Some(at) = consent.deadline().filter(|at| *at <= t) {
                assert_eq!(consent.on_timeout(at), ConsentCheck::Fresh);
            }
        }
        assert!(!consent.is_lapsed());
        // The deadline moved only when it passed, never past 30 s after the last word.
        let deadline = consent.deadline().unwrap();
        assert!(deadline > t && deadline <= t + CONSENT_TIMEOUT, "{:?}", deadline - t);
    }

    #[test]
    fn thirty_seconds_of_silence_lapse_once_and_a_word_revives() {
        let t0 = Instant::now();
        let mut consent = Consent::new(t0);
        consent.on_heard(t0 + secs(10));
        assert_eq!(consent.on_timeout(t0 + secs(30)), ConsentCheck::Fresh);
        assert_eq!(consent.deadline(), Some(t0 + secs(40)));
        assert_eq!(consent.on_timeout(t0 + secs(39)), ConsentCheck::Fresh, "early: nothing");
        assert_eq!(consent.on_timeout(t0 + secs(40)), ConsentCheck::Lapsed);
        assert!(consent.is_lapsed());
        assert_eq!(consent.deadline(), None);
        assert_eq!(consent.on_timeout(t0 + secs(50)), ConsentCheck::Fresh, "lapses only once");
        assert!(consent.on_heard(t0 + secs(60)), "revived");
        assert!(!consent.on_heard(t0 + secs(61)));
        assert_eq!(consent.deadline(), Some(t0 + secs(90)));
    }

    #[test]
    fn a_connection_never_heard_from_lapses_after_the_timeout() {
        let t0 = Instant::now();
        let mut consent = Consent::new(t0);
        assert_eq!(consent.deadline(), Some(t0 + CONSENT_TIMEOUT));
        assert_eq!(consent.on_timeout(t0 + CONSENT_TIMEOUT), ConsentCheck::Lapsed);
    }
}

//! What a worker tells the reporter: its gauges and counters every quarter second, and each
//! subscriber's totals at the end.

use super::*;

/// The receive totals and end-of-run summaries of subscriber connections already closed, so the
/// worker's counters stay cumulative when subscribers leave during a run (churn) and their
/// slots are reused.
#[derive(Default)]
pub(super) struct Retired {
    expected: u64,
    missing: u64,
    duplicates: u64,
    video_expected: u64,
    video_missing: u64,
    summaries: Vec<SubscriberSummary>,
}

impl Retired {
    pub(super) fn add(&mut self, conn: &Conn) {
        let Some(summary) = summary_of(conn) else { return };
        if let Some(sub) = conn.subscriber.as_ref() {
            for stream in sub.streams.values() {
                self.expected += stream.expected();
                self.missing += stream.missing();
                self.duplicates += stream.duplicates;
                if stream.video {
                    self.video_expected += stream.expected();
                    self.video_missing += stream.missing();
                }
            }
        }
        self.summaries.push(summary);
    }
}

fn summary_of(conn: &Conn) -> Option<SubscriberSummary> {
    let sub = conn.subscriber.as_ref()?;
    let (mut received, mut expected, mut missing) = (0, 0, 0);
    for s in sub.streams.values() {
        received += s.received;
        expected += s.expected();
        missing += s.missing();
    }
    Some(SubscriberSummary {
        conn: conn.id,
        connected: conn.ever_connected,
        join_ms: sub.first_media.map(|t| t.duration_since(sub.t0).as_secs_f64() * 1000.0),
        received,
        expected,
        missing,
        keyframe: sub.keyframe,
    })
}

impl Worker {
    pub(super) fn update_gauges(&mut self, now: Instant) {
        let mut s = (0, 0, 0, 0, 0, 0, 0, 0);
        let (mut video_expected, mut video_missing) = (0, 0);
        let mut receiving = 0;
        for conn in &mut self.conns {
            if conn.closed {
                continue;
            }
            match conn.role {
                Role::Publisher => {
                    if conn.connected {
                        s.0 += 1;
                    }
                }
                Role::Subscriber => {
                    if conn.connected {
                        s.1 += 1;
                    }
                    if conn.failed {
                        s.2 += 1;
                    }
                    if let Some(sub) = conn.subscriber.as_mut() {
                        if sub.first_media.is_some() {
                            s.3 += 1;
                        }
                        if sub.last_media.is_some_and(|t| now.duration_since(t) <= Duration::from_secs(1)) {
                            receiving += 1;
                        }
                        if sub.keyframe {
                            s.4 += 1;
                        }
                        for stream in sub.streams.values_mut() {
                            s.5 += stream.expected();
                            s.6 += stream.missing();
                            s.7 += stream.duplicates;
                            if stream.video {
                                video_expected += stream.expected();
                                video_missing += stream.missing();
                            }
                        }
                    }
                }
            }
        }
        let r = &self.retired;
        (s.5, s.6, s.7) = (s.5 + r.expected, s.6 + r.missing, s.7 + r.duplicates);
        (video_expected, video_missing) = (video_expected + r.video_expected, video_missing + r.video_missing);
        self.stats.subscribers_receiving = receiving;
        self.stats.publishers_connected = s.0;
        self.stats.subscribers_connected = s.1;
        self.stats.subscribers_failed = s.2;
        self.stats.subscribers_with_media = s.3;
        self.stats.subscribers_with_keyframe = s.4;
        self.stats.rx_expected = s.5;
        self.stats.rx_missing = s.6;
        self.stats.rx_duplicates = s.7;
        self.stats.rx_video_expected = video_expected;
        self.stats.rx_video_missing = video_missing;
    }

    pub(super) fn publish(&mut self, now: Instant) {
        self.update_gauges(now);
        let wall = now.duration_since(self.last_publish);
        self.last_publish = now;
        let Ok(mut shared) = self.shared.lock() else { return };
        // Cumulative counters are replaced; the per-interval parts accumulate until the
        // reporter takes them.
        let latency = std::mem::take(&mut shared.latency);
        let joins = std::mem::take(&mut shared.joins_ms);
        let (busy, prev_wall, late) = (shared.busy, shared.wall, shared.timer_late_max);
        let mut fresh_joins = std::mem::take(&mut self.stats.joins_ms);
        *shared = self.stats.clone();
        shared.latency = latency;
        shared.latency.merge(&self.interval_latency);
        shared.joins_ms = joins;
        shared.joins_ms.append(&mut fresh_joins);
        shared.busy = busy + self.busy;
        shared.wall = prev_wall + wall;
        shared.timer_late_max = late.max(self.timer_late_max);
        shared.at = Some(now);
        self.interval_latency.clear();
        self.busy = Duration::ZERO;
        self.timer_late_max = Duration::ZERO;
    }

    pub(super) fn final_report(&mut self) -> FinalReport {
        let mut stats = self.stats.clone();
        stats.latency = Histogram::default();
        // Closed connections' summaries were kept when they closed (every one has by now).
        let mut subscribers = self.retired.summaries.clone();
        subscribers.extend(self.conns.iter().filter(|c| !c.closed).filter_map(summary_of));
        FinalReport { stats, subscribers }
    }
}

//! RTCP sender reports for the streams a subscriber receives. The shard writes their RTP itself
//! (see `outbound`), so the stack's report interceptor never sees it; the reports are built here
//! from the down tracks' counters and handed to the stack, which protects and sends RTCP.
//! Browsers need them to line up a publisher's audio and video.

use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::rtcp::sender_report::SenderReport;
use rtc::sansio::Protocol;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::ShardCore;
use crate::ConnId;
use crate::shard::conn::Role;
use crate::shard::down_track::DownTrack;

/// How often each stream is reported (what browsers do for the streams they send).
pub(crate) const SENDER_REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

impl ShardCore {
    /// Sends the connection's sender reports if they are due, and schedules the next ones.
    pub(in crate::shard) fn on_sender_report_timeout(&mut self, id: ConnId, now: Instant) {
        let ntp_time = ntp_timestamp(self.wall_clock_at(now));
        let Some(conn) = self.conns.get_mut(&id) else { return };
        let Role::Subscriber(subscriber) = &mut conn.role else { return };
        if subscriber.sender_report_at.is_none_or(|at| at > now) {
            return;
        }
        subscriber.sender_report_at = Some(now + SENDER_REPORT_INTERVAL);
        let reports: Vec<Box<dyn rtc::rtcp::Packet>> = subscriber
            .subscribed
            .iter()
            .filter_map(|key| self.fanouts.get(key)?.get(id))
            .filter_map(|subscription| sender_report(&subscription.down, ntp_time, now))
            .map(|report| Box::new(report) as Box<dyn rtc::rtcp::Packet>)
            .collect();
        if reports.is_empty() {
            return;
        }
        let message = TaggedRTCMessage { now, message: RTCMessage::RtcpPacket(String::new(), reports) };
        if let Err(e) = conn.pc.handle_write(message) {
            tracing::debug!(conn = id.0, error = %e, "sender reports not sent");
        }
        self.mark_dirty(id);
    }
}

/// The report of one stream, or None before its first packet. Its RTP time is where the
/// stream's clock stands `now`: the newest frame's timestamp, advanced by the time since its
/// first packet went out.
fn sender_report(down: &DownTrack, ntp_time: u64, now: Instant) -> Option<SenderReport> {
    let (timestamp, sent_at) = down.clock_anchor?;
    let elapsed = now.saturating_duration_since(sent_at);
    let ticks = (elapsed.as_micros() as u64).saturating_mul(down.clock_rate as u64) / 1_000_000;
    Some(SenderReport {
        ssrc: down.ssrc,
        ntp_time,
        rtp_time: timestamp.wrapping_add(ticks as u32),
        packet_count: down.sent_packets,
        octet_count: down.sent_octets,
        ..Default::default()
    })
}

/// A wall-clock time as a 64-bit NTP timestamp (seconds since 1900 . fraction).
fn ntp_timestamp(time: SystemTime) -> u64 {
    let since_unix = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_unix.as_secs() + NTP_UNIX_OFFSET;
    let fraction = ((since_unix.subsec_nanos() as u64) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_timestamps_count_from_1900_with_a_binary_fraction() {
        let half_past = UNIX_EPOCH + Duration::from_millis(1_500);
        assert_eq!(ntp_timestamp(half_past), ((NTP_UNIX_OFFSET + 1) << 32) | (1 << 31));
    }
}

//! A subscriber's bandwidth estimate, from the transport-cc feedback of its own stack, pauses
//! its video when its link cannot carry even the lowest layer, says why, and resumes it when the
//! link recovers.
//!
//! The link is a bottleneck in front of the subscriber (see `harness`): 100 kbit/s with a 300 ms
//! buffer, room for its audio but not for the 150 kbit/s lowest video layer.

use sfu_core::PauseReason;
use std::time::{Duration, Instant};

use super::codecs::PT_RTX;
use super::harness::{Net, Options};
use super::session::{Publisher, Subscriber};
use crate::api::MediaEvent;

const SLOW_LINK_BPS: u64 = 100_000;
const SLOW_LINK_BUFFER: Duration = Duration::from_millis(300);

/// A publisher (with a microphone or not) on shard 0, a subscriber on shard 1 watching its top
/// layer with an estimate that has settled.
fn call(with_audio: bool) -> (Net, Publisher, Subscriber) {
    let mut net = Net::new(2, Options { estimate_bandwidth: true, ..Options::default() });
    let publisher = if with_audio { net.publish_with_audio(0, "alice") } else { net.publish(0, "alice") };
    net.run_for(Duration::from_secs(1));
    let bob = net.subscribe(1, "bob", &publisher);
    net.run_for(Duration::from_secs(4));
    assert_eq!(net.core(1).forwarding(bob.conn, publisher.key()), Some((Some(2), Some(2))), "on the top layer");
    (net, publisher, bob)
}

/// The stream states the subscriber's shard reported for the camera since `since`.
fn stream_states(net: &Net, publisher: &Publisher, bob: &Subscriber, since: Instant) -> Vec<Option<PauseReason>> {
    net.shards[bob.conn.shard()]
        .events
        .iter()
        .filter(|(at, _)| *at >= since)
        .filter_map(|(_, event)| match event {
            MediaEvent::StreamState { conn, key, paused } if *conn == bob.conn && *key == publisher.key() => {
                Some(*paused)
            }
            _ => None,
        })
        .collect()
}

/// Slows bob's link until his video is paused for bandwidth, for `outage` in all.
fn outage(net: &mut Net, publisher: &Publisher, bob: &Subscriber, outage: Duration) -> Instant {
    let addr = net.client(bob.client).addr;
    let slowed = net.now;
    net.set_bottleneck(addr, SLOW_LINK_BPS, SLOW_LINK_BUFFER);
    net.run_until("the video is paused for bandwidth", Duration::from_secs(3), |net| {
        stream_states(net, publisher, bob, slowed) == [Some(PauseReason::Bandwidth)]
    });
    let paused = net.now;
    net.run_for(outage.saturating_sub(paused - slowed));
    net.clear_bottleneck(addr);
    paused
}

/// The newest video packet bob's stack delivered that the publisher wrote, by frame.
fn newest_frame(net: &Net, bob: &Subscriber) -> Option<u32> {
    net.client(bob.client).received.iter().filter_map(|r| r.origin).map(|o| o.frame).max()
}

#[test]
fn a_link_too_slow_for_any_layer_pauses_video_and_says_why() {
    let (mut net, publisher, bob) = call(true);
    let paused = outage(&mut net, &publisher, &bob, Duration::from_secs(3));
    assert!(net.core(1).estimate_of(bob.conn).is_some_and(|bps| bps < 150_000), "the estimate fell");
    assert_eq!(net.core(1).forwarding(bob.conn, publisher.key()).map(|(_, target)| target), Some(None));

    // What was queued before the pause drains; then no new video, while audio goes on.
    let drained = paused + SLOW_LINK_BUFFER + Duration::from_millis(100);
    let frame_then = net.client(bob.client).received.iter().filter(|r| r.at <= drained).filter_map(|r| r.origin);
    let frame_then = frame_then.map(|o| o.frame).max();
    let client = net.client(bob.client);
    let later = client.received.iter().filter(|r| r.at > drained);
    assert!(later.clone().filter_map(|r| r.origin).all(|o| Some(o.frame) <= frame_then), "no new video once paused");
    assert!(later.filter(|r| r.origin.is_none()).count() > 50, "audio still flows");
}

#[test]
fn video_paused_for_a_moment_resumes_when_the_link_recovers() {
    let (mut net, publisher, bob) = call(true);
    let paused = outage(&mut net, &publisher, &bob, Duration::from_secs(1));
    let healed = net.now;
    let frame_at_heal = newest_frame(&net, &bob);

    net.run_until("the video resumes", Duration::from_secs(5), |net| {
        stream_states(net, &publisher, &bob, paused) == [Some(PauseReason::Bandwidth), None]
    });
    net.run_until("new video arrives", Duration::from_secs(1), |net| newest_frame(net, &bob) > frame_at_heal);
    let first_new = net
        .client(bob.client)
        .received
        .iter()
        .find(|r| r.at > healed && r.origin.is_some_and(|o| Some(o.frame) > frame_at_heal));
    assert!(first_new.is_some_and(|r| r.keyframe), "the video starts again at a keyframe");
    net.run_until("back on the top layer", Duration::from_secs(15), |net| {
        net.core(1).forwarding(bob.conn, publisher.key()) == Some((Some(2), Some(2)))
    });
}

/// A pause longer than the fan-out's payload ring (1024 packets, some 3 s of a three-layer
/// track) leaves probe bursts no packet of the down track's history to copy; they send
/// padding-only packets on its RTX stream instead, which the subscriber's stack counts in its
/// transport-cc feedback and drops. Without them the estimate could grow only by AIMD, capped
/// near the acknowledged audio rate: below the lowest layer, so the video would stay paused.
#[test]
fn video_paused_for_long_resumes_when_the_link_recovers() {
    let (mut net, publisher, bob) = call(true);
    let paused = outage(&mut net, &publisher, &bob, Duration::from_secs(8));
    let healed = net.now;
    net.run_until("the video resumes", Duration::from_secs(15), |net| {
        stream_states(net, &publisher, &bob, paused) == [Some(PauseReason::Bandwidth), None]
    });
    let client = net.client(bob.client);
    let rtx = client.arrivals.iter().filter(|a| a.at > healed && a.payload_type == PT_RTX).count();
    assert!(rtx >= 5, "probe packets reached the subscriber on the RTX stream ({rtx})");
    let empty = client.received.iter().filter(|r| r.at > healed && r.payload.is_empty()).count();
    assert_eq!(empty, 0, "the subscriber's stack dropped the padding instead of handing it over");
}

/// A subscriber that receives nothing but the paused video gets nothing at all, so no
/// transport-cc feedback comes back. Its estimator's last verdict (overuse, 90 % loss) goes stale
/// after two seconds without anything sent or acknowledged; then probes (padding on the RTX
/// stream) find the healthy link and the video resumes.
#[test]
fn a_video_only_subscriber_resumes_when_the_link_recovers() {
    let (mut net, publisher, bob) = call(false);
    let paused = outage(&mut net, &publisher, &bob, Duration::from_secs(1));
    net.run_until("the video resumes", Duration::from_secs(15), |net| {
        stream_states(net, &publisher, &bob, paused) == [Some(PauseReason::Bandwidth), None]
    });
}

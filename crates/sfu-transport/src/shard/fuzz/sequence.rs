//! Shard cores under arbitrary sequences of what clients and the control plane do, on the
//! virtual network of the scenario tests: real ICE, DTLS and SRTP clients, so what the fuzzer
//! chooses (RTP headers and payloads, RTCP, raw datagrams, subscription changes, joins, leaves,
//! congestion) reaches the code behind the decryption. At the end everyone leaves, and no shard
//! may hold anything of anyone.

use arbitrary::Unstructured;
use bytes::Bytes;
use sfu_proto::LayerPreference;
use std::time::Duration;

use crate::shard::command::Command;
use crate::shard::core::tests::harness::{Net, Options};
use crate::shard::core::tests::session::{Publisher, Subscriber, wanting};
use crate::shard::core::tests::source::RawRtp;

const SHARDS: usize = 2;
/// Bounds one input's work: operations, the virtual time one may run, and in all (a virtual
/// second of a call costs milliseconds; the fuzzer wants thousands of inputs a minute).
const MAX_OPS: usize = 32;
const MAX_RUN: Duration = Duration::from_millis(800);
const MAX_VIRTUAL_TIME: Duration = Duration::from_secs(8);
const MAX_SUBSCRIBERS: usize = 4;

struct Room {
    net: Net,
    publisher: Publisher,
    publisher_open: bool,
    /// (shard, subscriber, still open)
    subscribers: Vec<(usize, Subscriber, bool)>,
}

pub fn shard_sequence(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let options = Options { estimate_bandwidth: true, dynacast: true, ..Options::default() };
    let mut net = Net::new(SHARDS, options);
    let publisher = net.publish_with_audio(0, "pub");
    let first = net.subscribe(1, "sub0", &publisher);
    let mut room = Room { net, publisher, publisher_open: true, subscribers: vec![(1, first, true)] };
    let start = room.net.now;
    for _ in 0..MAX_OPS {
        if u.is_empty() || room.net.now - start > MAX_VIRTUAL_TIME || room.step(&mut u).is_err() {
            break;
        }
    }
    room.everyone_leaves();
}

impl Room {
    fn step(&mut self, u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
        let key = self.publisher.key();
        match u.int_in_range(0..=11u8)? {
            0 => self.net.run_for(Duration::from_millis(u.int_in_range(1..=MAX_RUN.as_millis() as u64)?)),
            1 if self.publisher_open => {
                let raw = RawRtp {
                    layer: u.int_in_range(0..=2)?,
                    seq: u.arbitrary()?,
                    timestamp: u.arbitrary()?,
                    marker: u.arbitrary()?,
                    rid: u.arbitrary::<Option<Vec<u8>>>()?.map(Bytes::from),
                    payload: Bytes::from(u.arbitrary::<Vec<u8>>()?),
                };
                let now = self.net.now;
                self.net.client_mut(self.publisher.client).send_raw_rtp(raw, now);
                self.net.flush();
            }
            2 => {
                let client = self.some_subscriber(u)?.1.client;
                let bytes = u.arbitrary::<Vec<u8>>()?;
                if let Ok(packets) = rtc::rtcp::packet::unmarshal(&mut Bytes::from(bytes)) {
                    let now = self.net.now;
                    self.net.client_mut(client).try_send_rtcp(packets, now);
                    self.net.flush();
                }
            }
            3 => {
                // Any bytes from a client's own (validated) address, or from a stranger's.
                let from = if u.arbitrary()? {
                    self.net.client(self.publisher.client).addr
                } else {
                    std::net::SocketAddr::from(([10, 9, 9, 9], u.arbitrary()?))
                };
                let to = self.net.shards[u.int_in_range(0..=SHARDS - 1)?].addr;
                self.net.inject(from, to, Bytes::from(u.arbitrary::<Vec<u8>>()?));
            }
            4 => {
                let (shard, conn) = {
                    let (shard, s, _) = self.some_subscriber(u)?;
                    (*shard, s.conn)
                };
                let mut settings = wanting(key);
                settings.layer = *u.choose(&[
                    LayerPreference::Low,
                    LayerPreference::Medium,
                    LayerPreference::High,
                    LayerPreference::Auto,
                ])?;
                settings.max_width = u.arbitrary()?;
                settings.max_height = u.arbitrary()?;
                settings.paused = u.ratio(1, 4)?;
                self.net.set_subscription(shard, conn, key, settings);
            }
            5 if self.publisher_open => {
                let (layer, sending) = (u.int_in_range(0..=2)?, u.arbitrary()?);
                self.net.client_mut(self.publisher.client).set_sending(layer, sending);
            }
            6 => self.net.tell(0, Command::SetMuted { key, muted: u.arbitrary()? }),
            7 => {
                let shard = u.int_in_range(0..=SHARDS - 1)?;
                let bytes = u.int_in_range(0..=8_000_000usize)?;
                self.net.report_backlog(shard, bytes);
            }
            8 => {
                let to = self.net.client(self.some_subscriber(u)?.1.client).addr;
                let rate = u.int_in_range(20_000..=5_000_000u64)?;
                self.net.set_bottleneck(to, rate, Duration::from_millis(u.int_in_range(10..=500)?));
            }
            9 if self.publisher_open && self.open_subscribers() < MAX_SUBSCRIBERS => {
                let shard = u.int_in_range(0..=SHARDS - 1)?;
                let name = format!("sub{}", self.subscribers.len());
                let subscriber = self.net.subscribe(shard, &name, &self.publisher);
                self.subscribers.push((shard, subscriber, true));
            }
            10 => {
                let index = u.choose_index(self.subscribers.len())?;
                let (shard, subscriber, open) = &mut self.subscribers[index];
                if *open {
                    *open = false;
                    let (shard, conn) = (*shard, subscriber.conn);
                    self.net.close(shard, conn);
                }
            }
            11 if self.publisher_open && u.ratio(1, 8)? => {
                self.publisher_open = false;
                self.net.close(0, self.publisher.conn);
            }
            _ => {}
        }
        Ok(())
    }

    fn some_subscriber(&self, u: &mut Unstructured<'_>) -> arbitrary::Result<&(usize, Subscriber, bool)> {
        Ok(&self.subscribers[u.choose_index(self.subscribers.len())?])
    }

    fn open_subscribers(&self) -> usize {
        self.subscribers.iter().filter(|(_, _, open)| *open).count()
    }

    /// Everyone leaves; a second later no shard knows any of them or the tracks.
    fn everyone_leaves(mut self) {
        if self.publisher_open {
            self.net.close(0, self.publisher.conn);
        }
        for (shard, subscriber, open) in &self.subscribers {
            if *open {
                self.net.close(*shard, subscriber.conn);
            }
        }
        self.net.run_for(Duration::from_secs(1));
        let keys = [Some(self.publisher.key()), self.publisher.audio.as_ref().map(|a| a.key)];
        let conns = std::iter::once(self.publisher.conn).chain(self.subscribers.iter().map(|(_, s, _)| s.conn));
        for conn in conns {
            for shard in 0..SHARDS {
                let traces = self.net.core(shard).traces_of(conn);
                assert!(traces.is_empty(), "shard {shard} still holds {conn:?} in {traces:?}");
            }
        }
        for key in keys.into_iter().flatten() {
            for shard in 0..SHARDS {
                let traces = self.net.core(shard).traces_of_track(key);
                assert!(traces.is_empty(), "shard {shard} still holds track {key:?} in {traces:?}");
            }
        }
    }
}

//! The demultiplexer under arbitrary datagrams and bookkeeping calls: routes stay consistent
//! with what was validated (over UDP and ICE-TCP remotes alike, closed TCP paths forgotten), and
//! nothing is routed to a removed connection.

use arbitrary::Unstructured;
use std::collections::HashSet;
use std::net::SocketAddr;

use crate::ConnId;
use crate::remote::Remote;
use crate::shard::demux::{Demux, MAX_PATHS_PER_CONN, Route};

const UFRAGS: [&str; 4] = ["abcd", "efgh", "ijkl", "mnop"];

/// A remote among a few addresses, each over UDP or TCP (the same address over both is two
/// remotes).
fn addr(u: &mut Unstructured<'_>) -> arbitrary::Result<Remote> {
    let host: u8 = u.int_in_range(1..=6)?;
    let port: u16 = u.int_in_range(5000..=5003)?;
    let addr = SocketAddr::from(([10, 0, 0, host], port));
    Ok(if u.ratio(1, 4)? { Remote::tcp(addr) } else { Remote::udp(addr) })
}

/// A STUN message of the given class naming `ufrag`, or the fuzzer's own bytes.
fn datagram(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    if u.ratio(1, 2)? {
        return u.arbitrary::<Vec<u8>>();
    }
    let class: u16 = *u.choose(&[0x0001, 0x0101, 0x0111, 0x0011])?;
    let username = format!("{}:{}", u.choose(&UFRAGS)?, u.arbitrary::<&str>()?);
    let padded = username.len().div_ceil(4) * 4;
    let mut m = Vec::with_capacity(24 + padded);
    m.extend_from_slice(&class.to_be_bytes());
    m.extend_from_slice(&((4 + padded) as u16).to_be_bytes());
    m.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    m.extend_from_slice(u.bytes(12)?);
    m.extend_from_slice(&[0x00, 0x06]);
    m.extend_from_slice(&(username.len() as u16).to_be_bytes());
    m.extend_from_slice(username.as_bytes());
    m.resize(20 + 4 + padded, 0);
    Ok(m)
}

/// Arbitrary calls on one demultiplexer, checking after each that every route agrees with it.
pub fn demux(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut demux = Demux::default();
    let mut removed: HashSet<ConnId> = HashSet::new();
    for _ in 0..256 {
        let Ok(op) = u.int_in_range(0..=5u8) else { break };
        let Ok(conn) = u.int_in_range(1..=4u64).map(|n| ConnId::new(0, n)) else { break };
        let step = match op {
            0 => u.choose(&UFRAGS).map(|ufrag| {
                demux.set_ufrag(conn, ufrag);
                removed.remove(&conn);
            }),
            1 => addr(&mut u).map(|a| {
                demux.validate(conn, a);
            }),
            2 => addr(&mut u).and_then(|to| datagram(&mut u).map(|d| demux.on_sent(conn, to, &d))),
            3 => {
                demux.remove(conn);
                removed.insert(conn);
                Ok(())
            }
            4 => addr(&mut u).map(|gone| {
                demux.forget(gone);
                for n in 1..=4 {
                    assert!(!demux.addrs(ConnId::new(0, n)).contains(&gone), "{gone} still a path after it closed");
                }
            }),
            _ => addr(&mut u).and_then(|from| datagram(&mut u).map(|d| check_route(&demux, &d, from, &removed))),
        };
        if step.is_err() {
            break;
        }
        for n in 1..=4 {
            let paths = demux.addrs(ConnId::new(0, n));
            assert!(paths.len() <= MAX_PATHS_PER_CONN, "a connection holds {} paths", paths.len());
        }
    }
}

fn check_route(demux: &Demux, datagram: &[u8], from: Remote, removed: &HashSet<ConnId>) {
    let ufrag = crate::stun::local_ufrag(datagram);
    assert!(ufrag.is_none() || crate::stun::is_stun(datagram), "a ufrag read from something not STUN");
    match demux.route(datagram, from) {
        Route::Validated(id) => {
            assert!(demux.addrs(id).contains(&from), "{from} routed to {id:?}, which never validated it");
            assert!(!removed.contains(&id), "routed to removed {id:?}");
        }
        Route::Unvalidated(id) => assert!(!removed.contains(&id), "STUN routed to removed {id:?}"),
        Route::Unroutable => {}
    }
}

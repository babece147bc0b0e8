//! Just enough STUN parsing to route a new connection's first packet: the USERNAME attribute
//! of a binding request is `<our ufrag>:<their ufrag>` (RFC 8445 §7.2.2).

const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const HEADER_LEN: usize = 20;
const ATTR_USERNAME: u16 = 0x0006;

/// True when the datagram looks like STUN (RFC 7983 demultiplexing plus the magic cookie).
pub fn is_stun(packet: &[u8]) -> bool {
    packet.len() >= HEADER_LEN && packet[0] < 4 && packet[4..8] == MAGIC_COOKIE
}

/// A STUN Binding request (what opens every ICE check).
pub fn is_binding_request(packet: &[u8]) -> bool {
    is_stun(packet) && packet[0] == 0x00 && packet[1] == 0x01
}

/// Whether `packet` is a STUN Binding success response (what an ICE agent sends only after a
/// request passed its integrity check).
pub fn is_binding_success(packet: &[u8]) -> bool {
    is_stun(packet) && packet[0] == 0x01 && packet[1] == 0x01
}

/// The local (server-side) ufrag named by a STUN binding request, if any.
pub fn local_ufrag(packet: &[u8]) -> Option<&str> {
    if !is_stun(packet) {
        return None;
    }
    let body_len = u16::from_be_bytes([packet[2], packet[3]]) as usize;
    let body = packet.get(HEADER_LEN..HEADER_LEN + body_len)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[at], body[at + 1]]);
        let len = u16::from_be_bytes([body[at + 2], body[at + 3]]) as usize;
        let value = body.get(at + 4..at + 4 + len)?;
        if kind == ATTR_USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next();
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(username: &[u8]) -> Vec<u8> {
        let padded = username.len().div_ceil(4) * 4;
        let mut p = vec![0x00, 0x01];
        p.extend_from_slice(&((4 + padded) as u16).to_be_bytes());
        p.extend_from_slice(&MAGIC_COOKIE);
        p.extend_from_slice(&[7; 12]);
        p.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        p.extend_from_slice(&(username.len() as u16).to_be_bytes());
        p.extend_from_slice(username);
        p.resize(HEADER_LEN + 4 + padded, 0);
        p
    }

    #[test]
    fn finds_our_ufrag_in_username() {
        assert_eq!(local_ufrag(&binding_request(b"server1:browserX")), Some("server1"));
    }

    #[test]
    fn hostile_or_foreign_packets_yield_nothing() {
        let mut truncated = binding_request(b"abc:def");
        truncated.truncate(26);
        let cases: [&[u8]; 4] = [&[], &[0x80, 0x60, 0, 1], &truncated, &[0u8; 20]];
        for case in cases {
            assert_eq!(local_ufrag(case), None);
        }
        // Declared attribute length larger than the packet.
        let mut lying = binding_request(b"abc:def");
        lying[22] = 0xff;
        assert_eq!(local_ufrag(&lying), None);
    }
}

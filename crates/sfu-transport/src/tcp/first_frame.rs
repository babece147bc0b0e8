//! Which shard a new ICE-TCP connection belongs to, from its first frame.

use super::CloseReason;
use crate::peer_factory::shard_of_ufrag;

/// The shard (of `shards`) that owns the connection whose first frame is `frame`: a STUN Binding
/// request whose USERNAME starts with a ufrag of ours (its first half, RFC 8445 section 7.2.2).
/// Whether the ufrag belongs to a connection, and the request to its client, is for that shard's
/// ICE agent to say.
pub(crate) fn route_first_frame(frame: &[u8], shards: usize) -> Result<usize, CloseReason> {
    if !crate::stun::is_binding_request(frame) {
        return Err(CloseReason::NotStun);
    }
    let ufrag = crate::stun::local_ufrag(frame).ok_or(CloseReason::UnknownUfrag)?;
    shard_of_ufrag(ufrag).filter(|shard| *shard < shards).ok_or(CloseReason::UnknownUfrag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer_factory::IceCredentials;

    fn request(class: [u8; 2], username: &str) -> Vec<u8> {
        let padded = username.len().div_ceil(4) * 4;
        let mut p = vec![class[0], class[1]];
        p.extend_from_slice(&((4 + padded) as u16).to_be_bytes());
        p.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
        p.extend_from_slice(&[5; 12]);
        p.extend_from_slice(&[0x00, 0x06]);
        p.extend_from_slice(&(username.len() as u16).to_be_bytes());
        p.extend_from_slice(username.as_bytes());
        p.resize(20 + 4 + padded, 0);
        p
    }

    #[test]
    fn the_ufrag_of_a_connection_names_its_shard() {
        for shard in [0, 1, 7, 1023] {
            let credentials = IceCredentials::for_shard(shard);
            assert_eq!(credentials.ufrag.len(), 16);
            let check = request([0x00, 0x01], &format!("{}:browserufrag", credentials.ufrag));
            assert_eq!(route_first_frame(&check, 1024), Ok(shard));
        }
    }

    #[test]
    fn anything_else_is_refused_with_its_reason() {
        let ours = IceCredentials::for_shard(3).ufrag;
        let success = request([0x01, 0x01], &format!("{ours}:b"));
        let rtp = [0x80u8, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        let http = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let cases: [(&[u8], usize, CloseReason); 8] = [
            (&success, 8, CloseReason::NotStun),
            (&rtp, 8, CloseReason::NotStun),
            (http, 8, CloseReason::NotStun),
            (&[], 8, CloseReason::NotStun),
            // Shard 3 of a node with 2 shards.
            (&request([0x00, 0x01], &format!("{ours}:b")), 2, CloseReason::UnknownUfrag),
            // Not our form: too short, not hex, or no ufrag at all.
            (&request([0x00, 0x01], "0001:b"), 8, CloseReason::UnknownUfrag),
            (&request([0x00, 0x01], "zz01abcdefgh:b"), 8, CloseReason::UnknownUfrag),
            (&request([0x00, 0x01], ""), 8, CloseReason::UnknownUfrag),
        ];
        for (i, (frame, shards, reason)) in cases.into_iter().enumerate() {
            assert_eq!(route_first_frame(frame, shards), Err(reason), "case {i}");
        }
    }
}

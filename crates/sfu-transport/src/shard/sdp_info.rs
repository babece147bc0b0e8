//! The few facts read straight from an SDP that the rtc stack doesn't expose in a handy form.

use std::collections::HashMap;

/// The receive simulcast rids of each media section, in SDP order, keyed by mid.
pub(crate) fn receive_rids(sdp: &str) -> HashMap<String, Vec<String>> {
    let mut out = HashMap::new();
    for section in sdp.split("\nm=").skip(1) {
        let mut mid = None;
        let mut rids = Vec::new();
        for line in section.lines() {
            let line = line.trim_end();
            if let Some(m) = line.strip_prefix("a=mid:") {
                mid = Some(m.to_owned());
            } else if let Some(rest) = line.strip_prefix("a=rid:") {
                let mut parts = rest.split_whitespace();
                if let (Some(rid), Some("send")) = (parts.next(), parts.next()) {
                    rids.push(rid.to_owned());
                }
            }
        }
        if let Some(mid) = mid {
            out.insert(mid, rids);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_send_rids_per_mid() {
        let sdp = "v=0\r\nm=audio 9 UDP 111\r\na=mid:0\r\nm=video 9 UDP 96\r\na=mid:1\r\na=rid:f send\r\na=rid:h send\r\na=rid:q send\r\na=simulcast:send f;h;q\r\n";
        let rids = receive_rids(sdp);
        assert_eq!(rids["0"], Vec::<String>::new());
        assert_eq!(rids["1"], vec!["f", "h", "q"]);
    }
}

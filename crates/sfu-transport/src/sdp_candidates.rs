//! Tidies the candidate lines of the SDP the server sends: the rtc stack lists its host
//! candidate a second time as component 2 (RTCP) even when RTCP is multiplexed on the RTP port,
//! and could repeat a line. Browsers ignore both; strict clients (libnice, some WHIP tools)
//! try to check a component that never answers. The server is ICE-lite with its candidates
//! all known when it writes an SDP, so each list is closed with `a=end-of-candidates`, which
//! lets a non-trickle WHIP/WHEP client stop waiting for more.

/// `sdp` without repeated `a=candidate` lines within a media section, without component-2
/// candidates in a section that has `a=rtcp-mux`, and with `a=end-of-candidates` after the last
/// candidate of a section that lists any (unless it has one). Everything else, line endings
/// included, is kept as it was.
pub fn tidy_candidates(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    let mut section: Vec<&str> = Vec::new();
    for line in sdp.split_inclusive('\n') {
        if line.starts_with("m=") {
            push_section(&mut out, &section);
            section.clear();
        }
        section.push(line);
    }
    push_section(&mut out, &section);
    out
}

/// Appends one section (the session part or one `m=` section) with its candidates tidied.
fn push_section(out: &mut String, lines: &[&str]) {
    let muxed = lines.iter().any(|l| content(l) == "a=rtcp-mux");
    let ended = lines.iter().any(|l| content(l) == "a=end-of-candidates");
    let last = lines.iter().rposition(|l| content(l).starts_with("a=candidate:"));
    let mut seen: Vec<&str> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let text = content(line);
        let keep = match text.strip_prefix("a=candidate:") {
            Some(candidate) => {
                let duplicate = seen.contains(&text);
                let rtcp_under_mux = muxed && component(candidate) == Some("2");
                !duplicate && !rtcp_under_mux
            }
            None => true,
        };
        if keep {
            if text.starts_with("a=candidate:") {
                seen.push(text);
            }
            out.push_str(line);
        }
        if Some(i) == last && !ended {
            // The line ending the section uses (its last line may have none).
            let eol = if lines.iter().any(|l| l.ends_with("\r\n")) { "\r\n" } else { "\n" };
            if !out.ends_with('\n') {
                out.push_str(eol);
            }
            out.push_str("a=end-of-candidates");
            out.push_str(eol);
        }
    }
}

/// A line without its line ending.
fn content(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

/// The component id: the field after the foundation.
fn component(candidate: &str) -> Option<&str> {
    candidate.split_ascii_whitespace().nth(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST1: &str = "a=candidate:1234 1 udp 2130706431 127.0.0.1 7882 typ host";
    const HOST2: &str = "a=candidate:1234 2 udp 2130706430 127.0.0.1 7882 typ host";
    const OTHER: &str = "a=candidate:99 1 udp 2130706431 10.0.0.5 7882 typ host";
    const END: &str = "a=end-of-candidates";

    fn sdp(lines: &[&str]) -> String {
        lines.iter().map(|l| format!("{l}\r\n")).collect()
    }

    #[test]
    fn table() {
        let head = ["v=0", "o=- 1 2 IN IP4 0.0.0.0", "s=-", "t=0 0", "a=ice-lite"];
        let audio = "m=audio 9 UDP/TLS/RTP/SAVPF 111";
        let video = "m=video 9 UDP/TLS/RTP/SAVPF 96";
        // (what the stack wrote, what the client gets)
        let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
            // The case seen in answers: host twice plus component 2, under rtcp-mux.
            (
                vec![audio, "a=mid:0", HOST1, HOST1, HOST2, "a=end-of-candidates", "a=rtcp-mux"],
                vec![audio, "a=mid:0", HOST1, "a=end-of-candidates", "a=rtcp-mux"],
            ),
            // As the stack writes answers today: component 2 right after component 1, at the end.
            (
                vec![audio, "a=mid:0", "a=rtcp-mux", "a=recvonly", HOST1, HOST2, video, "a=mid:1", "a=rtcp-mux"],
                vec![audio, "a=mid:0", "a=rtcp-mux", "a=recvonly", HOST1, END, video, "a=mid:1", "a=rtcp-mux"],
            ),
            // Without rtcp-mux component 2 is needed and stays.
            (vec![audio, "a=mid:0", HOST1, HOST2, HOST1], vec![audio, "a=mid:0", HOST1, HOST2, END]),
            // rtcp-mux before the candidates counts as well; a dropped last line still ends the list.
            (
                vec![audio, "a=rtcp-mux", HOST1, HOST2, "a=sendrecv"],
                vec![audio, "a=rtcp-mux", HOST1, END, "a=sendrecv"],
            ),
            // Distinct candidates stay, in order.
            (vec![audio, "a=rtcp-mux", OTHER, HOST1, OTHER], vec![audio, "a=rtcp-mux", OTHER, HOST1, END]),
            // Each media section keeps its own copy (bundled sections may repeat candidates).
            (
                vec![audio, "a=mid:0", "a=rtcp-mux", HOST1, HOST1, video, "a=mid:1", "a=rtcp-mux", HOST1, HOST2],
                vec![audio, "a=mid:0", "a=rtcp-mux", HOST1, END, video, "a=mid:1", "a=rtcp-mux", HOST1, END],
            ),
            // rtcp-mux in one section does not apply to the next.
            (
                vec![audio, "a=rtcp-mux", HOST1, HOST2, video, HOST1, HOST2],
                vec![audio, "a=rtcp-mux", HOST1, END, video, HOST1, HOST2, END],
            ),
            // No candidates at all: unchanged.
            (vec![audio, "a=mid:0", "a=rtcp-mux"], vec![audio, "a=mid:0", "a=rtcp-mux"]),
        ];
        for (i, (input, want)) in cases.into_iter().enumerate() {
            let input = sdp(&[&head[..], &input].concat());
            let want = sdp(&[&head[..], &want].concat());
            assert_eq!(tidy_candidates(&input), want, "case {i}");
        }
    }

    #[test]
    fn line_endings_and_text_outside_candidates_are_kept() {
        let lf = format!("v=0\nm=audio 9 RTP/AVP 0\na=rtcp-mux\n{HOST1}\n{HOST1}\n{HOST2}\na=sendrecv");
        assert_eq!(tidy_candidates(&lf), format!("v=0\nm=audio 9 RTP/AVP 0\na=rtcp-mux\n{HOST1}\n{END}\na=sendrecv"));
        // A last line without its line ending gets one before the added attribute.
        let open = format!("v=0\r\nm=audio 9 RTP/AVP 0\r\n{HOST1}");
        assert_eq!(tidy_candidates(&open), format!("v=0\r\nm=audio 9 RTP/AVP 0\r\n{HOST1}\r\n{END}\r\n"));
        assert_eq!(tidy_candidates(""), "");
        // A line that merely mentions rtcp-mux is not the attribute; an existing end is kept once.
        let not_mux = format!("m=audio 9 RTP/AVP 0\r\na=rtcp-mux-only\r\n{HOST1}\r\n{HOST2}\r\n{END}\r\n");
        assert_eq!(tidy_candidates(&not_mux), not_mux);
    }
}

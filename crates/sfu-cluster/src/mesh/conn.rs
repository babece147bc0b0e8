//! Runs a [`Handshake`] over a TCP connection: the only I/O of the handshake.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use super::ctx::{Ctx, Report};
use super::frame::{FrameDecoder, MAX_FRAME_LEN, MAX_HANDSHAKE_FRAME_LEN, plain_frame};
use super::handshake::{Established, Handshake};
use super::{AuthFailure, NodeId};

/// A handshake that failed, with the id the peer gave if it got that far.
pub(super) struct Failed {
    pub(super) reason: AuthFailure,
    pub(super) node: Option<NodeId>,
}

/// Sends and receives handshake frames until `handshake` succeeds or fails, or `deadline`.
/// On success the decoder (its limit raised) holds whatever the peer sent after the handshake.
pub(super) async fn handshake(
    stream: &mut TcpStream,
    mut handshake: Handshake,
    deadline: Instant,
) -> Result<(Established, FrameDecoder), Failed> {
    let outcome = timeout_at(deadline, drive(stream, &mut handshake)).await.unwrap_or(Err(AuthFailure::Timeout));
    outcome.map_err(|reason| Failed { reason, node: handshake.peer_node().cloned() })
}

async fn drive(stream: &mut TcpStream, handshake: &mut Handshake) -> Result<(Established, FrameDecoder), AuthFailure> {
    let mut decoder = FrameDecoder::new(MAX_HANDSHAKE_FRAME_LEN);
    let mut buf = [0u8; 4096];
    loop {
        while let Some(message) = handshake.poll_transmit() {
            stream.write_all(&plain_frame(&message.encode())).await.map_err(|e| AuthFailure::Io(e.kind()))?;
        }
        if let Some(established) = handshake.poll_established() {
            decoder.set_max_len(MAX_FRAME_LEN);
            return Ok((established, decoder));
        }
        let body = loop {
            if let Some(body) = decoder.pop().map_err(AuthFailure::Frame)? {
                break body;
            }
            match stream.read(&mut buf).await {
                Ok(0) => return Err(AuthFailure::Closed),
                Ok(n) => decoder.push(&buf[..n]),
                Err(e) => return Err(AuthFailure::Io(e.kind())),
            }
        };
        if let Err(error) = handshake.handle_bytes(&body) {
            // Tell the peer why (best effort), then give up.
            while let Some(message) = handshake.poll_transmit() {
                if stream.write_all(&plain_frame(&message.encode())).await.is_err() {
                    break;
                }
            }
            return Err(AuthFailure::Handshake(error));
        }
    }
}

impl Ctx {
    /// Counts and reports a failed handshake (if it counts), and logs it. `label` is the
    /// peer's relay address when known (the dialer's); else the listing gives it.
    pub(super) fn auth_failed(&self, addr: SocketAddr, failed: Failed, label: Option<Arc<str>>) {
        let node = failed.node.as_ref().map(|n| n.escaped().to_string()).unwrap_or_default();
        if !failed.reason.counts() {
            tracing::debug!(%addr, node, reason = ?failed.reason, "relay handshake ended");
            return;
        }
        let label = label.unwrap_or_else(|| self.shared.label_of(failed.node.as_ref()));
        metrics::counter!("sfu_relay_auth_failures_total", "peer" => label.to_string()).increment(1);
        if &*label == "unlisted" {
            // Anyone can reach the port: keep strangers' failures out of the warnings.
            tracing::debug!(%addr, node, reason = ?failed.reason, "relay handshake failed");
        } else {
            tracing::warn!(%addr, node, reason = ?failed.reason, "relay handshake failed");
        }
        // Informative only: when the supervisor is behind, the count above is what is kept.
        let _ = self.reports.try_send(Report::AuthFailed { addr, node: failed.node, reason: failed.reason });
    }
}

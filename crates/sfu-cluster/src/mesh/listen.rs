//! Accepts control connections. At most [`MAX_PENDING_HANDSHAKES`] may be in their handshake
//! at once (each for at most [`HANDSHAKE_TIMEOUT`]); more are closed on arrival, so a port scan
//! or a flood of silent connections costs a bounded number of sockets and nothing else. An
//! authenticated connection leaves the count and runs its link in the same task.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::conn;
use super::ctx::Ctx;
use super::handshake::{Admit, Handshake};
use super::link;
use super::{HANDSHAKE_TIMEOUT, MAX_PENDING_HANDSHAKES};

/// Wait after a failed `accept` (out of file descriptors, say) before the next.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

pub(super) async fn run(ctx: Arc<Ctx>, listener: TcpListener) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => match pending.clone().try_acquire_owned() {
                    Ok(permit) => {
                        connections.spawn(serve(ctx.clone(), stream, addr, permit));
                    }
                    Err(_) => {
                        metrics::counter!("sfu_relay_handshakes_refused_total").increment(1);
                        tracing::debug!(%addr, "relay connection refused: too many handshakes pending");
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "relay accept failed");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve(ctx: Arc<Ctx>, mut stream: TcpStream, addr: SocketAddr, permit: OwnedSemaphorePermit) {
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let _ = stream.set_nodelay(true);
    let shared = ctx.shared.clone();
    let admit: Admit =
        Box::new(move |node, boot| shared.listing().get(node).is_some_and(|listed| &listed.boot == boot));
    let handshake = Handshake::responder(ctx.local.clone(), &ctx.secret, rand::random(), admit);
    match conn::handshake(&mut stream, handshake, deadline).await {
        Ok((established, decoder)) => {
            drop(permit);
            let label = ctx.shared.label_of(Some(&established.node));
            link::run(&ctx, stream, decoder, established, label, None).await;
        }
        Err(failed) => ctx.auth_failed(addr, failed, None),
    }
}

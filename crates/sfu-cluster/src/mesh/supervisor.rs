//! The mesh's one owner of link state. It keeps the listing, starts and stops the dialers,
//! admits each link that comes up (or closes it), and turns the connection tasks' reports into
//! [`MeshEvent`]s, in order per peer: a replaced link's late reports are dropped by generation.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinSet};

use super::ctx::{Ctx, Report};
use super::handshake::{Established, LocalNode};
use super::keys::{ClusterSecret, Side};
use super::queue::OutQueue;
use super::{BootId, Command, DownReason, LinkTx, Listed, MeshEvent, NodeId, Shared};

/// Reports from the connection tasks waiting for the supervisor, at most.
const REPORT_QUEUE: usize = 1024;

/// A link the supervisor admitted.
struct Link {
    generation: u64,
    boot: BootId,
    label: Arc<str>,
    close: oneshot::Sender<DownReason>,
}

/// A dialer task and what it dials.
struct Dialer {
    listed: Listed,
    task: AbortHandle,
}

struct Supervisor {
    ctx: Arc<Ctx>,
    commands: mpsc::UnboundedReceiver<Command>,
    reports: mpsc::Receiver<Report>,
    events: mpsc::Sender<MeshEvent>,
    listing: HashMap<NodeId, Listed>,
    links: HashMap<NodeId, Link>,
    dialers: HashMap<NodeId, Dialer>,
    /// Every task of the mesh: dropping the supervisor aborts them all.
    tasks: JoinSet<()>,
}

pub(super) fn spawn(
    local: LocalNode,
    secret: ClusterSecret,
    shared: Arc<Shared>,
    listener: TcpListener,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<MeshEvent>,
) {
    let (reports_tx, reports) = mpsc::channel(REPORT_QUEUE);
    let ctx = Arc::new(Ctx { local, secret, shared, reports: reports_tx });
    let mut tasks = JoinSet::new();
    tasks.spawn(super::listen::run(ctx.clone(), listener));
    let supervisor = Supervisor {
        ctx,
        commands,
        reports,
        events,
        listing: HashMap::new(),
        links: HashMap::new(),
        dialers: HashMap::new(),
        tasks,
    };
    tokio::spawn(supervisor.run());
}

impl Supervisor {
    async fn run(mut self) {
        tracing::info!(node = %self.ctx.local.node.escaped(), addr = %self.ctx.shared.local_addr, "relay mesh listening");
        loop {
            let open = tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::SetPeers(peers)) => self.set_peers(peers).await,
                    None => false,
                },
                Some(report) = self.reports.recv() => self.on_report(report).await,
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => true,
            };
            if !open {
                break;
            }
        }
        // Stopping: say PeerDown where anyone still listens, without waiting for a reader.
        self.ctx.shared.links().clear();
        for (node, link) in self.links.drain() {
            metrics::gauge!("sfu_relay_link_up", "peer" => link.label.to_string()).set(0.0);
            let _ = link.close.send(DownReason::Shutdown);
            let _ = self.events.try_send(MeshEvent::PeerDown { node, boot: link.boot, reason: DownReason::Shutdown });
        }
        tracing::info!(node = %self.ctx.local.node.escaped(), "relay mesh stopped");
    }

    /// Applies a new listing. False once the application is gone.
    async fn set_peers(&mut self, peers: Vec<(NodeId, BootId, SocketAddr)>) -> bool {
        let ctx = self.ctx.clone();
        let me = &ctx.local.node;
        let listing: HashMap<NodeId, Listed> = peers
            .into_iter()
            .filter(|(node, ..)| node != me)
            .map(|(node, boot, addr)| (node, Listed { boot, addr }))
            .collect();
        *self.ctx.shared.listing() = listing.clone();

        let stale: Vec<(NodeId, DownReason)> = self
            .links
            .iter()
            .filter_map(|(node, link)| match listing.get(node) {
                None => Some((node.clone(), DownReason::Unlisted)),
                Some(listed) if listed.boot != link.boot => Some((node.clone(), DownReason::Restarted)),
                Some(_) => None,
            })
            .collect();
        for (node, reason) in stale {
            if !self.take_down(&node, reason).await {
                return false;
            }
        }
        self.dialers.retain(|node, dialer| {
            let keep = listing.get(node) == Some(&dialer.listed);
            if !keep {
                dialer.task.abort();
            }
            keep
        });
        // A dialer stopped with its link up (its address changed): that link went with it.
        let orphaned: Vec<NodeId> = self
            .links
            .keys()
            .filter(|node| me < *node && !self.dialers.contains_key(*node) && listing.contains_key(*node))
            .cloned()
            .collect();
        for node in orphaned {
            if !self.take_down(&node, DownReason::Restarted).await {
                return false;
            }
        }
        for (node, listed) in &listing {
            if me < node && !self.dialers.contains_key(node) {
                let task = self.tasks.spawn(super::dial::run(self.ctx.clone(), node.clone(), listed.clone()));
                self.dialers.insert(node.clone(), Dialer { listed: listed.clone(), task });
            }
        }
        self.listing = listing;
        true
    }

    /// Handles one report. False once the application is gone.
    async fn on_report(&mut self, report: Report) -> bool {
        match report {
            Report::Up { generation, established, label, queue, close } => {
                self.admit(generation, established, label, queue, close).await
            }
            Report::Message { generation, from, message } => {
                if self.links.get(&from).is_some_and(|link| link.generation == generation) {
                    return self.events.send(MeshEvent::Message { from, message }).await.is_ok();
                }
                true
            }
            Report::Down { generation, node, reason } => {
                if self.links.get(&node).is_some_and(|link| link.generation == generation) {
                    return self.take_down(&node, reason).await;
                }
                true
            }
            Report::AuthFailed { addr, node, reason } => {
                self.events.send(MeshEvent::AuthFailed { addr, node, reason }).await.is_ok()
            }
        }
    }

    async fn admit(
        &mut self,
        generation: u64,
        established: Established,
        label: Arc<str>,
        queue: OutQueue,
        close: oneshot::Sender<DownReason>,
    ) -> bool {
        let Established { node, boot, shards, keys, side } = established;
        if self.listing.get(&node).is_none_or(|listed| listed.boot != boot) {
            // Unlisted since its handshake began: dropping `close` ends it.
            tracing::debug!(peer = %node.escaped(), "relay link refused: not listed");
            return true;
        }
        if self.links.contains_key(&node) && !self.take_down(&node, DownReason::Replaced).await {
            return false;
        }
        self.ctx.shared.links().insert(node.clone(), LinkTx { generation, queue, label: label.clone() });
        metrics::gauge!("sfu_relay_link_up", "peer" => label.to_string()).set(1.0);
        tracing::info!(peer = %node.escaped(), boot = %boot.escaped(), addr = %label, ?side, "relay link up");
        self.links.insert(node.clone(), Link { generation, boot: boot.clone(), label, close });
        let dialer = side == Side::Dialer;
        self.events.send(MeshEvent::PeerUp { node, boot, keys, shards, dialer }).await.is_ok()
    }

    /// Closes a link and says `PeerDown`. False once the application is gone.
    async fn take_down(&mut self, node: &NodeId, reason: DownReason) -> bool {
        let Some(link) = self.links.remove(node) else { return true };
        {
            let mut links = self.ctx.shared.links();
            if links.get(node).is_some_and(|tx| tx.generation == link.generation) {
                links.remove(node);
            }
        }
        metrics::gauge!("sfu_relay_link_up", "peer" => link.label.to_string()).set(0.0);
        // The link may have ended already; then nobody listens.
        let _ = link.close.send(reason.clone());
        self.events.send(MeshEvent::PeerDown { node: node.clone(), boot: link.boot, reason }).await.is_ok()
    }
}

//! Who takes part in a scenario: each participant's room, identity, what it publishes and which
//! node it joins. Publishers join the first node (the origin); subscribers, listeners and
//! meeting participants go to the nodes in turn.

use crate::cli::{Cli, Scenario};
use crate::media::peer::PublishSpec;
use crate::nodes::node_for;

/// One participant's place in the run.
#[derive(Clone, Debug)]
pub struct Seat {
    pub room: String,
    pub identity: String,
    /// What it publishes (none: receive only).
    pub publish: Option<PublishSpec>,
    /// Index of its node in `--url`.
    pub node: usize,
}

pub struct Plan {
    /// Send only; all on node 0.
    pub publishers: Vec<Seat>,
    /// Subscribe (and, in a meeting, publish too).
    pub subscribers: Vec<Seat>,
    pub rooms: usize,
}

impl Plan {
    /// The participants of `cli`'s scenario over `nodes` nodes.
    pub fn new(cli: &Cli, nodes: usize) -> anyhow::Result<Self> {
        let n = cli.subscribers;
        let room = |i: usize| format!("{}-{i}", cli.room_prefix);
        let av = PublishSpec { video: true, audio: true };
        let audio_only = PublishSpec { video: false, audio: true };
        let publisher = |i: usize, rooms: usize, name: &str, spec: PublishSpec| Seat {
            room: room(i % rooms),
            identity: format!("{name}-{i}"),
            publish: Some(spec),
            node: 0,
        };
        let subscriber = |j: usize, rooms: usize, name: &str, publish: Option<PublishSpec>| Seat {
            room: room(j % rooms),
            identity: format!("{name}-{j}"),
            publish,
            node: node_for(j, nodes),
        };
        Ok(match cli.scenario {
            Scenario::Livestream => {
                let p = cli.publishers.unwrap_or(1).max(1);
                let rooms = cli.rooms.unwrap_or(p).max(1);
                Plan {
                    publishers: (0..p).map(|i| publisher(i, rooms, "pub", av)).collect(),
                    subscribers: (0..n).map(|j| subscriber(j, rooms, "sub", None)).collect(),
                    rooms,
                }
            }
            Scenario::Meeting => {
                let rooms = cli.rooms.unwrap_or(n.div_ceil(8)).max(1);
                if n < 2 * rooms {
                    anyhow::bail!("meeting needs at least 2 participants per room ({n} for {rooms} rooms)");
                }
                Plan {
                    publishers: vec![],
                    subscribers: (0..n).map(|j| subscriber(j, rooms, "member", Some(av))).collect(),
                    rooms,
                }
            }
            Scenario::AudioRoom => {
                let rooms = cli.rooms.unwrap_or(1).max(1);
                let per_room = cli.publishers.unwrap_or(2).max(1);
                Plan {
                    publishers: (0..rooms * per_room).map(|i| publisher(i, rooms, "speaker", audio_only)).collect(),
                    subscribers: (0..n).map(|j| subscriber(j, rooms, "listener", None)).collect(),
                    rooms,
                }
            }
        })
    }

    /// How many publishers and subscribers each of `nodes` nodes gets.
    pub fn per_node(&self, nodes: usize) -> Vec<(usize, usize)> {
        let last = nodes.max(1) - 1;
        let mut counts = vec![(0, 0); last + 1];
        for s in &self.publishers {
            counts[s.node.min(last)].0 += 1;
        }
        for s in &self.subscribers {
            counts[s.node.min(last)].1 += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn plan(args: &[&str], nodes: usize) -> Plan {
        let cli = Cli::try_parse_from(std::iter::once("sfu-loadtest").chain(args.iter().copied())).unwrap();
        Plan::new(&cli, nodes).unwrap()
    }

    #[test]
    fn livestream_publishers_on_the_origin_subscribers_round_robin() {
        let p = plan(&["livestream", "--subscribers", "20"], 2);
        assert!(p.publishers.iter().all(|s| s.node == 0));
        assert_eq!(p.per_node(2), vec![(1, 10), (0, 10)]);
        let nodes: Vec<usize> = p.subscribers.iter().take(4).map(|s| s.node).collect();
        assert_eq!(nodes, vec![0, 1, 0, 1]);
        assert_eq!(p.subscribers[3].identity, "sub-3");
    }

    #[test]
    fn three_nodes_take_every_third_subscriber() {
        let p = plan(&["livestream", "--subscribers", "7", "--publishers", "2"], 3);
        assert_eq!(p.per_node(3), vec![(2, 3), (0, 2), (0, 2)]);
        // Rooms are as with one node: subscriber j in room j % rooms.
        assert_eq!((p.subscribers[5].room.as_str(), p.subscribers[5].node), ("loadtest-1", 2));
    }

    #[test]
    fn meeting_participants_and_listeners_are_spread_speakers_are_not() {
        let meeting = plan(&["meeting", "--subscribers", "16"], 2);
        assert!(meeting.publishers.is_empty());
        assert_eq!(meeting.per_node(2), vec![(0, 8), (0, 8)]);
        let audio = plan(&["audio-room", "--subscribers", "9", "--publishers", "2"], 3);
        assert_eq!(audio.per_node(3), vec![(2, 3), (0, 3), (0, 3)]);
    }

    #[test]
    fn one_node_holds_everyone() {
        let p = plan(&["livestream", "--subscribers", "5"], 1);
        assert!(p.subscribers.iter().all(|s| s.node == 0));
        assert_eq!(p.per_node(1), vec![(1, 5)]);
    }
}

//! `[limits]`: how much one client, one room and the whole node may ask of the server. Without
//! them one WHIP offer could make ten thousand tracks and stall a shard for seconds, and rooms,
//! participants and trickled candidates could grow until memory ran out. The defaults sit well
//! above what browsers and the load harness (docs/loadtest.md) use.

use serde::Deserialize;

/// Bounds on what clients may ask; each refusal is answered with a documented error and counted
/// in `sfu_limit_refusals_total{limit}` (the label is the key's name).
#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Tracks one participant may publish at once. A browser publishes two to four (camera,
    /// microphone, screen and its audio). Default 16.
    pub tracks_per_participant: usize,
    /// Media sections (`m=` lines) in one offer, counted before the offer reaches the media plane:
    /// the tracks, the data channel, and the stopped sections renegotiation leaves behind.
    /// Default 64.
    pub media_sections_per_offer: usize,
    /// Bytes of a WHIP/WHEP request body (an offer, or a trickle PATCH). The same as
    /// `rtc.max_message_bytes` for signaling; a browser's offer is 5 to 10 KB. Default 65536.
    pub whip_body_bytes: usize,
    /// Candidates a client may trickle to one connection (signaling `candidate`, WHIP/WHEP PATCH).
    /// The server is ICE-lite and needs none; a browser sends a few per network interface.
    /// Default 64.
    pub candidates_per_connection: usize,
    /// Participants and WHEP viewers in one room. Above the load harness's largest room (2000
    /// subscribers and a publisher). Default 2500.
    pub participants_per_room: usize,
    /// Participants and WHEP viewers on this node, over all rooms. Default 5000.
    pub participants_per_node: usize,
    /// Rooms on this node. The load harness's largest runs use a few hundred. Default 1000.
    pub rooms_per_node: usize,
    /// Data messages one participant may send per second (a burst of one second's worth is
    /// allowed); more are refused with `data_refused` `rate_limited`. Each is copied to every
    /// other participant, so this bounds what one sender costs its room. Default 50.
    pub data_messages_per_second: u32,
    /// Payload bytes of data messages one participant may send per second, likewise. At least
    /// the largest message (32768), or that could never go. Default 262144.
    pub data_bytes_per_second: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            tracks_per_participant: 16,
            media_sections_per_offer: 64,
            whip_body_bytes: 64 * 1024,
            candidates_per_connection: 64,
            participants_per_room: 2500,
            participants_per_node: 5000,
            rooms_per_node: 1000,
            data_messages_per_second: 50,
            data_bytes_per_second: 256 * 1024,
        }
    }
}

impl Limits {
    /// Why these limits cannot be run with, if they cannot.
    pub fn problem(&self) -> Option<String> {
        let counts = [
            ("tracks_per_participant", self.tracks_per_participant),
            ("media_sections_per_offer", self.media_sections_per_offer),
            ("candidates_per_connection", self.candidates_per_connection),
            ("participants_per_room", self.participants_per_room),
            ("participants_per_node", self.participants_per_node),
            ("rooms_per_node", self.rooms_per_node),
            ("data_messages_per_second", self.data_messages_per_second as usize),
        ];
        // Zero would refuse everything; an operator who wants no bound gives a large number.
        if let Some((key, _)) = counts.iter().find(|(_, value)| *value == 0) {
            return Some(format!("limits.{key} must be at least 1"));
        }
        if self.media_sections_per_offer < self.tracks_per_participant {
            return Some(format!(
                "limits.media_sections_per_offer = {} is below limits.tracks_per_participant = {}: \
                 an offer needs a section per track",
                self.media_sections_per_offer, self.tracks_per_participant
            ));
        }
        if (self.data_bytes_per_second as usize) < sfu_transport::DATA_MAX_MESSAGE_BYTES {
            return Some(format!(
                "limits.data_bytes_per_second = {} is below the largest data message ({}), which could never be sent",
                self.data_bytes_per_second,
                sfu_transport::DATA_MAX_MESSAGE_BYTES
            ));
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.whip_body_bytes) {
            return Some(format!(
                "limits.whip_body_bytes = {} must be between 1024 and 16777216",
                self.whip_body_bytes
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::Limits;
    use crate::config::{AuthConfig, Config};

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, crate::config::ConfigError> {
        // Tests run in parallel: each file gets its own name.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("sfu-limits-test-{}-{n}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let loaded = Config::load(Some(&path), env.into_iter());
        let _ = std::fs::remove_file(&path);
        loaded
    }

    #[test]
    fn defaults_let_the_load_harness_through() {
        let l = Config::default().limits;
        assert_eq!(l, Limits::default());
        assert_eq!(
            (l.tracks_per_participant, l.media_sections_per_offer, l.whip_body_bytes, l.candidates_per_connection),
            (16, 64, 65536, 64)
        );
        // docs/loadtest.md: 2000 subscribers and a publisher in one room, a few hundred rooms.
        assert!(l.participants_per_room > 2001 && l.participants_per_node >= l.participants_per_room);
        assert!(l.rooms_per_node >= 500);
        // A participant may send a message of the largest size, and a few per frame of a game.
        assert!(l.data_bytes_per_second as usize >= 4 * sfu_transport::DATA_MAX_MESSAGE_BYTES);
        assert!(l.data_messages_per_second >= 30);
        assert_eq!(l.problem(), None);
    }

    #[test]
    fn read_from_the_file_and_the_environment() {
        let c = load(
            "[limits]\ntracks_per_participant = 4\nmedia_sections_per_offer = 8\nwhip_body_bytes = 2048\n\
             candidates_per_connection = 3\nparticipants_per_room = 2\nparticipants_per_node = 5\nrooms_per_node = 7\n\
             data_messages_per_second = 5\ndata_bytes_per_second = 40000\n",
            &[("SFU_LIMITS__ROOMS_PER_NODE", "9")],
        )
        .unwrap();
        assert_eq!(
            c.limits,
            Limits {
                tracks_per_participant: 4,
                media_sections_per_offer: 8,
                whip_body_bytes: 2048,
                candidates_per_connection: 3,
                participants_per_room: 2,
                participants_per_node: 5,
                rooms_per_node: 9,
                data_messages_per_second: 5,
                data_bytes_per_second: 40000,
            }
        );
        let partial = load("[limits]\nparticipants_per_room = 3\n", &[]).unwrap();
        assert_eq!(partial.limits, Limits { participants_per_room: 3, ..Limits::default() });
    }

    #[test]
    fn unknown_and_mistyped_keys_are_errors() {
        let err = load("[limits]\ntracks = 4\n", &[]).unwrap_err().to_string();
        assert!(err.contains("limits.tracks"), "{err}");
        let err = load("", &[("SFU_LIMITS__ROOMS_PER_NODE", "many")]).unwrap_err().to_string();
        assert!(err.contains("limits.rooms_per_node") && err.contains("SFU_LIMITS__ROOMS_PER_NODE"), "{err}");
        let err = load("[limits]\nparticipants_per_room = -1\n", &[]).unwrap_err().to_string();
        assert!(err.contains("limits.participants_per_room"), "{err}");
    }

    #[test]
    fn validation_refuses_what_cannot_work() {
        let secret = "0123456789abcdef0123456789abcdef-prod";
        let prod = Config { auth: AuthConfig { api_key: "k".into(), api_secret: secret.into() }, ..Config::default() };
        prod.validate().unwrap();
        let with = |limits: Limits| Config { limits, ..prod.clone() }.validate().map_err(|e| e.to_string());
        let zero_rooms = with(Limits { rooms_per_node: 0, ..Limits::default() }).unwrap_err();
        assert!(zero_rooms.contains("limits.rooms_per_node must be at least 1"), "{zero_rooms}");
        let fewer_sections =
            with(Limits { media_sections_per_offer: 4, tracks_per_participant: 5, ..Limits::default() });
        assert!(fewer_sections.unwrap_err().contains("media_sections_per_offer"));
        assert!(with(Limits { whip_body_bytes: 100, ..Limits::default() }).is_err());
        let no_data = with(Limits { data_messages_per_second: 0, ..Limits::default() }).unwrap_err();
        assert!(no_data.contains("limits.data_messages_per_second"), "{no_data}");
        let small_bytes = with(Limits { data_bytes_per_second: 32767, ..Limits::default() }).unwrap_err();
        assert!(small_bytes.contains("limits.data_bytes_per_second"), "{small_bytes}");
        with(Limits { data_bytes_per_second: 32768, ..Limits::default() }).unwrap();
        assert!(with(Limits { whip_body_bytes: 32 << 20, ..Limits::default() }).is_err());
        with(Limits { participants_per_room: 1, participants_per_node: 1, rooms_per_node: 1, ..Limits::default() })
            .unwrap();
    }
}

//! The STUN and TURN servers a client is offered: in `joined`, and as `Link` headers on WHIP and
//! WHEP answers. TURN servers get credentials minted for the client's identity at that moment
//! (the REST scheme, `[turn]`): the embedded server first, then `turn.urls`; the servers of
//! `rtc.ice_servers` follow as configured.

use sfu_proto::IceServerInfo;
use sfu_turn::credentials::RestSecret;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::Config;

#[derive(Debug, Default)]
pub struct IceServers {
    /// The embedded server's URLs, then `turn.urls`: each list one entry with minted credentials.
    minted: Vec<Vec<String>>,
    secret: Option<RestSecret>,
    ttl: Duration,
    /// `rtc.ice_servers`, with their configured credentials if any.
    fixed: Vec<IceServerInfo>,
}

impl IceServers {
    /// What `config` offers, with `embedded` the URLs of the running embedded server (if any).
    pub fn new(config: &Config, embedded: Vec<String>) -> Self {
        let turn = &config.turn;
        let minted: Vec<Vec<String>> = [embedded, turn.urls.clone()].into_iter().filter(|u| !u.is_empty()).collect();
        let secret = (!minted.is_empty() && !turn.secret.is_empty()).then(|| RestSecret::new(turn.secret.as_bytes()));
        let fixed = config
            .rtc
            .ice_servers
            .iter()
            .map(|s| IceServerInfo {
                urls: vec![s.url.clone()],
                username: s.username.clone(),
                credential: s.credential.clone(),
            })
            .collect();
        IceServers { minted, secret, ttl: Duration::from_secs(turn.ttl_secs), fixed }
    }

    /// Every server, TURN ones with credentials for `identity` minted now.
    pub fn for_identity(&self, identity: &str) -> Vec<IceServerInfo> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        self.at(identity, now)
    }

    fn at(&self, identity: &str, now_unix: u64) -> Vec<IceServerInfo> {
        let mut out = Vec::new();
        if let Some(secret) = &self.secret {
            let credential = secret.mint(identity, now_unix, self.ttl);
            out.extend(self.minted.iter().map(|urls| IceServerInfo {
                urls: urls.clone(),
                username: Some(credential.username.clone()),
                credential: Some(credential.password.clone()),
            }));
        }
        out.extend(self.fixed.iter().cloned());
        out
    }
}

/// The embedded server's URLs as clients reach it: `host` (the certificate's name for TLS) or
/// the announced address, and the ports its listeners are bound to.
pub fn embedded_urls(
    host: Option<&str>,
    announce: IpAddr,
    udp: Option<u16>,
    tcp: Option<u16>,
    tls: Option<u16>,
) -> Vec<String> {
    let host = match (host, announce) {
        (Some(h), _) => h.to_owned(),
        (None, IpAddr::V6(a)) => format!("[{a}]"),
        (None, IpAddr::V4(a)) => a.to_string(),
    };
    let mut urls = Vec::new();
    if let Some(p) = udp {
        urls.push(format!("turn:{host}:{p}?transport=udp"));
    }
    if let Some(p) = tcp {
        urls.push(format!("turn:{host}:{p}?transport=tcp"));
    }
    if let Some(p) = tls {
        urls.push(format!("turns:{host}:{p}?transport=tcp"));
    }
    urls
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IceServer;

    fn config(urls: &[&str]) -> Config {
        let mut c = Config::for_dev();
        c.turn.secret = "turn-rest-test-secret".into();
        c.turn.urls = urls.iter().map(|u| u.to_string()).collect();
        c.rtc.ice_servers =
            vec![IceServer { url: "stun:stun.example.org:3478".into(), username: None, credential: None }];
        c
    }

    #[test]
    fn embedded_first_then_external_then_configured_servers() {
        let embedded = embedded_urls(None, "127.0.0.1".parse().unwrap(), Some(3478), Some(3478), None);
        let servers = IceServers::new(&config(&["turn:coturn.example.org:3478?transport=udp"]), embedded);
        // 1700000000 - 86400: the vector of sfu-turn's credential test.
        let list = servers.at("alice", 1_699_913_600);
        let urls: Vec<_> = list.iter().map(|s| s.urls.join(" ")).collect();
        assert_eq!(
            urls,
            [
                "turn:127.0.0.1:3478?transport=udp turn:127.0.0.1:3478?transport=tcp",
                "turn:coturn.example.org:3478?transport=udp",
                "stun:stun.example.org:3478",
            ]
        );
        for minted in &list[..2] {
            assert_eq!(minted.username.as_deref(), Some("1700000000:alice"));
            assert_eq!(minted.credential.as_deref(), Some("0enZjbc7bOMDfqc+XjQnzmKx+Zs="));
        }
        assert_eq!((list[2].username.as_ref(), list[2].credential.as_ref()), (None, None));
    }

    #[test]
    fn without_turn_only_the_configured_servers() {
        let mut c = config(&[]);
        c.turn.secret.clear();
        let list = IceServers::new(&c, Vec::new()).for_identity("alice");
        assert_eq!(list.len(), 1);
        assert!(IceServers::default().for_identity("alice").is_empty());
    }

    #[test]
    fn embedded_urls_per_listener() {
        let v6 = embedded_urls(None, "2001:db8::1".parse().unwrap(), Some(3478), None, Some(443));
        assert_eq!(v6, ["turn:[2001:db8::1]:3478?transport=udp", "turns:[2001:db8::1]:443?transport=tcp"]);
        let named = embedded_urls(Some("turn.example.org"), "203.0.113.1".parse().unwrap(), None, Some(3478), None);
        assert_eq!(named, ["turn:turn.example.org:3478?transport=tcp"]);
    }
}

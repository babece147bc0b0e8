//! Tests of configuration loading, environment overrides and validation.

use super::*;

fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>().into_iter()
}

/// A config file in the temp dir, removed on drop.
struct TempFile(PathBuf);
impl TempFile {
    fn new(name: &str, text: &str) -> Self {
        let p = std::env::temp_dir().join(format!("sfu-config-test-{}-{name}.toml", std::process::id()));
        std::fs::write(&p, text).unwrap();
        TempFile(p)
    }
}
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const SECRET: &str = "0123456789abcdef0123456789abcdef-prod";

#[test]
fn defaults() {
    let c = Config::default();
    assert_eq!(c.bind, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(c.announce, None);
    assert_eq!(c.http_port, 7880);
    assert_eq!(c.rtc.udp_port_start, 7882);
    assert_eq!(c.rtc.tcp_port, 7881);
    assert_eq!(c.rtc.shards, 0);
    assert_eq!(c.rtc.departure_timeout_secs, 20);
    assert_eq!(c.rtc.max_message_bytes, 65536);
    assert_eq!(c.log, DEFAULT_LOG);
    assert!(!c.dev);
    assert_eq!(c.http_addr(), "127.0.0.1:7880".parse::<SocketAddr>().unwrap());
    assert_eq!(c.departure_timeout(), Duration::from_secs(20));
    assert!(c.effective_shards() >= 1);
}

#[test]
fn no_file_no_keys_is_dev_mode() {
    let c = Config::load(None, env(&[("PATH", "/bin"), ("HOME", "/root")])).unwrap();
    assert!(c.dev);
    assert_eq!(c.auth.api_key, DEV_API_KEY);
    assert_eq!(c.auth.api_secret, DEV_API_SECRET);
    assert!(c.is_dev_keys());
    assert_eq!(c, Config::for_dev());
    c.validate().unwrap();
    assert!(DEV_API_SECRET.len() >= MIN_SECRET_BYTES);
}

#[test]
fn keys_from_env_disable_dev_mode() {
    let c = Config::load(None, env(&[("SFU_AUTH__API_KEY", "prodkey"), ("SFU_AUTH__API_SECRET", SECRET)])).unwrap();
    assert!(!c.dev);
    assert!(!c.is_dev_keys());
    c.validate().unwrap();
}

#[test]
fn implied_dev_mode_only_on_loopback() {
    // No file, no keys, a reachable address: refused, saying what to set.
    for bind in ["0.0.0.0", "10.0.0.5", "::"] {
        let c = Config::load(None, env(&[("SFU_BIND", bind)])).unwrap();
        assert!(c.dev && !c.dev_explicit);
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("not a loopback") && err.contains("SFU_DEV=true"), "{err}");
    }
    for bind in ["127.0.0.1", "127.0.0.2", "::1"] {
        Config::load(None, env(&[("SFU_BIND", bind)])).unwrap().validate().unwrap();
    }
    // Dev mode asked for explicitly, from the environment or the file, may listen anywhere.
    let c = Config::load(None, env(&[("SFU_BIND", "0.0.0.0"), ("SFU_DEV", "true")])).unwrap();
    assert!(c.dev && c.dev_explicit);
    c.validate().unwrap();
    let f = TempFile::new("devbind", "dev = true\nbind = \"0.0.0.0\"\n");
    Config::load(Some(&f.0), env(&[])).unwrap().validate().unwrap();
    // With keys there is no dev mode to worry about.
    let c = Config::load(
        None,
        env(&[("SFU_BIND", "0.0.0.0"), ("SFU_AUTH__API_KEY", "prodkey"), ("SFU_AUTH__API_SECRET", SECRET)]),
    )
    .unwrap();
    c.validate().unwrap();
}

#[test]
fn explicit_dev_false_without_keys_fails_validation() {
    let c = Config::load(None, env(&[("SFU_DEV", "false")])).unwrap();
    assert!(!c.dev);
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("api_key"), "{err}");
}

#[test]
fn toml_file_parse() {
    let f = TempFile::new(
        "parse",
        r#"
        bind = "0.0.0.0"
        announce = "203.0.113.7"
        http_port = 8080
        log = "debug,sfu_core=trace"

        [rtc]
        udp_port_start = 50000
        tcp_port = 443
        shards = 4
        departure_timeout_secs = 5
        max_message_bytes = 131072
        bandwidth_estimation = false
        dynacast = false

        [auth]
        api_key = "k1"
        api_secret = "0123456789abcdef0123456789abcdef-prod"
        "#,
    );
    let c = Config::load(Some(&f.0), env(&[])).unwrap();
    assert_eq!(c.bind, "0.0.0.0".parse::<IpAddr>().unwrap());
    assert_eq!(c.announce, Some("203.0.113.7".parse::<IpAddr>().unwrap()));
    assert_eq!(c.announce_ip(), c.announce);
    assert_eq!(c.http_port, 8080);
    assert_eq!(c.log, "debug,sfu_core=trace");
    assert_eq!(
        c.rtc,
        RtcConfig {
            udp_port_start: 50000,
            tcp_port: 443,
            shards: 4,
            departure_timeout_secs: 5,
            max_message_bytes: 131072,
            bandwidth_estimation: false,
            dynacast: false,
            ice_servers: Vec::new(),
        }
    );
    assert_eq!(c.auth.api_key, "k1");
    assert!(!c.dev);
    c.validate().unwrap();
}

#[test]
fn file_without_keys_is_not_dev_mode() {
    let f = TempFile::new("nokeys", "http_port = 9999\n");
    let c = Config::load(Some(&f.0), env(&[])).unwrap();
    assert!(!c.dev);
    assert!(c.auth.api_secret.is_empty());
    assert!(c.validate().is_err());

    // ...unless it asks for dev mode, which fills in the dev keys.
    let f = TempFile::new("devfile", "dev = true\n");
    let c = Config::load(Some(&f.0), env(&[])).unwrap();
    assert!(c.dev && c.is_dev_keys());
    c.validate().unwrap();
}

#[test]
fn env_overrides_top_level_and_nested() {
    let f = TempFile::new("env", "http_port = 8080\n[rtc]\nshards = 4\nudp_port_start = 40000\n");
    let c = Config::load(
        Some(&f.0),
        env(&[
            ("SFU_HTTP_PORT", "9000"),
            ("SFU_RTC__SHARDS", "2"),
            ("sfu_log", "warn"),
            ("SFU_ANNOUNCE", "192.0.2.1"),
            ("SFU_AUTH__API_KEY", "key"),
            // All digits: parsed as an integer first, retried as the string it must be.
            ("SFU_AUTH__API_SECRET", "12345678901234567890123456789012345"),
            ("SFU_DEV", "FALSE"),
            ("OTHER_HTTP_PORT", "1"),
        ]),
    )
    .unwrap();
    assert_eq!(c.http_port, 9000);
    assert_eq!(c.rtc.shards, 2);
    assert_eq!(c.rtc.udp_port_start, 40000, "file value kept when not overridden");
    assert_eq!(c.log, "warn");
    assert_eq!(c.announce, Some("192.0.2.1".parse::<IpAddr>().unwrap()));
    assert_eq!(c.auth.api_secret, "12345678901234567890123456789012345");
    assert!(!c.dev);
    c.validate().unwrap();
}

#[test]
fn env_empty_value_resets_and_config_path_var_is_ignored() {
    let f = TempFile::new("reset", "announce = \"192.0.2.9\"\ndev = true\n");
    let c = Config::load(Some(&f.0), env(&[("SFU_ANNOUNCE", ""), ("SFU_CONFIG", "/etc/sfu.toml")])).unwrap();
    assert_eq!(c.announce, None);
}

#[test]
fn unknown_key_errors_name_the_key() {
    let f = TempFile::new("unknown", "[rtc]\nshardz = 2\n");
    let err = Config::load(Some(&f.0), env(&[])).unwrap_err();
    assert!(matches!(&err, ConfigError::UnknownKey { key, .. } if key == "rtc.shardz"), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("rtc.shardz") && msg.contains("config file"), "{msg}");

    let err = Config::load(None, env(&[("SFU_HTTP_PROT", "1")])).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("`http_prot`") && msg.contains("SFU_HTTP_PROT"), "{msg}");

    let err = Config::load(None, env(&[("SFU_AUTH__TOKEN", "x")])).unwrap_err();
    assert!(matches!(&err, ConfigError::UnknownKey { key, .. } if key == "auth.token"), "{err:?}");

    let err = Config::load(None, env(&[("SFU_RTC____X", "1")])).unwrap_err();
    assert!(matches!(err, ConfigError::Env { .. }), "{err:?}");
}

#[test]
fn invalid_values_are_reported() {
    let err = Config::load(None, env(&[("SFU_HTTP_PORT", "70000")])).unwrap_err();
    assert!(matches!(&err, ConfigError::InvalidValue { key, .. } if key == "http_port"), "{err:?}");
    let err = Config::load(None, env(&[("SFU_BIND", "localhost")])).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("`bind`") && msg.contains("SFU_BIND"), "{msg}");

    let err = Config::load(None, env(&[("SFU_RTC", "3")])).unwrap_err();
    assert!(matches!(&err, ConfigError::InvalidValue { key, .. } if key == "rtc"), "{err:?}");

    let f = TempFile::new("syntax", "http_port = \n");
    let err = Config::load(Some(&f.0), env(&[])).unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }), "{err:?}");

    let missing = std::env::temp_dir().join("sfu-config-test-does-not-exist.toml");
    let err = Config::load(Some(&missing), env(&[])).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
}

#[test]
fn validation() {
    let prod = Config { auth: AuthConfig { api_key: "k".into(), api_secret: SECRET.into() }, ..Config::default() };
    prod.validate().unwrap();

    let short = Config { auth: AuthConfig { api_key: "k".into(), api_secret: "short".into() }, ..prod.clone() };
    assert!(short.validate().unwrap_err().to_string().contains("at least 32"));
    // Dev mode tolerates a short secret.
    Config { dev: true, ..short }.validate().unwrap();

    let dev_secret_in_prod =
        Config { auth: AuthConfig { api_key: "k".into(), api_secret: DEV_API_SECRET.into() }, ..prod.clone() };
    assert!(dev_secret_in_prod.validate().is_err());

    for bad in ["0.0.0.0", "::", "224.0.0.1", "255.255.255.255"] {
        let c = Config { announce: Some(bad.parse::<IpAddr>().unwrap()), ..prod.clone() };
        assert!(c.validate().is_err(), "announce {bad}");
    }

    let c = Config { rtc: RtcConfig { udp_port_start: 65535, shards: 2, ..RtcConfig::default() }, ..prod.clone() };
    assert!(c.validate().is_err());

    let c = Config { rtc: RtcConfig { max_message_bytes: 10, ..RtcConfig::default() }, ..prod.clone() };
    assert!(c.validate().is_err());

    let tcp_on_http = Config { rtc: RtcConfig { tcp_port: prod.http_port, ..RtcConfig::default() }, ..prod.clone() };
    assert!(tcp_on_http.validate().unwrap_err().to_string().contains("rtc.tcp_port"));
    let tcp_off = Config { rtc: RtcConfig { tcp_port: 0, ..RtcConfig::default() }, ..prod.clone() };
    tcp_off.validate().unwrap();

    let wildcard = Config { bind: "0.0.0.0".parse::<IpAddr>().unwrap(), ..prod.clone() };
    wildcard.validate().unwrap();
    assert_eq!(wildcard.announce_ip(), None);
    assert_eq!(prod.announce_ip(), Some(prod.bind));
}

#[test]
fn debug_redacts_secret() {
    let s = format!("{:?}", Config::for_dev());
    assert!(s.contains("devkey") && !s.contains(DEV_API_SECRET), "{s}");
}

/// Every key of the example file (commented out there) exists and has a value of the right type.
#[test]
fn example_file_matches() {
    let text = include_str!("../../../../config/sfu.example.toml");
    let uncommented: String = text
        .lines()
        .map(|l| {
            let t = l.trim_start_matches('#').trim_start();
            let is_key = t.split_once('=').is_some_and(|(k, _)| {
                let k = k.trim();
                !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            });
            if is_key || (t.starts_with('[') && t.ends_with(']')) { t } else { "" }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let f = TempFile::new("example", &uncommented);
    let c = Config::load(Some(&f.0), env(&[])).unwrap();
    // Defaults everywhere except the illustrative announce address, keys, web directory and
    // cluster membership (whose defaults are "none").
    let mut expected = Config { announce: c.announce, auth: c.auth.clone(), ..Config::default() };
    expected.http.web_dir = c.http.web_dir.clone();
    expected.cluster = ClusterConfig { drain_timeout_secs: expected.cluster.drain_timeout_secs, ..c.cluster.clone() };
    assert!(c.cluster.enabled() && c.cluster.node_id.is_some() && c.cluster.region.is_some());
    // TURN's illustrative external URLs, certificate and host name.
    expected.turn = TurnConfig {
        urls: c.turn.urls.clone(),
        cert_file: c.turn.cert_file.clone(),
        key_file: c.turn.key_file.clone(),
        host: c.turn.host.clone(),
        ..TurnConfig::default()
    };
    assert!(c.turn.urls.len() == 2 && c.turn.cert_file.is_some() && c.turn.key_file.is_some() && c.turn.host.is_some());
    assert_eq!(c, expected);
    assert!(c.announce.is_some());
    assert_eq!(c.http.web_dir.as_deref(), Some(std::path::Path::new("web")));
}

#[test]
fn cors_origins_default_to_any_and_read_lists_from_file_or_env() {
    assert_eq!(Config::default().http.cors_origins, ["*"]);
    assert_eq!(Config::for_dev().http.cors_origins, ["*"]);
    let c = Config::load(None, env(&[("SFU_HTTP__CORS_ORIGINS", "https://a.example, http://127.0.0.1:8080")])).unwrap();
    assert_eq!(c.http.cors_origins, ["https://a.example", "http://127.0.0.1:8080"]);
    c.validate().unwrap();
    // The port key beside the table is untouched.
    assert_eq!(c.http_port, 7880);
    let f = TempFile::new(
        "cors",
        "[http]\ncors_origins = []\n[auth]\napi_key = \"k\"\napi_secret = \"0123456789abcdef0123456789abcdef-prod\"\n",
    );
    let c = Config::load(Some(&f.0), env(&[])).unwrap();
    assert!(c.http.cors_origins.is_empty());
    c.validate().unwrap();
}

#[test]
fn bad_cors_origins_are_refused() {
    for bad in ["https://a.example/", "https://a.example/app", "a.example", "https://*.example.com", "://x", ""] {
        let c = Config {
            http: HttpConfig { cors_origins: vec![bad.into()], ..HttpConfig::default() },
            ..Config::for_dev()
        };
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("http.cors_origins"), "{bad}: {err}");
    }
    for good in ["*", "https://a.example", "http://127.0.0.1:18100", "http://[::1]:8080"] {
        let c = Config {
            http: HttpConfig { cors_origins: vec![good.into()], ..HttpConfig::default() },
            ..Config::for_dev()
        };
        c.validate().unwrap_or_else(|e| panic!("{good}: {e}"));
    }
}

#[test]
fn ice_servers_from_file_and_env() {
    assert!(Config::default().rtc.ice_servers.is_empty());
    let f = TempFile::new(
        "ice",
        r#"
        [rtc]
        ice_servers = ["stun:stun.example.org:3478", { url = "turn:turn.example.org:3478?transport=udp", username = "u", credential = "p" }]
        "#,
    );
    let c = Config::load(Some(&f.0), env(&[("SFU_DEV", "true")])).unwrap();
    assert_eq!(
        c.rtc.ice_servers,
        [
            IceServer { url: "stun:stun.example.org:3478".into(), username: None, credential: None },
            IceServer {
                url: "turn:turn.example.org:3478?transport=udp".into(),
                username: Some("u".into()),
                credential: Some("p".into()),
            },
        ]
    );
    c.validate().unwrap();
    assert!(!format!("{c:?}").contains("credential: Some(\"p\")"), "TURN credential shown in Debug");
    let c = Config::load(None, env(&[("SFU_RTC__ICE_SERVERS", "stun:a.example:3478,stun:b.example")])).unwrap();
    let urls: Vec<&str> = c.rtc.ice_servers.iter().map(|s| s.url.as_str()).collect();
    assert_eq!(urls, ["stun:a.example:3478", "stun:b.example"]);
}

#[test]
fn bad_ice_servers_are_refused() {
    let server = |url: &str, username: Option<&str>, credential: Option<&str>| IceServer {
        url: url.into(),
        username: username.map(Into::into),
        credential: credential.map(Into::into),
    };
    let bad = [
        server("http://stun.example.org", None, None),
        server("stun:a.example>; rel=\"x\"", None, None),
        server("stun:a example", None, None),
        server("turn:t.example", Some("u"), None),
        server("turn:t.example", Some("u\""), Some("p")),
        server("turn:t.example", Some("u"), Some("p\r\nX: y")),
    ];
    for s in bad {
        let c = Config { rtc: RtcConfig { ice_servers: vec![s.clone()], ..RtcConfig::default() }, ..Config::for_dev() };
        assert!(c.validate().is_err(), "{s:?} accepted");
    }
}

#[test]
fn http_connection_limits_default_and_read_from_env() {
    let c = Config::default();
    assert_eq!(c.http.header_read_timeout_secs, 10);
    assert_eq!(c.header_read_timeout(), Duration::from_secs(10));
    assert_eq!((c.http.max_connections, c.http.max_connections_per_ip), (0, 256));
    assert!(c.http.per_ip_exempt_loopback);
    let c = Config::load(
        None,
        env(&[
            ("SFU_HTTP__HEADER_READ_TIMEOUT_SECS", "3"),
            ("SFU_HTTP__MAX_CONNECTIONS", "500"),
            ("SFU_HTTP__MAX_CONNECTIONS_PER_IP", "0"),
            ("SFU_HTTP__PER_IP_EXEMPT_LOOPBACK", "false"),
        ]),
    )
    .unwrap();
    c.validate().unwrap();
    assert_eq!(c.header_read_timeout(), Duration::from_secs(3));
    assert_eq!((c.http.max_connections, c.http.max_connections_per_ip), (500, 0));
    assert!(!c.http.per_ip_exempt_loopback);
    // Configured, the cap is what it says whatever the open-file limit.
    assert_eq!(c.max_connections(1024), 500);
    assert_eq!(c.max_connections(u64::MAX), 500);
}

#[test]
fn derived_connection_cap_leaves_a_tenth_of_the_descriptors_and_stops_at_the_ceiling() {
    let c = Config::default();
    assert_eq!(c.max_connections(1024), 918);
    assert_eq!(c.max_connections(4096), 3681);
    assert_eq!(c.max_connections(20_000), DEFAULT_MAX_CONNECTIONS);
    // RLIM_INFINITY.
    assert_eq!(c.max_connections(u64::MAX), DEFAULT_MAX_CONNECTIONS);
    assert_eq!(c.max_connections(5), 1);
}

#[test]
fn header_read_timeout_must_be_between_1_and_3600_seconds() {
    for (secs, ok) in [(0, false), (1, true), (3600, true), (3601, false)] {
        let mut c = Config::for_dev();
        c.http.header_read_timeout_secs = secs;
        let result = c.validate();
        assert_eq!(result.is_ok(), ok, "{secs}: {result:?}");
        if let Err(e) = result {
            assert!(e.to_string().contains("http.header_read_timeout_secs"), "{e}");
        }
    }
}

#[test]
fn cluster_mode_is_off_without_a_redis_url_and_needs_a_long_secret_with_one() {
    let c = Config::for_dev();
    assert!(!c.cluster.enabled());
    c.validate().unwrap();

    let c = Config::load(
        None,
        env(&[("SFU_CLUSTER__REDIS_URL", "redis://10.0.0.5:6379/0"), ("SFU_CLUSTER__SECRET", "short")]),
    )
    .unwrap();
    assert!(c.cluster.enabled());
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("cluster.secret is 5 bytes"), "{e}");

    let c = Config::load(
        None,
        env(&[
            ("SFU_CLUSTER__REDIS_URL", "redis://10.0.0.5:6379/0"),
            ("SFU_CLUSTER__SECRET", SECRET),
            ("SFU_CLUSTER__NODE_ID", "node-a"),
            ("SFU_CLUSTER__RELAY_ADDR", "10.0.0.11:7882"),
        ]),
    )
    .unwrap();
    c.validate().unwrap();
    assert_eq!(
        c.cluster.relay_addr_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        "10.0.0.11:7882".parse::<SocketAddr>().unwrap()
    );
}

#[test]
fn cluster_settings_that_cannot_work_are_refused_by_name() {
    let base = || {
        let mut c = Config::for_dev();
        c.cluster.redis_url = Some("redis://127.0.0.1:6379".into());
        c.cluster.secret = SECRET.into();
        c
    };
    type Spoil = fn(&mut Config);
    let cases: [(&str, Spoil); 4] = [
        ("cluster.redis_url", |c| c.cluster.redis_url = Some("http://127.0.0.1:6379".into())),
        ("cluster.node_id", |c| c.cluster.node_id = Some("a b:c".into())),
        ("cluster.relay_addr", |c| c.cluster.relay_addr = Some("somewhere".into())),
        ("cluster.signal_url", |c| c.cluster.signal_url = Some("ws://x".into())),
    ];
    for (key, spoil) in cases {
        let mut c = base();
        c.validate().unwrap();
        spoil(&mut c);
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains(key), "{key}: {e}");
    }
}

#[test]
fn the_cluster_secret_and_redis_password_stay_out_of_debug_output() {
    let mut c = Config::for_dev();
    c.cluster.redis_url = Some("redis://user:hunter2hunter2@127.0.0.1:6379".into());
    c.cluster.secret = SECRET.into();
    let shown = format!("{c:?}");
    assert!(!shown.contains("hunter2") && !shown.contains(SECRET), "{shown}");
    assert!(shown.contains("redis://user:***@127.0.0.1:6379"), "{shown}");
}

#[test]
fn turn_from_env_and_its_checks() {
    let d = Config::default().turn;
    assert!(!d.enabled && !d.offered() && d.secret.is_empty());
    assert_eq!((d.udp_port, d.tcp_port, d.tls_port, d.ttl_secs), (3478, 3478, 0, 86_400));
    let c = Config::load(
        None,
        env(&[
            ("SFU_TURN__ENABLED", "true"),
            ("SFU_TURN__SECRET", "0123456789abcdef"),
            ("SFU_TURN__URLS", "turn:127.0.0.1:3479?transport=udp, turns:turn.example.com:443?transport=tcp"),
            ("SFU_TURN__UDP_PORT", "3480"),
        ]),
    )
    .unwrap();
    assert!(c.turn.enabled && c.turn.offered());
    assert_eq!(c.turn.urls, ["turn:127.0.0.1:3479?transport=udp", "turns:turn.example.com:443?transport=tcp"]);
    assert_eq!(c.turn.udp_port, 3480);
    c.validate().unwrap();
    assert!(!format!("{c:?}").contains("0123456789abcdef"), "the TURN secret stays out of Debug");

    let bad = |edit: &dyn Fn(&mut TurnConfig), needle: &str| {
        let mut c = c.clone();
        edit(&mut c.turn);
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains(needle), "{needle}: {err}");
    };
    bad(&|t| t.secret = "short".into(), "turn.secret");
    bad(&|t| t.urls = vec!["stun:stun.example.org".into()], "turn.urls");
    bad(&|t| t.urls = vec!["turn:a b".into()], "turn.urls");
    bad(&|t| t.ttl_secs = 10, "turn.ttl_secs");
    bad(&|t| (t.udp_port, t.tcp_port) = (0, 0), "at least one");
    bad(&|t| t.tls_port = 5349, "cert_file");
    bad(&|t| (t.relay_port_min, t.relay_port_max) = (50000, 49999), "relay_port");
    bad(&|t| t.max_allocations_per_ip = 0, "max_allocations");
    bad(&|t| t.host = Some("turn.example.com/x".into()), "turn.host");
    // Without a server or URLs nothing is offered and nothing is required.
    let mut off = Config::for_dev();
    off.turn.secret = "short".into();
    off.validate().unwrap();
}

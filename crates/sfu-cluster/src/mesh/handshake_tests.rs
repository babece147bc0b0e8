use super::*;

fn local(node: &str, boot: &str) -> LocalNode {
    LocalNode {
        node: NodeId::from(node),
        boot: BootId::from(boot),
        shards: vec![ShardEndpoint { media_addr: "10.0.0.1:7000".parse().unwrap(), rtcp_ssrc: node.len() as u32 }],
    }
}

fn secret(byte: u8) -> ClusterSecret {
    ClusterSecret::new(vec![byte; 40]).unwrap()
}

fn admit_all() -> Admit {
    Box::new(|_, _| true)
}

/// A dialing `ND_a/a1` and B answering as `ND_b/b1`, each with its own secret.
fn pair(secret_a: u8, secret_b: u8) -> (Handshake, Handshake) {
    let a = Handshake::dialer(local("ND_a", "a1"), &secret(secret_a), [1; 32], ("ND_b".into(), "b1".into()));
    let b = Handshake::responder(local("ND_b", "b1"), &secret(secret_b), [2; 32], admit_all());
    (a, b)
}

/// Moves every queued message from one side to the other through its bytes; the first error.
fn pass(from: &mut Handshake, to: &mut Handshake) -> Result<usize, HandshakeError> {
    let mut passed = 0;
    while let Some(message) = from.poll_transmit() {
        to.handle_bytes(&message.encode())?;
        passed += 1;
    }
    Ok(passed)
}

fn hello_of(message: HandshakeMessage) -> Hello {
    match message {
        HandshakeMessage::Hello(hello) => hello,
        other => panic!("not a hello: {other:?}"),
    }
}

#[test]
fn both_sides_establish_with_mirrored_keys() {
    let (mut a, mut b) = pair(7, 7);
    assert_eq!(pass(&mut a, &mut b), Ok(1));
    assert_eq!(pass(&mut b, &mut a), Ok(1));
    assert_eq!(pass(&mut a, &mut b), Ok(1));
    let at_a = a.poll_established().expect("A established");
    let at_b = b.poll_established().expect("B established");
    assert_eq!((at_a.node.as_str(), at_a.boot.as_str(), at_a.side), ("ND_b", "b1", Side::Dialer));
    assert_eq!((at_b.node.as_str(), at_b.boot.as_str(), at_b.side), ("ND_a", "a1", Side::Responder));
    assert_eq!(at_a.shards, local("ND_b", "b1").shards);
    assert_eq!(at_b.shards, local("ND_a", "a1").shards);
    assert_eq!(at_a.keys.srtp_out, at_b.keys.srtp_in);
    assert_eq!(at_a.keys.srtp_in, at_b.keys.srtp_out);
    assert_eq!(at_a.keys.ctl_out, at_b.keys.ctl_in);
    assert_eq!(at_a.keys.ctl_in, at_b.keys.ctl_out);
    assert!(a.poll_transmit().is_none() && b.poll_transmit().is_none());
    assert!(a.poll_established().is_none(), "given once");
}

#[test]
fn a_wrong_secret_fails_on_both_sides() {
    let (mut a, mut b) = pair(7, 8);
    pass(&mut a, &mut b).unwrap();
    // A finds B's MAC wrong and refuses; B learns why.
    assert_eq!(pass(&mut b, &mut a), Err(HandshakeError::BadMac));
    assert_eq!(pass(&mut a, &mut b), Err(HandshakeError::Refused(RefuseReason::BadMac)));
    assert!(a.poll_established().is_none() && b.poll_established().is_none());
    assert!(b.poll_transmit().is_none(), "a refusal is not answered");
    assert!(HandshakeError::BadMac.is_auth_failure());
    assert!(HandshakeError::Refused(RefuseReason::BadMac).is_auth_failure());
}

#[test]
fn a_dialer_with_the_wrong_secret_is_caught_by_the_responder_too() {
    // A dialer that skipped checking mac_b (or forged mac_a) still fails at B.
    let (mut a, mut b) = pair(7, 7);
    pass(&mut a, &mut b).unwrap();
    let hello_b = hello_of(b.poll_transmit().unwrap());
    let hello_a = Hello {
        node: "ND_a".into(),
        boot: "a1".into(),
        nonce: Nonce([1; 32]),
        shards: local("ND_a", "a1").shards,
        version: MESH_VERSION,
        mac: None,
    };
    let forged =
        Mac(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &[9; 40]), &transcript(DIALER_LABEL, &hello_a, &hello_b))
            .as_ref()
            .try_into()
            .unwrap());
    assert_eq!(b.handle_message(HandshakeMessage::Confirm { mac: forged }), Err(HandshakeError::BadMac));
    assert_eq!(b.poll_transmit(), Some(HandshakeMessage::Refuse { reason: RefuseReason::BadMac }));
    assert!(b.poll_established().is_none());
}

#[test]
fn the_responders_mac_reflected_as_the_dialers_fails() {
    let (mut a, mut b) = pair(7, 7);
    pass(&mut a, &mut b).unwrap();
    let hello_b = hello_of(b.poll_transmit().unwrap());
    let mac_b = hello_b.mac.unwrap();
    assert_eq!(b.handle_message(HandshakeMessage::Confirm { mac: mac_b }), Err(HandshakeError::BadMac));
    assert!(b.poll_established().is_none());
}

#[test]
fn a_tampered_nonce_fails() {
    // B's nonce changed on the way to A.
    let (mut a, mut b) = pair(7, 7);
    pass(&mut a, &mut b).unwrap();
    let mut hello_b = hello_of(b.poll_transmit().unwrap());
    hello_b.nonce.0[5] ^= 1;
    assert_eq!(a.handle_message(HandshakeMessage::Hello(hello_b)), Err(HandshakeError::BadMac));

    // A's nonce changed on the way to B: B's MAC covers the changed one, and A sees that.
    let (mut a, mut b) = pair(7, 7);
    let mut hello_a = hello_of(a.poll_transmit().unwrap());
    hello_a.nonce.0[0] ^= 0x80;
    b.handle_message(HandshakeMessage::Hello(hello_a)).unwrap();
    assert_eq!(pass(&mut b, &mut a), Err(HandshakeError::BadMac));
}

#[test]
fn tampered_shards_or_boot_fail() {
    for tamper in [
        (|h: &mut Hello| h.shards[0].rtcp_ssrc += 1) as fn(&mut Hello),
        |h: &mut Hello| h.shards[0].media_addr.set_port(1),
        |h: &mut Hello| h.shards.clear(),
        |h: &mut Hello| h.boot = "b2".into(),
    ] {
        let (mut a, mut b) = pair(7, 7);
        pass(&mut a, &mut b).unwrap();
        let mut hello_b = hello_of(b.poll_transmit().unwrap());
        tamper(&mut hello_b);
        assert_eq!(a.handle_message(HandshakeMessage::Hello(hello_b)), Err(HandshakeError::BadMac));
    }
}

#[test]
fn a_node_never_links_to_itself() {
    let mut b = Handshake::responder(local("ND_b", "b1"), &secret(7), [2; 32], admit_all());
    let mut own = Handshake::dialer(local("ND_b", "b2"), &secret(7), [1; 32], ("ND_b".into(), "b1".into()));
    assert_eq!(pass(&mut own, &mut b), Err(HandshakeError::SelfConnect));
    assert_eq!(b.poll_transmit(), Some(HandshakeMessage::Refuse { reason: RefuseReason::SelfConnect }));

    // The dialer refuses a responder with its id as well.
    let mut a = Handshake::dialer(local("ND_a", "a1"), &secret(7), [1; 32], ("ND_b".into(), "b1".into()));
    let mirror = Handshake::responder(local("ND_a", "a2"), &secret(7), [2; 32], admit_all());
    let hello_a = hello_of(a.poll_transmit().unwrap());
    // The mirror would refuse (same id) before answering; build its answer by hand.
    let mut hello_b = Hello {
        node: "ND_a".into(),
        boot: "a2".into(),
        nonce: Nonce([2; 32]),
        shards: vec![],
        version: MESH_VERSION,
        mac: None,
    };
    hello_b.mac = Some(mirror.sign(RESPONDER_LABEL, &hello_a, &hello_b));
    assert_eq!(a.handle_message(HandshakeMessage::Hello(hello_b)), Err(HandshakeError::SelfConnect));
}

#[test]
fn only_the_lower_id_dials() {
    let mut b = Handshake::responder(local("ND_a", "a1"), &secret(7), [2; 32], admit_all());
    let mut higher = Handshake::dialer(local("ND_b", "b1"), &secret(7), [1; 32], ("ND_a".into(), "a1".into()));
    assert_eq!(pass(&mut higher, &mut b), Err(HandshakeError::WrongDirection));
}

#[test]
fn the_responder_admits_only_listed_peers_and_the_dialer_only_the_expected_one() {
    let mut a = Handshake::dialer(local("ND_a", "a1"), &secret(7), [1; 32], ("ND_b".into(), "b1".into()));
    let mut b = Handshake::responder(
        local("ND_b", "b1"),
        &secret(7),
        [2; 32],
        Box::new(|node, boot| node.as_str() == "ND_a" && boot.as_str() == "a0"),
    );
    let refused = pass(&mut a, &mut b).unwrap_err();
    assert_eq!(refused, HandshakeError::UnexpectedPeer { node: "ND_a".into(), boot: "a1".into() });
    assert!(!refused.is_auth_failure(), "a lagging registry is no authentication failure");
    assert_eq!(pass(&mut b, &mut a), Err(HandshakeError::Refused(RefuseReason::UnexpectedPeer)));

    // B restarted (boot b2) while A's registry still lists b1.
    let mut a = Handshake::dialer(local("ND_a", "a1"), &secret(7), [1; 32], ("ND_b".into(), "b1".into()));
    let mut b = Handshake::responder(local("ND_b", "b2"), &secret(7), [2; 32], admit_all());
    pass(&mut a, &mut b).unwrap();
    assert_eq!(pass(&mut b, &mut a), Err(HandshakeError::UnexpectedPeer { node: "ND_b".into(), boot: "b2".into() }));
}

#[test]
fn another_version_is_refused() {
    let (mut a, mut b) = pair(7, 7);
    let mut hello_a = hello_of(a.poll_transmit().unwrap());
    hello_a.version = 2;
    assert_eq!(
        b.handle_message(HandshakeMessage::Hello(hello_a)),
        Err(HandshakeError::VersionMismatch { ours: MESH_VERSION, theirs: 2 })
    );
    assert_eq!(b.poll_transmit(), Some(HandshakeMessage::Refuse { reason: RefuseReason::VersionMismatch }));
}

#[test]
fn garbage_and_out_of_order_messages_are_refused() {
    let (_, mut b) = pair(7, 7);
    assert!(matches!(b.handle_bytes(b"\x16\x03\x01 not json"), Err(HandshakeError::Malformed(_))));
    assert_eq!(b.poll_transmit(), Some(HandshakeMessage::Refuse { reason: RefuseReason::Malformed }));
    // Over after an error.
    assert!(matches!(
        b.handle_bytes(&HandshakeMessage::Confirm { mac: Mac([0; 32]) }.encode()),
        Err(HandshakeError::UnexpectedMessage { expected: "nothing", .. })
    ));

    let (_, mut b) = pair(7, 7);
    assert_eq!(
        b.handle_message(HandshakeMessage::Confirm { mac: Mac([0; 32]) }),
        Err(HandshakeError::UnexpectedMessage { expected: "hello", got: "confirm" })
    );

    // A responder's hello (with a MAC) sent to a responder.
    let (mut a, mut b) = pair(7, 7);
    pass(&mut a, &mut b).unwrap();
    let hello_b = b.poll_transmit().unwrap();
    let (_, mut other) = pair(7, 7);
    assert!(matches!(other.handle_message(hello_b), Err(HandshakeError::UnexpectedMessage { .. })));

    // A dialer's hello (no MAC) sent to a dialer.
    let (mut a, _) = pair(7, 7);
    let mut hello = hello_of(a.poll_transmit().unwrap());
    hello.node = "ND_b".into();
    assert_eq!(
        a.handle_message(HandshakeMessage::Hello(hello)),
        Err(HandshakeError::UnexpectedMessage { expected: "hello with mac", got: "hello" })
    );

    // Empty and overlong ids.
    for node in [String::new(), "x".repeat(MAX_ID_LEN + 1)] {
        let (mut a, mut b) = pair(7, 7);
        let mut hello = hello_of(a.poll_transmit().unwrap());
        hello.node = NodeId(node);
        assert!(matches!(b.handle_message(HandshakeMessage::Hello(hello)), Err(HandshakeError::Malformed(_))));
    }
}

#[test]
fn messages_have_a_stable_wire_form() {
    let hello = Hello {
        node: "ND_a".into(),
        boot: "a1".into(),
        nonce: Nonce([0xff; 32]),
        shards: vec![ShardEndpoint { media_addr: "10.0.0.1:7000".parse().unwrap(), rtcp_ssrc: 5 }],
        version: 1,
        mac: None,
    };
    let text = String::from_utf8(HandshakeMessage::Hello(hello.clone()).encode()).unwrap();
    assert_eq!(
        text,
        r#"{"type":"hello","node":"ND_a","boot":"a1","nonce":"//////////////////////////////////////////8","shards":[{"media_addr":"10.0.0.1:7000","rtcp_ssrc":5}],"version":1}"#
    );
    assert_eq!(HandshakeMessage::decode(text.as_bytes()), Ok(HandshakeMessage::Hello(hello)));
    // A nonce of another length is malformed.
    let short = text.replace("//////////////////////////////////////////8", "AAAA");
    assert!(matches!(HandshakeMessage::decode(short.as_bytes()), Err(HandshakeError::Malformed(_))));
    // A refusal reason from a newer build is still read.
    assert_eq!(
        HandshakeMessage::decode(br#"{"type":"refuse","reason":"too_busy"}"#),
        Ok(HandshakeMessage::Refuse { reason: RefuseReason::Other })
    );
}

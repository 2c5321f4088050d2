// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Onion tickets: what a store issues parses back to the same ticket and
//! verifies; any changed character, another author's signature, or a
//! ticket of another kind or length is refused.

use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use xaeroflux_merkle::sign_statement;
use xaeroflux_store::{Store, StoreOptions};
use xaeroflux_tor::{BINDING_DOMAIN, OnionTicket, TorError, parse_onion_address};

/// A ticket signed by a key made from `seed` (the store signs the same way).
fn ticket(seed: u8, service: [u8; 32], port: u16) -> OnionTicket {
    let key = SigningKey::from_bytes(&[seed; 32]);
    let mut msg = service.to_vec();
    msg.extend_from_slice(&port.to_be_bytes());
    OnionTicket {
        author: key.verifying_key().to_bytes(),
        service,
        port,
        signature: sign_statement(&key, BINDING_DOMAIN, &msg),
    }
}

#[test]
fn a_store_issues_a_ticket_that_parses_back_and_names_its_service() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let service =
        parse_onion_address("2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion")
            .unwrap();
    let t = OnionTicket::issue(&store, service, 7650);
    t.verify().unwrap();
    let text = t.to_string();
    let back: OnionTicket = text.parse().unwrap();
    assert_eq!(back, t);
    assert_eq!(back.author, store.author());
    assert_eq!(
        back.dial_address(),
        "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion:7650"
    );
    // Case and surrounding whitespace do not matter.
    let shouted: OnionTicket = format!("  {}\n", text.to_ascii_uppercase())
        .parse()
        .unwrap();
    assert_eq!(shouted, t);
}

#[test]
fn another_authors_signature_or_a_moved_port_is_not_vouched_for() {
    let mut t = ticket(1, [9; 32], 80);
    t.author = ticket(2, [9; 32], 80).author;
    assert!(matches!(
        t.to_string().parse::<OnionTicket>(),
        Err(TorError::NotVouched(_))
    ));
    let mut t = ticket(1, [9; 32], 80);
    t.port = 81;
    assert!(matches!(t.verify(), Err(TorError::NotVouched(_))));
}

#[test]
fn tickets_of_another_kind_or_length_are_refused() {
    let text = ticket(1, [9; 32], 80).to_string();
    for bad in [
        String::new(),
        "xfonion".to_string(),
        text.replacen("xfonion1", "xfonion2", 1),
        text.replacen("xfonion1", "xfticket", 1),
        text[..text.len() - 1].to_string(),
        format!("{text}a"),
        text.replacen('a', "1", 1), // not base32
    ] {
        assert!(
            matches!(bad.parse::<OnionTicket>(), Err(TorError::BadTicket(_))),
            "{bad:?}"
        );
    }
}

proptest! {
    #[test]
    fn tickets_round_trip(seed in any::<u8>(), service in any::<[u8; 32]>(), port in any::<u16>()) {
        let t = ticket(seed, service, port);
        let back: OnionTicket = t.to_string().parse().unwrap();
        prop_assert_eq!(back, t);
    }

    /// Any one character changed (to another base32 character) makes the
    /// ticket fail to parse or fail its signature: never a different
    /// ticket that verifies.
    #[test]
    fn a_changed_character_is_refused(at in 0usize..208, to in 0usize..32) {
        let t = ticket(3, [5; 32], 443);
        let text = t.to_string();
        let alphabet = b"abcdefghijklmnopqrstuvwxyz234567";
        let i = "xfonion1".len() + at;
        let mut bytes = text.clone().into_bytes();
        prop_assume!(bytes[i] != alphabet[to]);
        bytes[i] = alphabet[to];
        let changed = String::from_utf8(bytes).unwrap();
        prop_assert!(changed.parse::<OnionTicket>().is_err(), "{}", changed);
    }
}

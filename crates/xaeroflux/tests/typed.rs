// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Typed events: a round trip through the store, a value read in place in
//! the segment's mapping, refusal of flipped bytes, a wrong tag and a wrong
//! version, each a typed error naming the event.

use std::time::Duration;

use xaeroflux::typed::{TYPED_HEADER_LEN, encode_typed};
use xaeroflux::{Core, EventRefTyped, EventType, EventTyped, Filter, Topic, TypedError};

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, PartialEq, Clone)]
struct Listing {
    id: u64,
    title: String,
    price_cents: u32,
    tags: Vec<String>,
}

impl EventType for Listing {
    const TAG: [u8; 4] = *b"lstg";
    const VERSION: u16 = 1;
}

#[derive(rkyv::Archive, rkyv::Serialize, Debug)]
struct Like {
    post: u64,
}

impl EventType for Like {
    const TAG: [u8; 4] = *b"like";
    const VERSION: u16 = 1;
}

/// The same tag as `Listing`, a later layout.
#[derive(rkyv::Archive, rkyv::Serialize)]
struct ListingV2 {
    id: u64,
}

impl EventType for ListingV2 {
    const TAG: [u8; 4] = *b"lstg";
    const VERSION: u16 = 2;
}

fn listing(i: u64) -> Listing {
    Listing {
        id: i,
        title: format!("bike number {i}"),
        price_cents: 1000 + i as u32,
        tags: (0..i % 4).map(|t| format!("tag{t}")).collect(),
    }
}

/// The address ranges this process maps from files under `dir/segments`.
fn segment_maps(dir: &std::path::Path) -> Vec<(usize, usize)> {
    let segs = std::fs::canonicalize(dir.join("segments")).unwrap();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .filter(|l| l.contains(segs.to_str().unwrap()))
        .map(|l| {
            let range = l.split_whitespace().next().unwrap();
            let (a, b) = range.split_once('-').unwrap();
            (
                usize::from_str_radix(a, 16).unwrap(),
                usize::from_str_radix(b, 16).unwrap(),
            )
        })
        .collect()
}

#[test]
fn typed_events_round_trip_and_are_read_in_place_in_the_segment_map() {
    let dir = tempfile::tempdir().unwrap();
    let core = Core::builder().open(dir.path()).unwrap();
    let market = Topic::new("market").unwrap();
    for i in 0..50 {
        core.append_typed(&market, &listing(i)).unwrap();
        // Other events in between, of odd sizes: payloads stay aligned.
        core.append(core.new_event_in(&market, vec![1u8; (i * 7 % 13) as usize]))
            .unwrap();
        core.append_typed(&market, &Like { post: i }).unwrap();
    }
    let maps = segment_maps(dir.path());
    assert!(!maps.is_empty(), "no segment mapping found");
    let mut n = 0;
    for ev in core.iter_typed::<Listing>(&market) {
        let (event, value) = ev.unwrap();
        let want = listing(n);
        assert_eq!(value.id, want.id);
        assert_eq!(value.title.as_str(), want.title);
        assert_eq!(value.price_cents, want.price_cents);
        let tags: Vec<&str> = value.tags.iter().map(|t| t.as_str()).collect();
        assert_eq!(
            tags,
            want.tags.iter().map(String::as_str).collect::<Vec<_>>()
        );
        // Zero copy: the archived value lies inside the segment's mapping,
        // inside the event's own payload.
        assert!(value.is_zero_copy());
        let at = &*value as *const _ as usize;
        assert!(
            maps.iter().any(|(a, b)| (*a..*b).contains(&at)),
            "{at:#x} not in {maps:x?}"
        );
        let p = event.payload();
        let range = p.as_ptr() as usize..p.as_ptr() as usize + p.len();
        assert!(range.contains(&at));
        assert_eq!((p.as_ptr() as usize + TYPED_HEADER_LEN) % 8, 0);
        // Deserialized, it is the value appended.
        let back: Listing = rkyv::deserialize::<Listing, rkyv::rancor::Error>(&*value).unwrap();
        assert_eq!(back, want);
        n += 1;
    }
    assert_eq!(n, 50);
    assert_eq!(core.iter_typed::<Like>(&market).count(), 50);
    // An owned event (from a subscription) reads the same, in its vector
    // or through an aligned copy.
    let mut sub = core.subscribe(Filter::topic(&market), 0).unwrap();
    let first = sub.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
    let v = first.typed::<Listing>().unwrap();
    assert_eq!(v.title.as_str(), "bike number 0");
    // A payload at an odd address is copied, and reads the same.
    let mut shifted = vec![0u8];
    shifted.extend_from_slice(&first.payload);
    let v = xaeroflux::typed::read_typed::<Listing>(&|| "shifted".into(), &shifted[1..]).unwrap();
    assert!(!v.is_zero_copy());
    assert_eq!(v.title.as_str(), "bike number 0");
}

#[test]
fn a_wrong_tag_a_wrong_version_and_bad_bytes_are_typed_errors_naming_the_event() {
    let dir = tempfile::tempdir().unwrap();
    let core = Core::builder().open(dir.path()).unwrap();
    let t = Topic::new("t").unwrap();
    let r = core.append_typed(&t, &listing(3)).unwrap();
    let ev = core.iter_topic(&t).next().unwrap().unwrap();
    let name = format!("{}@{}", r.log, r.seq);
    match ev.typed::<Like>() {
        Err(TypedError::WrongTag { event, found, want }) => {
            assert_eq!(
                (event.as_str(), found.as_str(), want.as_str()),
                (name.as_str(), "lstg", "like")
            );
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a listing read as a like"),
    }
    match ev.typed::<ListingV2>() {
        Err(TypedError::WrongVersion {
            found: 1,
            want: 2,
            event,
        }) => assert_eq!(event, name),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a version 1 payload read as version 2"),
    }
    // An untyped payload.
    core.append(core.new_event_in(&t, b"abc")).unwrap();
    let ev = core.iter_topic(&t).nth(1).unwrap().unwrap();
    assert!(matches!(
        ev.typed::<Listing>(),
        Err(TypedError::NotTyped { .. })
    ));

    // Every single-byte flip of a typed payload, stored with a valid record
    // CRC (so only validation stands between the bytes and the reader):
    // each reads as some valid value or is refused; none panics; flips of
    // the string's length and offset are refused.
    let good = encode_typed(&listing(2)).unwrap();
    let mut refused = 0;
    for i in TYPED_HEADER_LEN..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x80;
        core.append(core.new_event_in(&t, bad)).unwrap();
    }
    for ev in core.iter_topic(&t).skip(2) {
        let ev = ev.unwrap();
        match ev.typed::<Listing>() {
            Ok(v) => {
                // Accepted bytes still give a well-formed value.
                let _ = (v.title.as_str().len(), v.tags.len());
            }
            Err(TypedError::Invalid { event, .. }) => {
                assert!(event.ends_with(&format!("@{}", ev.seq())));
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(refused >= 4, "only {refused} flips refused");
    // Through iter_typed the refusals are error items and reading goes on.
    let items: Vec<_> = core.iter_typed::<Listing>(&t).collect();
    assert_eq!(items.len(), 1 + good.len() - TYPED_HEADER_LEN);
    assert!(items[0].is_ok());
    assert_eq!(items.iter().filter(|r| r.is_err()).count(), refused);
}

#[test]
fn a_flipped_byte_on_disk_is_a_corruption_error_before_any_typed_read() {
    let dir = tempfile::tempdir().unwrap();
    let t = Topic::new("t").unwrap();
    {
        let core = Core::builder().open(dir.path()).unwrap();
        core.append_typed(&t, &listing(1)).unwrap();
        core.close().unwrap();
    }
    let seg = dir.path().join("segments/00000000.xfseg");
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes
        .windows(13)
        .position(|w| w == b"bike number 1")
        .unwrap();
    bytes[at] ^= 1;
    std::fs::write(&seg, bytes).unwrap();
    // A writer refuses to open on it (it re-reads the open page), and so
    // does a reader (it reads its own logs' heads at open), naming the
    // file and the reason; no typed read ever sees the bytes.
    for ro in [false, true] {
        let b = Core::builder();
        let b = if ro { b.read_only() } else { b };
        let err = b.open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("00000000.xfseg") && err.contains("checksum"),
            "{err}"
        );
    }
}

// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! The Loro adapter: two peers insert concurrently at the same position,
//! sync over loopback TCP, and converge; a third opens from the log alone.

use std::time::Duration;

use xaeroflux::{Core, Topic};
use xaeroflux_crdt::text::TextDoc;

const WAIT: Duration = Duration::from_secs(30);

fn sync_pair(a: &Core, b: &Core) {
    xaeroflux_testkit::tcp_pair(
        |c| a.sync_over_tcp(c, &[], WAIT).unwrap(),
        |c| b.sync_over_tcp(c, &[], WAIT).unwrap(),
    );
}

#[test]
fn two_peers_insert_at_the_same_position_concurrently_and_converge() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let cores: Vec<Core> = dirs
        .iter()
        .map(|d| Core::builder().open(d.path()).unwrap())
        .collect();
    let (a, b, c) = (&cores[0], &cores[1], &cores[2]);
    let topic = Topic::new("notes").unwrap();
    let mut da = TextDoc::open(a, &topic).unwrap();
    da.loro().get_text("body").insert(0, "Hello world").unwrap();
    assert!(da.commit().unwrap().is_some());
    assert!(da.commit().unwrap().is_none(), "nothing new to commit");
    sync_pair(a, b);
    let mut db = TextDoc::open(b, &topic).unwrap();
    assert_eq!(db.loro().get_text("body").to_string(), "Hello world");
    // Both insert at position 5, concurrently, and both edit a map key.
    da.loro().get_text("body").insert(5, ", dear").unwrap();
    da.loro().get_map("meta").insert("author", "ann").unwrap();
    db.loro().get_text("body").insert(5, " big").unwrap();
    db.loro().get_map("meta").insert("author", "ben").unwrap();
    da.commit().unwrap();
    db.commit().unwrap();
    sync_pair(a, b);
    assert_eq!(da.refresh().unwrap(), 1);
    assert_eq!(db.refresh().unwrap(), 1);
    let (ta, tb) = (
        da.loro().get_text("body").to_string(),
        db.loro().get_text("body").to_string(),
    );
    assert_eq!(ta, tb);
    assert!(
        ta == "Hello, dear big world" || ta == "Hello big, dear world",
        "{ta}"
    );
    assert_eq!(da.to_json(), db.to_json());
    // A third store synced from b opens the same document from the log.
    sync_pair(b, c);
    let dc = TextDoc::open(c, &topic).unwrap();
    assert_eq!(dc.loro().get_text("body").to_string(), ta);
    assert_eq!(dc.to_json(), da.to_json());
    // Other events in the topic are not updates and are passed over.
    a.append(a.new_event_in(&topic, b"not an update")).unwrap();
    assert_eq!(da.refresh().unwrap(), 0);
}

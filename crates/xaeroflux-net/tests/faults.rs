// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Faults inside a node, on purpose (the store's failpoints): a disk that
//! fails under the store's writer leaves a node that still serves every
//! acknowledged event to its peers, verified, and a store that reopens;
//! a blob store that fails says why and appends nothing.

use std::time::Duration;

use xaeroflux_net::NetError;
use xaeroflux_store::failpoints::{Failpoints, Fault, Point};
use xaeroflux_store::{Store, StoreOptions, Topic};

mod common;
use common::{config, same_log, start, start_with, wait_until};

const SLOW: Duration = Duration::from_secs(3600);

fn with_failpoints(fp: &Failpoints) -> StoreOptions {
    StoreOptions {
        failpoints: Some(fp.clone()),
        ..StoreOptions::default()
    }
}

#[test]
fn a_node_whose_disk_fails_keeps_serving_reads() {
    for (point, errno) in [
        (Point::Fsync, libc::EIO),
        (Point::SegmentWrite, libc::ENOSPC),
        (Point::IndexCommit, libc::ENOSPC),
    ] {
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let fp = Failpoints::new();
        let a = start_with(da.path(), with_failpoints(&fp), config(&["iroh"], SLOW));
        let chat = Topic::new("chat").unwrap();
        let log = a.append(&chat, 500, "acknowledged");
        a.net.join(&chat, &[]).unwrap();
        // An append is answered before its index commit; a read waits for
        // it, so the fault below cannot land in the first append's commit.
        assert_eq!(a.store.log_size(&log).unwrap(), 500);
        fp.arm(point, Fault::now(errno));
        // An append is answered before its index commit: when that commit
        // fails, the store stops and the next append says why.
        let err = (0..2)
            .find_map(|_| {
                a.store
                    .append_batch(vec![xaeroflux_store::NewEvent::application(
                        &chat,
                        b"lost".to_vec(),
                    )])
                    .err()
            })
            .unwrap_or_else(|| panic!("{point:?}: two appends passed a failing disk"));
        assert_eq!(
            err.os_error().and_then(|e| e.raw_os_error()),
            Some(errno),
            "{point:?}: {err}"
        );
        // A peer that joins now gets every acknowledged event, verified.
        let b = start(db.path(), &["iroh"], SLOW);
        b.net.join(&chat, &[a.net.peer()]).unwrap();
        wait_until(
            &format!("{point:?}: B holds A's acknowledged events"),
            || same_log(&a.store, &b.store, &log, 500),
        );
        b.store.verify().unwrap();
        b.stop();
        a.net.shutdown();
        // The writer stopped on the error; closing says so or not, but the
        // directory reopens whole.
        if let Ok(s) = std::sync::Arc::try_unwrap(a.store) {
            let _ = s.close();
        }
        let s = Store::open(da.path(), StoreOptions::default()).unwrap();
        s.verify().unwrap();
        assert!(s.log_size(&log).unwrap() >= 500, "{point:?}");
        s.close().unwrap();
    }
}

#[test]
fn a_failing_blob_store_says_why_and_appends_nothing() {
    for errno in [libc::EIO, libc::ENOSPC] {
        let dir = tempfile::tempdir().unwrap();
        let fp = Failpoints::new();
        let a = start_with(
            dir.path(),
            with_failpoints(&fp),
            config(&["iroh", "iroh-blob"], SLOW),
        );
        let files = Topic::new("files").unwrap();
        fp.arm(Point::BlobWrite, Fault::now(errno).times(1));
        let err = a
            .net
            .append_blob(&files, b"a payload".as_slice())
            .unwrap_err();
        match &err {
            NetError::Io(e) => {
                assert_eq!(e.source.raw_os_error(), Some(errno), "{err}");
                assert!(e.path.starts_with(dir.path().join("blobs")), "{err}");
                let cause = std::io::Error::from_raw_os_error(errno).to_string();
                let cause = cause.split(" (os error").next().unwrap();
                assert!(err.to_string().contains(cause), "{err}");
            }
            other => panic!("not an OS error: {other:?}"),
        }
        assert!(
            a.store
                .logs()
                .unwrap()
                .iter()
                .all(|l| l.log.topic != files.id())
        );
        // The store was not touched: the next blob goes in.
        let (r, blob) = a.net.append_blob(&files, b"a payload".as_slice()).unwrap();
        assert_eq!(r.seq, 0);
        assert_eq!(a.net.read_blob(&blob.hash).unwrap().unwrap(), b"a payload");
        a.stop();
    }
}

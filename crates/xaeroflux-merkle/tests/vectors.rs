// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! The public RFC 6962 / RFC 9162 vectors of `shared/vectors/rfc6962.txt`
//! (a copy lives in `tests/data/`), checked against this crate's tree,
//! proofs and verifiers.

use xaeroflux_merkle::{
    EMPTY_ROOT, Hash, MemoryTree, from_hex, hash_leaf, hash_node, mth, verify_consistency,
    verify_inclusion,
};

const VECTORS: &str = include_str!("data/rfc6962.txt");

fn h(s: &str) -> Hash {
    from_hex(s.trim()).unwrap_or_else(|| panic!("bad hex {s:?}"))
}

/// Lines of one lettered section (`A.5`, `B.`...).
fn section<'a>(start: &str, end: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut on = false;
    for line in VECTORS.lines() {
        let t = line.trim_start();
        if t.starts_with(start) {
            on = true;
            continue;
        }
        if on && t.starts_with(end) {
            break;
        }
        if on {
            out.push(line);
        }
    }
    assert!(!out.is_empty(), "section {start} not found");
    out
}

/// Parses `(a SEP b): hash` blocks whose further hashes sit on the next lines.
fn proofs(lines: &[&str], sep: &str) -> Vec<(u64, u64, Vec<Hash>)> {
    let mut out: Vec<(u64, u64, Vec<Hash>)> = Vec::new();
    for line in lines {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix('(') {
            let Some((head, tail)) = rest.split_once("):") else {
                continue;
            };
            let Some((a, b)) = head.split_once(sep) else {
                continue;
            };
            let mut path = Vec::new();
            let tail = tail.trim();
            if tail != "[]" && !tail.is_empty() {
                path.push(h(tail));
            }
            out.push((a.trim().parse().unwrap(), b.trim().parse().unwrap(), path));
        } else if t.len() == 64 && t.bytes().all(|c| c.is_ascii_hexdigit()) {
            out.last_mut().expect("hash before any proof").2.push(h(t));
        }
    }
    out
}

fn leaf_inputs() -> Vec<Vec<u8>> {
    let mut inputs = vec![Vec::new(); 8];
    for line in section("A.2", "A.3") {
        for part in line
            .split("  ")
            .map(str::trim)
            .filter(|p| p.starts_with('d'))
        {
            let (name, value) = part.split_once('=').unwrap();
            let i: usize = name.trim()[1..].parse().unwrap();
            let v = value.trim().trim_matches('"');
            inputs[i] = hex::decode(v).unwrap();
        }
    }
    inputs
}

fn tree_a() -> MemoryTree {
    let mut t = MemoryTree::new();
    for d in leaf_inputs() {
        t.push(hash_leaf(&d));
    }
    t
}

#[test]
fn hasher_units() {
    let lines = section("A.1", "A.2");
    let get = |key: &str| {
        let l = lines.iter().find(|l| l.contains(key)).unwrap();
        h(l.rsplit('=').next().unwrap())
    };
    assert_eq!(EMPTY_ROOT, get("SHA256(\"\")"));
    assert_eq!(hash_leaf(b""), get("leaf(\"\")"));
    assert_eq!(hash_leaf(b"L123456"), get("leaf(\"L123456\")"));
    let mut l = [0u8; 32];
    let mut r = [0u8; 32];
    // node("N123","N456") hashes the raw strings as children: check by hand.
    use sha2::Digest;
    let want = get("node(\"N123\",\"N456\")");
    let mut hasher = sha2::Sha256::new();
    hasher.update([1u8]);
    hasher.update(b"N123");
    hasher.update(b"N456");
    let got: Hash = hasher.finalize().into();
    assert_eq!(got, want);
    // and hash_node agrees with the same construction on 32-byte children
    l[0] = 1;
    r[0] = 2;
    let mut hasher = sha2::Sha256::new();
    hasher.update([1u8]);
    hasher.update(l);
    hasher.update(r);
    let direct: Hash = hasher.finalize().into();
    assert_eq!(hash_node(&l, &r), direct);
}

#[test]
fn node_hashes_and_roots() {
    let t = tree_a();
    let mut level = 0u32;
    let mut idx = 0u64;
    use xaeroflux_merkle::NodeSource;
    for line in section("A.3", "A.4") {
        let s = line.trim();
        if let Some(rest) = s.strip_prefix("level") {
            level = rest
                .trim_end_matches(':')
                .trim()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            idx = 0;
        } else if s.len() == 64 {
            assert_eq!(
                t.node(level, idx).unwrap(),
                h(s),
                "level {level} index {idx}"
            );
            idx += 1;
        }
    }
    let mut n_roots = 0;
    let leaves: Vec<Hash> = leaf_inputs().iter().map(|d| hash_leaf(d)).collect();
    for line in section("A.4", "A.5") {
        let s = line.trim();
        if let Some(rest) = s.strip_prefix("n=") {
            let (n, root) = rest.split_once(' ').unwrap();
            let n: u64 = n.parse().unwrap();
            assert_eq!(t.root_at(n).unwrap(), h(root), "root at {n}");
            assert_eq!(mth(&leaves[..n as usize]), h(root));
            n_roots += 1;
        }
    }
    assert_eq!(n_roots, 9);
}

#[test]
fn inclusion_proofs() {
    let t = tree_a();
    let leaves: Vec<Hash> = leaf_inputs().iter().map(|d| hash_leaf(d)).collect();
    let ps = proofs(&section("A.5", "A.6"), "of");
    assert_eq!(ps.len(), 5);
    for (one_based, size, path) in ps {
        let index = one_based - 1;
        assert_eq!(
            t.inclusion_path(index, size).unwrap(),
            path,
            "{index} of {size}"
        );
        let root = t.root_at(size).unwrap();
        verify_inclusion(&leaves[index as usize], index, size, &path, &root).unwrap();
    }
}

#[test]
fn consistency_proofs() {
    let t = tree_a();
    let ps = proofs(&section("A.6", "A.7"), "->");
    assert_eq!(ps.len(), 5);
    for (m, n, path) in ps {
        assert_eq!(t.consistency_proof(m, n).unwrap(), path, "{m} -> {n}");
        let (r1, r2) = (t.root_at(m).unwrap(), t.root_at(n).unwrap());
        verify_consistency(m, n, &r1, &r2, &path).unwrap();
    }
}

#[test]
fn self_generated_leaf_n_vectors() {
    let mut t = MemoryTree::new();
    for i in 0..1000 {
        t.push(hash_leaf(format!("leaf {i}").as_bytes()));
    }
    let lines = section("B.", "THE-END");
    let mut checked = 0;
    for line in &lines {
        let s = line.trim();
        if let Some(rest) = s.strip_prefix("size") {
            let (n, root) = rest.split_once(':').unwrap();
            let n: u64 = n.trim().parse().unwrap();
            assert_eq!(t.root_at(n).unwrap(), h(root), "size {n}");
            checked += 1;
        }
    }
    assert_eq!(checked, 7);
    // The proofs of section B: three blocks of hashes after their headings.
    let mut blocks: Vec<(String, Vec<Hash>)> = Vec::new();
    for line in &lines {
        let s = line.trim();
        if s.starts_with("PROOF(") || s.starts_with("PATH(") {
            blocks.push((s.to_string(), Vec::new()));
        } else if s.len() == 64
            && let Some(b) = blocks.last_mut()
        {
            b.1.push(h(s));
        }
    }
    assert_eq!(blocks.len(), 3);
    assert_eq!(t.consistency_proof(999, 1000).unwrap(), blocks[0].1);
    assert_eq!(t.consistency_proof(100, 1000).unwrap(), blocks[1].1);
    assert_eq!(t.inclusion_path(500, 1000).unwrap(), blocks[2].1);
    let root = t.root();
    verify_consistency(999, 1000, &t.root_at(999).unwrap(), &root, &blocks[0].1).unwrap();
    verify_consistency(100, 1000, &t.root_at(100).unwrap(), &root, &blocks[1].1).unwrap();
    verify_inclusion(&hash_leaf(b"leaf 500"), 500, 1000, &blocks[2].1, &root).unwrap();
}

#[test]
fn vendored_copy_matches_shared_vectors() {
    // The workspace sits beside shared/ in CI and on developer machines.
    let shared = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/vectors/rfc6962.txt"
    );
    if let Ok(text) = std::fs::read_to_string(shared) {
        assert_eq!(
            text, VECTORS,
            "tests/data/rfc6962.txt is out of date with {shared}"
        );
    }
}

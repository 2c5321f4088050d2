// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Property tests: the incremental tree against the RFC 9162 definitions
//! computed naively from the leaf list, and tampered proofs.

use proptest::prelude::*;
use xaeroflux_merkle::reference::{path as naive_path, proof as naive_proof};
use xaeroflux_merkle::{
    Frontier, Hash, MemoryTree, hash_leaf, hash_node, mth, verify_consistency, verify_inclusion,
};

fn leaves(n: usize, salt: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| hash_leaf(format!("{salt}/{i}").as_bytes()))
        .collect()
}

fn tree(d: &[Hash]) -> MemoryTree {
    let mut t = MemoryTree::new();
    for l in d {
        t.push(*l);
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn incremental_root_equals_naive_mth(n in 0usize..260, salt in any::<u64>()) {
        let d = leaves(n, salt);
        let mut f = Frontier::new();
        for (i, l) in d.iter().enumerate() {
            prop_assert_eq!(f.root(), mth(&d[..i]));
            f.push(*l);
        }
        prop_assert_eq!(f.root(), mth(&d));
        let t = tree(&d);
        prop_assert_eq!(t.root(), mth(&d));
        prop_assert_eq!(Frontier::load(&t, n as u64).unwrap(), f);
    }

    #[test]
    fn inclusion_proofs_match_rfc_and_verify(n in 1usize..600, pick in any::<u64>(), salt in any::<u64>()) {
        let d = leaves(n, salt);
        let t = tree(&d);
        let size = 1 + (pick % n as u64) as usize;
        let index = ((pick >> 20) % size as u64) as usize;
        let path = t.inclusion_path(index as u64, size as u64).unwrap();
        prop_assert_eq!(&path, &naive_path(index, &d[..size]));
        let root = mth(&d[..size]);
        prop_assert!(verify_inclusion(&d[index], index as u64, size as u64, &path, &root).is_ok());

        // Tampering: another leaf, index, size, root, a flipped hash, a shorter or longer path.
        let other = hash_leaf(b"not a leaf");
        prop_assert!(verify_inclusion(&other, index as u64, size as u64, &path, &root).is_err());
        if size > 1 {
            let wrong_index = (index + 1) % size;
            prop_assert!(verify_inclusion(&d[index], wrong_index as u64, size as u64, &path, &root).is_err());
        }
        // The size is bound to the root by the signed checkpoint; on its own a
        // wrong size must fail wherever it changes the shape of the path.
        for wrong in [size + 1, size * 2 + 3, size.saturating_sub(1)] {
            if wrong == size {
                continue;
            }
            let ok = verify_inclusion(&d[index], index as u64, wrong as u64, &path, &root).is_ok();
            if index >= wrong || naive_path(index, &vec![[0u8; 32]; wrong]).len() != path.len() {
                prop_assert!(!ok, "size {} accepted for a path of size {}", wrong, size);
            }
        }
        prop_assert!(verify_inclusion(&d[index], index as u64, size as u64, &path, &hash_node(&root, &root)).is_err());
        if !path.is_empty() {
            let mut bad = path.clone();
            let j = (pick as usize) % bad.len();
            bad[j][(pick >> 8) as usize % 32] ^= 1 << (pick % 8);
            prop_assert!(verify_inclusion(&d[index], index as u64, size as u64, &bad, &root).is_err());
            prop_assert!(verify_inclusion(&d[index], index as u64, size as u64, &path[..path.len() - 1], &root).is_err());
        }
        let mut longer = path.clone();
        longer.push(root);
        prop_assert!(verify_inclusion(&d[index], index as u64, size as u64, &longer, &root).is_err());
    }

    #[test]
    fn consistency_proofs_match_rfc_and_verify(n in 1usize..600, pick in any::<u64>(), salt in any::<u64>()) {
        let d = leaves(n, salt);
        let t = tree(&d);
        let new = 1 + (pick % n as u64) as usize;
        let old = ((pick >> 20) % (new as u64 + 1)) as usize;
        let proof = t.consistency_proof(old as u64, new as u64).unwrap();
        let expect = naive_proof(old, &d[..new]);
        prop_assert_eq!(&proof, &expect);
        let (r1, r2) = (mth(&d[..old]), mth(&d[..new]));
        prop_assert!(verify_consistency(old as u64, new as u64, &r1, &r2, &proof).is_ok());

        if old > 0 && old < new {
            let mut bad = proof.clone();
            let j = (pick as usize) % bad.len();
            bad[j][(pick >> 8) as usize % 32] ^= 1 << (pick % 8);
            prop_assert!(verify_consistency(old as u64, new as u64, &r1, &r2, &bad).is_err());
            prop_assert!(verify_consistency(old as u64, new as u64, &r1, &r2, &proof[..proof.len() - 1]).is_err());
            let mut longer = proof.clone();
            longer.push(r1);
            prop_assert!(verify_consistency(old as u64, new as u64, &r1, &r2, &longer).is_err());
            prop_assert!(verify_consistency(old as u64, new as u64, &r2, &r1, &proof).is_err());
            for (m2, n2) in [(old, new + 1), (old, new * 2 + 3), (old - 1, new), (old + 1, new)] {
                if m2 == 0 || m2 >= n2 || (m2, n2) == (old, new) {
                    continue;
                }
                let ok = verify_consistency(m2 as u64, n2 as u64, &r1, &r2, &proof).is_ok();
                if naive_proof(m2, &vec![[0u8; 32]; n2]).len() != proof.len() {
                    prop_assert!(!ok, "sizes {} -> {} accepted for a proof of {} -> {}", m2, n2, old, new);
                }
            }
            // A tree with one leaf changed is not an extension of the old one.
            let mut forked = d[..new].to_vec();
            forked[(pick as usize >> 3) % old] = hash_leaf(b"fork");
            prop_assert!(verify_consistency(old as u64, new as u64, &r1, &mth(&forked), &proof).is_err());
        }
    }

    #[test]
    fn sizes_beyond_the_tree_are_refused(n in 0usize..100, extra in 1u64..50) {
        let t = tree(&leaves(n, 1));
        prop_assert!(t.root_at(n as u64 + extra).is_err());
        prop_assert!(t.inclusion_path(0, n as u64 + extra).is_err());
        prop_assert!(t.consistency_proof(0, n as u64 + extra).is_err());
        prop_assert!(t.inclusion_path(n as u64, n as u64).is_err());
    }
}

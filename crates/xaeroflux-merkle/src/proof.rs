//! RFC 9162 tree hashes, audit paths and consistency proofs over any source
//! of perfect-subtree hashes, and their verification.

use crate::{EMPTY_ROOT, Hash, MerkleError, hash_node};

/// A source of perfect-subtree hashes of one tree.
///
/// `node(level, index)` is the hash of the perfect subtree over leaves
/// `[index << level, (index + 1) << level)`; level 0 are the leaf hashes.
/// Callers only ask for nodes that lie wholly inside the tree.
pub trait NodeSource {
    /// The error a lookup may give (a store's I/O or corruption error).
    type Error: From<MerkleError>;
    /// The hash of the perfect subtree at `level` and `index`.
    fn node(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;

    /// A remembered `MTH` of the leaves `[start, end)` (a range that is not a
    /// perfect subtree), if the source keeps such things. Such a hash never
    /// changes once `end` leaves exist, so a source may remember it.
    fn remembered_range(&self, start: u64, end: u64) -> Option<Hash> {
        let _ = (start, end);
        None
    }

    /// Offers the `MTH` of `[start, end)` to be remembered.
    fn remember_range(&self, start: u64, end: u64, hash: &Hash) {
        let _ = (start, end, hash);
    }
}

/// The largest power of two strictly below `n` (`n >= 2`).
pub(crate) fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// RFC 9162 `MTH` of a list of leaf hashes, computed directly.
pub fn mth(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => EMPTY_ROOT,
        [one] => *one,
        _ => {
            let (left, right) = leaves.split_at(split(leaves.len() as u64) as usize);
            hash_node(&mth(left), &mth(right))
        }
    }
}

/// `MTH` of leaves `[start, end)` (non-empty), from perfect subtrees.
pub fn subtree_root<S: NodeSource + ?Sized>(
    src: &S,
    start: u64,
    end: u64,
) -> Result<Hash, S::Error> {
    if end <= start {
        return Err(MerkleError::SizeOutOfRange {
            requested: start,
            available: end,
        }
        .into());
    }
    let len = end - start;
    if len.is_power_of_two() && start.is_multiple_of(len) {
        return src.node(len.trailing_zeros(), start >> len.trailing_zeros());
    }
    if let Some(h) = src.remembered_range(start, end) {
        return Ok(h);
    }
    let k = split(len);
    let left = subtree_root(src, start, start + k)?;
    let right = subtree_root(src, start + k, end)?;
    let h = hash_node(&left, &right);
    src.remember_range(start, end, &h);
    Ok(h)
}

/// The root of the first `size` leaves.
pub fn root_at<S: NodeSource + ?Sized>(src: &S, size: u64) -> Result<Hash, S::Error> {
    if size == 0 {
        return Ok(EMPTY_ROOT);
    }
    subtree_root(src, 0, size)
}

/// RFC 9162 audit path `PATH(index, D[size])`, bottom-up.
pub fn inclusion_path<S: NodeSource + ?Sized>(
    src: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, S::Error> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size }.into());
    }
    let mut path = Vec::with_capacity(64);
    path_rec(src, index, 0, size, &mut path)?;
    Ok(path)
}

fn path_rec<S: NodeSource + ?Sized>(
    src: &S,
    m: u64,
    start: u64,
    end: u64,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split(n);
    if m < start + k {
        path_rec(src, m, start, start + k, out)?;
        out.push(subtree_root(src, start + k, end)?);
    } else {
        path_rec(src, m, start + k, end, out)?;
        out.push(subtree_root(src, start, start + k)?);
    }
    Ok(())
}

/// RFC 9162 consistency proof `PROOF(old_size, D[new_size])`.
///
/// Empty when `old_size` is 0 or equals `new_size`.
pub fn consistency_proof<S: NodeSource + ?Sized>(
    src: &S,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, S::Error> {
    if old_size > new_size {
        return Err(MerkleError::SizeOutOfRange {
            requested: old_size,
            available: new_size,
        }
        .into());
    }
    let mut out = Vec::with_capacity(64);
    if old_size > 0 && old_size < new_size {
        subproof(src, old_size, 0, new_size, true, &mut out)?;
    }
    Ok(out)
}

fn subproof<S: NodeSource + ?Sized>(
    src: &S,
    m: u64,
    start: u64,
    end: u64,
    whole: bool,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if m == n {
        if !whole {
            out.push(subtree_root(src, start, end)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(src, m, start, start + k, whole, out)?;
        out.push(subtree_root(src, start + k, end)?);
    } else {
        subproof(src, m - k, start + k, end, false, out)?;
        out.push(subtree_root(src, start, start + k)?);
    }
    Ok(())
}

/// Verifies an RFC 9162 inclusion proof (section 2.1.3.2).
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    path: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let mut f = index;
    let mut s = size - 1;
    let mut r = *leaf_hash;
    for p in path {
        if s == 0 {
            return Err(MerkleError::InvalidProof("inclusion path is too long"));
        }
        if f & 1 == 1 || f == s {
            r = hash_node(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = hash_node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(MerkleError::InvalidProof("inclusion path is too short"));
    }
    if &r != root {
        return Err(MerkleError::InvalidProof(
            "inclusion path leads to another root",
        ));
    }
    Ok(())
}

/// Verifies an RFC 9162 consistency proof (section 2.1.4.2).
///
/// Sizes that are equal need an empty proof and equal roots; an old size of 0
/// needs an empty proof (the empty tree is a prefix of every tree).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::SizeOutOfRange {
            requested: old_size,
            available: new_size,
        });
    }
    if old_size == new_size || old_size == 0 {
        if !proof.is_empty() {
            return Err(MerkleError::InvalidProof(if old_size == 0 {
                "proof from the empty tree must be empty"
            } else {
                "proof between equal sizes must be empty"
            }));
        }
        if old_size == new_size && old_root != new_root {
            return Err(MerkleError::InvalidProof(
                "equal sizes with different roots",
            ));
        }
        return Ok(());
    }
    let (fr, sr) = consistency_roots(old_size, new_size, old_root, proof)?;
    if &fr != old_root {
        return Err(MerkleError::InvalidProof(
            "proof does not lead to the old root",
        ));
    }
    if &sr != new_root {
        return Err(MerkleError::InvalidProof(
            "proof does not lead to the new root",
        ));
    }
    Ok(())
}

/// The old and new roots a consistency proof leads to, for
/// `0 < old_size < new_size`: the RFC 9162 section 2.1.4.2 walk.
fn consistency_roots(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    proof: &[Hash],
) -> Result<(Hash, Hash), MerkleError> {
    let (seed, path) = if old_size.is_power_of_two() {
        (*old_root, proof)
    } else {
        match proof.split_first() {
            Some((first, rest)) => (*first, rest),
            None => return Err(MerkleError::InvalidProof("empty consistency proof")),
        }
    };
    if proof.is_empty() {
        return Err(MerkleError::InvalidProof("empty consistency proof"));
    }
    let mut f = old_size - 1;
    let mut s = new_size - 1;
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let mut fr = seed;
    let mut sr = seed;
    for c in path {
        if s == 0 {
            return Err(MerkleError::InvalidProof("consistency proof is too long"));
        }
        if f & 1 == 1 || f == s {
            fr = hash_node(c, &fr);
            sr = hash_node(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = hash_node(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(MerkleError::InvalidProof("consistency proof is too short"));
    }
    Ok((fr, sr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_or_reversed_ranges_are_errors() {
        let t = crate::MemoryTree::new();
        assert!(subtree_root(&t, 3, 3).is_err());
        assert!(subtree_root(&t, 5, 2).is_err());
    }

    #[test]
    fn split_is_largest_power_below() {
        assert_eq!(split(2), 1);
        assert_eq!(split(3), 2);
        assert_eq!(split(4), 2);
        assert_eq!(split(5), 4);
        assert_eq!(split(1 << 40), 1 << 39);
        assert_eq!(split((1 << 40) + 1), 1 << 40);
    }
}

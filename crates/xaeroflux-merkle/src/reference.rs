//! RFC 9162 section 2.1, written as the RFC defines it: `MTH`, `PATH` and
//! `PROOF` computed recursively from the whole list of leaf hashes. Slow
//! (every call rehashes the tree) and obviously right: the reference the
//! incremental code and the store are tested against.

use crate::Hash;
use crate::proof::{mth, split};

/// RFC 9162 `MTH(D[n])`.
pub fn root(leaves: &[Hash]) -> Hash {
    mth(leaves)
}

/// RFC 9162 `PATH(m, D[n])`: the audit path of leaf `m`; empty when
/// `m` is not a leaf of `d`.
pub fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
    let n = d.len();
    if n <= 1 || m >= n {
        return Vec::new();
    }
    let k = split(n as u64) as usize;
    let (left, right) = d.split_at(k);
    let mut p = if m < k {
        path(m, left)
    } else {
        path(m - k, right)
    };
    p.push(if m < k { mth(right) } else { mth(left) });
    p
}

/// RFC 9162 `PROOF(m, D[n])`: the consistency proof from size `m` to the
/// whole of `d`; empty for `m == 0` and `m >= n`, as the RFC's verifier
/// expects.
pub fn proof(m: usize, d: &[Hash]) -> Vec<Hash> {
    if m == 0 || m >= d.len() {
        return Vec::new();
    }
    subproof(m, d, true)
}

/// RFC 9162 `SUBPROOF(m, D[n], b)`.
fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { Vec::new() } else { vec![mth(d)] };
    }
    if n < 2 {
        return Vec::new();
    }
    let k = split(n as u64) as usize;
    let (left, right) = d.split_at(k);
    let mut p = if m <= k {
        subproof(m, left, b)
    } else {
        subproof(m - k, right, false)
    };
    p.push(if m <= k { mth(right) } else { mth(left) });
    p
}

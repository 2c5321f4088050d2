//! Fork proofs: two checkpoints of one log, both signed by its author, that
//! cannot both be true. Kept as small text files in `forks/` beside the
//! store (format in docs/sync-protocol.md).

use std::path::{Path, PathBuf};

use xaeroflux_merkle::{NoteVerifier, from_hex, to_hex, verify_consistency};
pub use xaeroflux_types::ForkSide;
use xaeroflux_types::LogId;
use xaeroflux_types::fs::write_new_atomic;

use crate::error::{Result, corrupt, io_err};

/// First line of a fork proof file.
pub const FORK_MAGIC: &str = "xaeroflux fork proof v1";
/// Largest fork proof file read back.
const MAX_FORK_FILE: u64 = 64 * 1024;

/// Two checkpoints of one log, both signed by its author, that disagree:
/// at the size `at`, the tree each commits to has a different root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkProof {
    /// The log.
    pub log: LogId,
    /// The checkpoint this store holds (signed by the author).
    pub ours: String,
    /// The checkpoint a peer presented (signed by the author too).
    pub theirs: String,
    /// The size at which the two trees are compared (at most both sizes).
    pub at: u64,
    /// Our tree at `at`, and its proof to `ours`.
    pub our_side: ForkSide,
    /// Their tree at `at`, and its proof to `theirs`; `None` when only
    /// their signed head is known (a longer head of this store's own log):
    /// then two heads are kept, but the fork is not proven.
    pub their_side: Option<ForkSide>,
}

impl ForkProof {
    /// Checks the proof: both notes verify under the log author's key,
    /// both sides' proofs hold from `at` to their checkpoints, and the
    /// roots at `at` differ. Returns whether the fork is proven (`false`:
    /// two valid heads without their side's evidence).
    pub fn verify(&self) -> Result<bool> {
        let v = NoteVerifier::new(&self.log.origin(), &self.log.author)?;
        let ours = v.verify_checkpoint(&self.ours)?;
        let theirs = v.verify_checkpoint(&self.theirs)?;
        verify_consistency(
            self.at,
            ours.size,
            &self.our_side.root,
            &ours.root,
            &self.our_side.proof,
        )?;
        let Some(their) = &self.their_side else {
            return Ok(false);
        };
        verify_consistency(
            self.at,
            theirs.size,
            &their.root,
            &theirs.root,
            &their.proof,
        )?;
        Ok(self.at > 0 && their.root != self.our_side.root)
    }

    pub(crate) fn encode(&self) -> String {
        let side = |s: &ForkSide| {
            let p: Vec<String> = s.proof.iter().map(to_hex).collect();
            format!(
                "{} {}",
                to_hex(&s.root),
                if p.is_empty() {
                    "-".into()
                } else {
                    p.join(",")
                }
            )
        };
        let mut s = format!("{FORK_MAGIC}\nlog {}\nat {}\n", self.log, self.at);
        s.push_str(&format!("our-side {}\n", side(&self.our_side)));
        match &self.their_side {
            Some(t) => s.push_str(&format!("their-side {}\n", side(t))),
            None => s.push_str("their-side -\n"),
        }
        s.push_str("--- ours\n");
        s.push_str(&self.ours);
        s.push_str("--- theirs\n");
        s.push_str(&self.theirs);
        s
    }

    pub(crate) fn decode(path: &Path, text: &str) -> Result<Self> {
        let bad = |why: &str| corrupt(path, 0, format!("fork proof: {why}"));
        let (head, rest) = text
            .split_once("--- ours\n")
            .ok_or_else(|| bad("no ours"))?;
        let (ours, theirs) = rest
            .split_once("--- theirs\n")
            .ok_or_else(|| bad("no theirs"))?;
        let mut lines = head.lines();
        if lines.next() != Some(FORK_MAGIC) {
            return Err(bad("not a version 1 fork proof"));
        }
        let mut field = |name: &str| {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|l| l.strip_prefix(' '))
                .ok_or_else(|| bad(&format!("bad {name} line")))
        };
        let log = field("log")?.parse::<LogId>().map_err(|_| bad("bad log"))?;
        let at = field("at")?.parse::<u64>().map_err(|_| bad("bad size"))?;
        let our = field("our-side")?.to_string();
        let their = field("their-side")?.to_string();
        let side = |text: &str| -> Result<ForkSide> {
            let (root, proof) = text.split_once(' ').ok_or_else(|| bad("bad side"))?;
            let root = from_hex(root).ok_or_else(|| bad("bad root"))?;
            let mut p = Vec::new();
            if proof != "-" {
                for h in proof.split(',') {
                    if p.len() >= 128 {
                        return Err(bad("proof too long"));
                    }
                    p.push(from_hex(h).ok_or_else(|| bad("bad proof hash"))?);
                }
            }
            Ok(ForkSide { root, proof: p })
        };
        Ok(Self {
            log,
            ours: ours.to_string(),
            theirs: theirs.to_string(),
            at,
            our_side: side(&our)?,
            their_side: if their == "-" {
                None
            } else {
                Some(side(&their)?)
            },
        })
    }
}

pub(crate) fn forks_dir(store_dir: &Path) -> PathBuf {
    store_dir.join("forks")
}

/// Writes a fork proof unless the same one is kept already (its name is a
/// hash of its text). Whole and durable: two sessions finding the same
/// fork at once write it once.
pub(crate) fn save(store_dir: &Path, proof: &ForkProof) -> Result<bool> {
    let dir = forks_dir(store_dir);
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let text = proof.encode();
    let digest = to_hex(&xaeroflux_merkle::sha256(&[text.as_bytes()]));
    let name = format!("{}.fork", digest.get(..32).unwrap_or(&digest));
    Ok(write_new_atomic(&dir.join(name), text.as_bytes(), None)?)
}

pub(crate) fn load_all(store_dir: &Path) -> Result<Vec<ForkProof>> {
    let dir = forks_dir(store_dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&dir)(e)),
    };
    let mut out = Vec::new();
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "fork"))
        .collect();
    paths.sort();
    for path in paths {
        let len = std::fs::metadata(&path).map_err(io_err(&path))?.len();
        if len > MAX_FORK_FILE {
            return Err(corrupt(&path, 0, "fork proof file too large"));
        }
        let bytes = std::fs::read(&path).map_err(io_err(&path))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| corrupt(&path, e.utf8_error().valid_up_to() as u64, "not UTF-8"))?;
        out.push(ForkProof::decode(&path, &text)?);
    }
    Ok(out)
}

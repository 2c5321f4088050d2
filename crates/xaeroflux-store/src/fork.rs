//! Fork proofs: two checkpoints of one log, both signed by its author, that
//! cannot both be true. Kept as small text files in `forks/` beside the
//! store (format in docs/sync-protocol.md).

use std::path::{Path, PathBuf};

use xaeroflux_merkle::{Hash, NoteVerifier, from_hex, to_hex, verify_consistency};

use crate::error::{Result, corrupt, io_err};
use crate::event::LogId;

/// First line of a fork proof file.
pub const FORK_MAGIC: &str = "xaeroflux fork proof v1";
/// Largest fork proof file read back.
const MAX_FORK_FILE: u64 = 64 * 1024;

/// Two signed checkpoints of one log that disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkProof {
    /// The log.
    pub log: LogId,
    /// The checkpoint this store holds (signed by the author).
    pub ours: String,
    /// The checkpoint a peer presented (signed by the author too).
    pub theirs: String,
    /// When `theirs` is not longer than `ours`: this store's root at the
    /// size of `theirs`, and the consistency proof from there to `ours`.
    /// Together they show `theirs` is not a prefix of `ours`.
    pub evidence: Option<(Hash, Vec<Hash>)>,
}

impl ForkProof {
    /// Checks the proof: both notes verify under the log author's key, and
    /// either they claim the same size with different roots, or the
    /// evidence shows the shorter one is not a prefix of the longer. Returns
    /// whether the fork is proven (`false`: two valid heads, one longer,
    /// without evidence).
    pub fn verify(&self) -> Result<bool> {
        let v = NoteVerifier::new(&self.log.origin(), &self.log.author)?;
        let ours = v.verify_checkpoint(&self.ours)?;
        let theirs = v.verify_checkpoint(&self.theirs)?;
        if ours.size == theirs.size {
            return Ok(ours.root != theirs.root);
        }
        let Some((root_at, proof)) = &self.evidence else {
            return Ok(false);
        };
        if theirs.size > ours.size {
            return Ok(false);
        }
        verify_consistency(theirs.size, ours.size, root_at, &ours.root, proof)?;
        Ok(*root_at != theirs.root)
    }

    pub(crate) fn encode(&self) -> String {
        let mut s = format!("{FORK_MAGIC}\nlog {}\n", self.log);
        match &self.evidence {
            Some((root, proof)) => {
                s.push_str(&format!("root-at-their-size {}\n", to_hex(root)));
                let p: Vec<String> = proof.iter().map(to_hex).collect();
                s.push_str(&format!("proof {}\n", p.join(",")));
            }
            None => s.push_str("root-at-their-size -\nproof -\n"),
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
        let log = lines
            .next()
            .and_then(|l| l.strip_prefix("log "))
            .and_then(|l| l.parse::<LogId>().ok())
            .ok_or_else(|| bad("bad log line"))?;
        let root = lines
            .next()
            .and_then(|l| l.strip_prefix("root-at-their-size "))
            .ok_or_else(|| bad("bad root line"))?;
        let proof = lines
            .next()
            .and_then(|l| l.strip_prefix("proof "))
            .ok_or_else(|| bad("bad proof line"))?;
        let evidence = if root == "-" {
            None
        } else {
            let root = from_hex(root).ok_or_else(|| bad("bad root"))?;
            let mut p = Vec::new();
            for h in proof.split(',').filter(|h| !h.is_empty()) {
                p.push(from_hex(h).ok_or_else(|| bad("bad proof hash"))?);
            }
            Some((root, p))
        };
        Ok(Self {
            log,
            ours: ours.to_string(),
            theirs: theirs.to_string(),
            evidence,
        })
    }
}

pub(crate) fn forks_dir(store_dir: &Path) -> PathBuf {
    store_dir.join("forks")
}

/// Writes a fork proof unless the same pair is kept already.
pub(crate) fn save(store_dir: &Path, proof: &ForkProof) -> Result<bool> {
    let dir = forks_dir(store_dir);
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let text = proof.encode();
    let name = format!(
        "{}.fork",
        &to_hex(&xaeroflux_merkle::sha256(&[text.as_bytes()]))[..32]
    );
    let path = dir.join(name);
    if path.exists() {
        return Ok(false);
    }
    let tmp = dir.join(".fork.tmp");
    std::fs::write(&tmp, text.as_bytes()).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
    Ok(true)
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

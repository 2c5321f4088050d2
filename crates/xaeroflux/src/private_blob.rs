//! Blobs of private topics: encrypted before they reach the blob store,
//! their key inside the sealed event that references them.
//!
//! `append_blob` in a private topic appends, in one batch, a plain
//! `System` event with the ciphertext's [`BlobRef`] (what every node,
//! relays included, fetches by: it names only random-looking bytes) and
//! the sealed `Application` event with the [`PrivateBlobRef`] (hash,
//! lengths and key) that members open.

use std::io::{Read, Write};
use std::sync::Arc;

use xaeroflux_e2e::{BlobKey, BlobSealer, E2eError, PrivateBlobRef, open_blob, seal_blob};
use xaeroflux_net::{BlobHash, BlobRef, BlobSource, Net};
use xaeroflux_store::{IoError, NewEvent, Receipt, StoreError, Topic};

use crate::private::PrivateTopic;
use crate::reads::ReadEvent;
use crate::{Core, Error, Payload};

fn io(path: &std::path::Path, e: std::io::Error) -> Error {
    StoreError::from(IoError::new(path, e)).into()
}

/// Encrypts the file at `src` into `dst`, chunk by chunk.
fn seal_file(key: &BlobKey, src: &std::path::Path, dst: &std::path::Path) -> Result<u64, Error> {
    let mut input = std::fs::File::open(src).map_err(|e| io(src, e))?;
    let len = input.metadata().map_err(|e| io(src, e))?.len();
    let mut opts = std::fs::OpenOptions::new();
    // The name holds this process's id: a file of that name is a dead
    // process's leftover, and is overwritten.
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut out = std::io::BufWriter::new(opts.open(dst).map_err(|e| io(dst, e))?);
    let mut s = BlobSealer::new(key, len);
    out.write_all(s.header()).map_err(|e| io(dst, e))?;
    let mut chunk = Vec::with_capacity(xaeroflux_e2e::BLOB_CHUNK + 16);
    while !s.is_done() {
        chunk.resize(s.next_len(), 0);
        input.read_exact(&mut chunk).map_err(|e| io(src, e))?;
        s.seal_chunk(&mut chunk)?;
        out.write_all(&chunk).map_err(|e| io(dst, e))?;
    }
    out.flush().map_err(|e| io(dst, e))?;
    Ok(len)
}

/// Numbers this process's temporary files (their names hold the process
/// id too, so two processes on one directory never share one).
static TEMP_NO: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A temporary file in the store directory, removed when dropped.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Core {
    pub(crate) fn append_private_blob(
        &self,
        net: &Net,
        t: &Arc<PrivateTopic>,
        topic: &Topic,
        source: BlobSource<'_>,
    ) -> Result<(Receipt, BlobRef), Error> {
        if !t.can_seal()? {
            return Err(E2eError::NotAllowed(format!(
                "not a member of {} now: this store holds no key for its current epoch",
                topic.name()
            ))
            .into());
        }
        let key = BlobKey::generate()?;
        let (r, plain_size) = match source {
            BlobSource::Bytes(b) => {
                let ct = seal_blob(&key, b)?;
                (net.add_blob(BlobSource::Bytes(&ct))?, b.len() as u64)
            }
            BlobSource::Path(p) => {
                let dir = self.dir().join("tmp");
                std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
                let n = TEMP_NO.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let tmp = TempFile(dir.join(format!("blob-{}-{n}.xfeb", std::process::id())));
                let len = seal_file(&key, p, &tmp.0)?;
                (net.add_blob(BlobSource::Path(&tmp.0))?, len)
            }
        };
        let sealed = PrivateBlobRef {
            hash: r.hash.0,
            size: r.size,
            plain_size,
            key,
        };
        let batch = self.store.append_batch(vec![
            NewEvent::system(topic, r.encode()),
            NewEvent::application(topic, sealed.encode()).encrypted(true),
        ])?;
        let (Some(ev), Some(head)) = (batch.events.last(), batch.heads.first()) else {
            return Err(Error::from(E2eError::NotAllowed(
                "the batch came back without its receipts".into(),
            )));
        };
        let receipt = Receipt {
            log: ev.log,
            seq: ev.seq,
            leaf_hash: ev.leaf_hash,
            size: head.size,
            root: head.root,
        };
        Ok((receipt, r))
    }

    /// The blob an event references, as the blob store holds it: a plain
    /// topic's blob, or a private topic's ciphertext (when this store can
    /// open the event). Wait for it with [`Core::wait_for_blob`].
    pub fn event_blob(&self, ev: &ReadEvent<'_>) -> Option<BlobRef> {
        match &ev.payload {
            Payload::Plain(p) => BlobRef::decode(p),
            Payload::Decrypted(p) => PrivateBlobRef::decode(p).map(|r| BlobRef {
                hash: BlobHash(r.hash),
                size: r.size,
            }),
            Payload::Encrypted { .. } => None,
        }
    }

    /// The bytes of the blob an event references, once the blob store
    /// holds them whole: a private topic's decrypted with the key its
    /// sealed event carries. `None` when the event references no blob this
    /// store can read, or the blob has not arrived yet; an encrypted blob
    /// that does not open is an error.
    pub fn read_event_blob(&self, ev: &ReadEvent<'_>) -> Result<Option<Vec<u8>>, Error> {
        self.with_net(|net| self.read_event_blob_on(net, ev))
    }

    fn read_event_blob_on(&self, net: &Net, ev: &ReadEvent<'_>) -> Result<Option<Vec<u8>>, Error> {
        match &ev.payload {
            Payload::Plain(p) => match BlobRef::decode(p) {
                Some(r) => Ok(net.read_blob(&r.hash)?),
                None => Ok(None),
            },
            Payload::Decrypted(p) => {
                let Some(r) = PrivateBlobRef::decode(p) else {
                    return Ok(None);
                };
                let Some(ct) = net.read_blob(&BlobHash(r.hash))? else {
                    return Ok(None);
                };
                let pt = open_blob(&r.key, &ct)?;
                if pt.len() as u64 != r.plain_size {
                    return Err(E2eError::Refused {
                        what: "encrypted blob",
                    }
                    .into());
                }
                Ok(Some(pt))
            }
            Payload::Encrypted { .. } => Ok(None),
        }
    }
}

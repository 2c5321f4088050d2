//! The checks that compare index tables with each other: what no value's
//! CRC covers.

use std::collections::HashMap;

use heed::RoTxn;
use xaeroflux_types::{LogId, Topic};

use super::codec::decode_topic_log_key;
use super::{Index, LogRecord};
use crate::error::{Result, corrupt};

impl Index {
    /// Checks the tables whose keys carry meaning no value CRC covers: every
    /// topic name hashes to its key, every topic-log and checkpoint entry
    /// names a log that exists under that topic and number, and every log
    /// has its number and topic entries.
    pub fn check_cross_tables(&self, txn: &RoTxn, logs: &[(LogId, LogRecord)]) -> Result<()> {
        let by_no: HashMap<u32, &LogId> = logs.iter().map(|(id, r)| (r.log_no, id)).collect();
        for item in self.dbs.topics.iter(txn).map_err(self.err())? {
            let (k, v) = item.map_err(self.err())?;
            let body = self.open_value(v, "topic name")?;
            let name = std::str::from_utf8(body).map_err(|_| self.bad(v, "topic name"))?;
            if Topic::id_of(name).0[..] != *k {
                return Err(self.bad(k, "topic key (does not match its name)"));
            }
        }
        let mut topic_entries = 0usize;
        for item in self.dbs.topic_logs.iter(txn).map_err(self.err())? {
            let (k, _) = item.map_err(self.err())?;
            let ok = decode_topic_log_key(k)
                .is_some_and(|(topic, no)| by_no.get(&no).is_some_and(|id| id.topic.0 == topic));
            if !ok {
                return Err(self.bad(k, "topic-log key"));
            }
            topic_entries += 1;
        }
        if topic_entries != logs.len() {
            return Err(corrupt(
                &self.data_file,
                0,
                "topic table does not list every log once",
            ));
        }
        for (id, r) in logs {
            if self.log_id(txn, r.log_no)? != *id {
                return Err(corrupt(
                    &self.data_file,
                    0,
                    format!("log number {} names another log", r.log_no),
                ));
            }
        }
        for item in self.dbs.checkpoints.iter(txn).map_err(self.err())? {
            let (k, _) = item.map_err(self.err())?;
            let no = <[u8; 4]>::try_from(k).ok().map(u32::from_be_bytes);
            if !no.is_some_and(|n| by_no.contains_key(&n)) {
                return Err(self.bad(k, "checkpoint key"));
            }
        }
        Ok(())
    }
}

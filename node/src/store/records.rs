//! The tally's records in RocksDB: `sm_data` read through the tally's
//! `Records` seam, by point get and by prefix scan.

use std::sync::Arc;

use rocksdb::{DB, Direction, IteratorMode, ReadOptions};

use super::{CF_SM_DATA, cf};
use crate::tally::Records;
use crate::tally::records::ReadError;

/// Reads of `sm_data` at its latest state. The state machine writes only
/// under its state lock and readers hold that lock's read side, so what
/// they read here always matches the aggregates in memory.
pub struct DbRecords {
    pub db: Arc<DB>,
}

impl Records for DbRecords {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ReadError> {
        self.db
            .get_cf(cf(&self.db, CF_SM_DATA), key)
            .map_err(|e| ReadError(e.to_string()))
    }

    fn multi_get(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, ReadError> {
        // RocksDB skips its own sort of sorted keys (`Overlay::prefetch`
        // sorts them), but must not be told so of keys that are not.
        self.db
            .batched_multi_get_cf(cf(&self.db, CF_SM_DATA), keys, keys.is_sorted())
            .into_iter()
            .map(|r| {
                r.map(|v| v.map(|v| v.to_vec()))
                    .map_err(|e| ReadError(e.to_string()))
            })
            .collect()
    }

    fn scan(
        &self,
        prefix: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), ReadError> {
        let mut opts = ReadOptions::default();
        // Scans read a run of records once (the load at start, a history):
        // keep them from pushing the point reads' blocks out of the cache.
        opts.fill_cache(false);
        if let Some(upper) = prefix_end(prefix) {
            opts.set_iterate_upper_bound(upper);
        }
        let it = self.db.iterator_cf_opt(
            cf(&self.db, CF_SM_DATA),
            opts,
            IteratorMode::From(prefix, Direction::Forward),
        );
        for kv in it {
            let (k, v) = kv.map_err(|e| ReadError(e.to_string()))?;
            if !k.starts_with(prefix) || !f(&k, &v) {
                break;
            }
        }
        Ok(())
    }
}

/// The first key after every key that starts with `prefix`.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

//! The tally's records in RocksDB: `sm_data` and `sm_results` read
//! through the tally's `Records` seam, by point get and by prefix scan,
//! each key in the family its kind names (`families`).

use std::sync::Arc;

use rocksdb::{DB, Direction, IteratorMode, ReadOptions};

use super::cf;
use super::families::{STATE_FAMILIES, family_index, family_of};
use crate::tally::Records;
use crate::tally::records::ReadError;

/// Reads of the tally's records at their latest state. The state machine
/// writes only under its state lock and readers hold that lock's read side,
/// so what they read here always matches the aggregates in memory.
pub struct DbRecords {
    pub db: Arc<DB>,
}

impl Records for DbRecords {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ReadError> {
        self.db
            .get_cf(cf(&self.db, family_of(key)), key)
            .map_err(|e| ReadError(e.to_string()))
    }

    fn multi_get(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, ReadError> {
        let mut out = vec![None; keys.len()];
        // One pass sorts the keys by family, then one batched read each.
        let mut runs: [Vec<usize>; STATE_FAMILIES.len()] = Default::default();
        for (i, k) in keys.iter().enumerate() {
            runs[family_index(k)].push(i);
        }
        for (family, at) in STATE_FAMILIES.into_iter().zip(runs) {
            if at.is_empty() {
                continue;
            }
            let run = || at.iter().map(|i| &keys[*i]);
            // RocksDB skips its own sort of sorted keys (`Overlay::prefetch`
            // sorts them), but must not be told so of keys that are not.
            let sorted = run().is_sorted();
            let got = self
                .db
                .batched_multi_get_cf(cf(&self.db, family), run(), sorted);
            for (i, r) in at.iter().zip(got) {
                out[*i] = r
                    .map(|v| v.map(|v| v.to_vec()))
                    .map_err(|e| ReadError(e.to_string()))?;
            }
        }
        Ok(out)
    }

    fn scan(
        &self,
        prefix: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), ReadError> {
        // An empty prefix is every record: the families in turn.
        let families: &[&str] = match prefix.first() {
            Some(_) => &[family_of(prefix)],
            None => &STATE_FAMILIES,
        };
        for family in families {
            if !self.scan_family(family, prefix, f)? {
                break;
            }
        }
        Ok(())
    }
}

impl DbRecords {
    /// `scan` over one family; false once `f` asked to stop.
    fn scan_family(
        &self,
        family: &str,
        prefix: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<bool, ReadError> {
        let mut opts = ReadOptions::default();
        // Scans read a run of records once (the load at start, a history):
        // keep them from pushing the point reads' blocks out of the cache.
        opts.fill_cache(false);
        if let Some(upper) = prefix_end(prefix) {
            opts.set_iterate_upper_bound(upper);
        }
        let it = self.db.iterator_cf_opt(
            cf(&self.db, family),
            opts,
            IteratorMode::From(prefix, Direction::Forward),
        );
        for kv in it {
            let (k, v) = kv.map_err(|e| ReadError(e.to_string()))?;
            if !k.starts_with(prefix) {
                break;
            }
            if !f(&k, &v) {
                return Ok(false);
            }
        }
        Ok(true)
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

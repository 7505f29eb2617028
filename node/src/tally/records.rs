//! Where the tally's records live: the seam between the pure state machine
//! and its storage.
//!
//! Results, their histories and the request-id index are read on demand
//! through `Records` (RocksDB on a node, a map in tests); only what must be
//! O(1) stays in memory. Writes of the command being applied sit in an
//! overlay (`Overlay`) until the storage layer has written them, so a
//! command sees its own writes and those of earlier commands in the same
//! batch.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use rustc_hash::FxBuildHasher;

use super::Write;

/// A read the storage could not serve (damage, I/O error).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ReadError(pub String);

/// Read access to persisted records.
pub trait Records: Send + Sync {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ReadError>;
    /// `get` of each key, in order: a store that can batch lookups does.
    fn multi_get(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, ReadError> {
        keys.iter().map(|k| self.get(k)).collect()
    }
    /// Calls `f` on each record whose key starts with `prefix`, in key order,
    /// until it returns false.
    fn scan(&self, prefix: &[u8], f: &mut dyn FnMut(&[u8], &[u8]) -> bool)
    -> Result<(), ReadError>;
}

/// Records in a map: for tests, fuzzing and `restore` from a record list.
#[derive(Default)]
pub struct MemRecords(RwLock<BTreeMap<Vec<u8>, Vec<u8>>>);

impl MemRecords {
    pub fn new(records: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> Self {
        MemRecords(RwLock::new(records.into_iter().collect()))
    }
}

impl Records for MemRecords {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ReadError> {
        Ok(self.0.read().expect("records lock").get(key).cloned())
    }

    fn scan(
        &self,
        prefix: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), ReadError> {
        let map = self.0.read().expect("records lock");
        for (k, v) in map.range(prefix.to_vec()..) {
            if !k.starts_with(prefix) || !f(k, v) {
                break;
            }
        }
        Ok(())
    }
}

/// Persisted records plus the writes not yet persisted, which win.
#[derive(Clone)]
pub struct Overlay {
    base: Arc<dyn Records>,
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Base records read ahead by `prefetch`. The base changes only when
    /// the pending writes are persisted, so they stay true until `settle`.
    fetched: HashMap<Vec<u8>, Option<Vec<u8>>, FxBuildHasher>,
}

impl Overlay {
    pub fn new(base: Arc<dyn Records>) -> Self {
        Overlay {
            base,
            pending: BTreeMap::new(),
            fetched: HashMap::default(),
        }
    }

    /// A record, pending writes first. A read the storage cannot serve
    /// leaves the state machine nothing to answer from: it stops here, as
    /// openraft stops on any other storage error.
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        if let Some(v) = self.pending.get(key).or_else(|| self.fetched.get(key)) {
            return v.clone();
        }
        self.base.get(key).expect("reading a state-machine record")
    }

    /// Reads `keys` from the base in one batch, for the `get`s that follow.
    /// A batch of new submissions looks up keys that mostly do not exist,
    /// and RocksDB answers a batch of such misses for much less than one
    /// point lookup each (the Bloom probes of a level go together).
    pub fn prefetch(&mut self, mut keys: Vec<Vec<u8>>) {
        keys.retain(|k| !self.pending.contains_key(k) && !self.fetched.contains_key(k));
        keys.sort_unstable();
        keys.dedup();
        let values = self
            .base
            .multi_get(&keys)
            .expect("reading state-machine records");
        self.fetched.extend(keys.into_iter().zip(values));
    }

    pub fn put(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.pending.insert(key, value);
    }

    /// Records under `prefix` in key order, pending writes merged in.
    pub fn scan(&self, prefix: &[u8], f: &mut dyn FnMut(&[u8], &[u8]) -> bool) {
        let mut pend = self
            .pending
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .peekable();
        let mut go = true;
        let scanned = self.base.scan(prefix, &mut |k, v| {
            while let Some((pk, pv)) = pend.next_if(|(pk, _)| pk.as_slice() <= k) {
                let same = pk.as_slice() == k;
                if let Some(pv) = pv {
                    go = f(pk, pv);
                    if !go {
                        return false;
                    }
                }
                if same {
                    return true; // the pending write replaces the base record
                }
            }
            go = f(k, v);
            go
        });
        scanned.expect("scanning state-machine records");
        if go {
            for (pk, pv) in pend {
                if let Some(pv) = pv
                    && !f(pk, pv)
                {
                    break;
                }
            }
        }
    }

    /// The pending writes, once the storage layer has persisted them (they
    /// are now in the base).
    pub fn settle(&mut self) {
        self.pending.clear();
        self.fetched.clear();
    }

    /// The pending writes, for a caller that persists them itself.
    pub fn pending(&self) -> Vec<Write> {
        self.pending
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_merges_pending_writes_in_key_order() {
        let base = MemRecords::new([
            (b"xa".to_vec(), b"1".to_vec()),
            (b"xc".to_vec(), b"3".to_vec()),
            (b"xe".to_vec(), b"5".to_vec()),
            (b"y".to_vec(), b"9".to_vec()),
        ]);
        let mut o = Overlay::new(Arc::new(base));
        o.put(b"xb".to_vec(), Some(b"2".to_vec()));
        o.put(b"xc".to_vec(), Some(b"33".to_vec()));
        o.put(b"xe".to_vec(), None);
        o.put(b"xf".to_vec(), Some(b"6".to_vec()));
        let mut seen = Vec::new();
        o.scan(b"x", &mut |k, v| {
            seen.push((k.to_vec(), v.to_vec()));
            true
        });
        let want: Vec<(Vec<u8>, Vec<u8>)> = [("xa", "1"), ("xb", "2"), ("xc", "33"), ("xf", "6")]
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        assert_eq!(seen, want);
        assert_eq!(o.get(b"xe"), None);
        assert_eq!(o.get(b"xa"), Some(b"1".to_vec()));
        let mut first = Vec::new();
        o.scan(b"x", &mut |k, _| {
            first.push(k.to_vec());
            first.len() < 2
        });
        assert_eq!(first, vec![b"xa".to_vec(), b"xb".to_vec()]);
    }

    /// What a prefetch read answers the gets after it: pending writes still
    /// win, and the base is asked again only after `settle`, when the
    /// storage has persisted what was pending.
    #[test]
    fn prefetched_records_yield_to_writes_and_last_until_settle() {
        let base = Arc::new(MemRecords::new([(b"qa".to_vec(), b"1".to_vec())]));
        let mut o = Overlay::new(base.clone());
        o.put(b"qc".to_vec(), Some(b"3".to_vec()));
        o.prefetch(vec![
            b"qb".to_vec(),
            b"qa".to_vec(),
            b"qc".to_vec(),
            b"qa".to_vec(),
        ]);
        assert_eq!(o.fetched.len(), 2, "pending keys and repeats are not read");
        assert_eq!(o.get(b"qa"), Some(b"1".to_vec()));
        assert_eq!(o.get(b"qb"), None);
        assert_eq!(o.get(b"qc"), Some(b"3".to_vec()));
        o.put(b"qa".to_vec(), Some(b"11".to_vec()));
        assert_eq!(o.get(b"qa"), Some(b"11".to_vec()));
        // The storage persists the pending writes, then the state settles.
        for (k, v) in o.pending() {
            base.0.write().unwrap().insert(k, v.unwrap());
        }
        base.0
            .write()
            .unwrap()
            .insert(b"qb".to_vec(), b"2".to_vec());
        assert_eq!(o.get(b"qb"), None, "the read ahead stands until settle");
        o.settle();
        assert_eq!(o.get(b"qb"), Some(b"2".to_vec()));
        assert_eq!(o.get(b"qa"), Some(b"11".to_vec()));
    }
}

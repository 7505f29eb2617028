//! The open-data export: every current result of a region and contest,
//! read from one RocksDB snapshot taken together with the list of TPS, so
//! the whole export is one consistent view however long it streams, and
//! the state machine goes on applying meanwhile. Items are spliced from the
//! stored bytes (`tally::wire`), never decoded and encoded again.

use std::io;

use rekap_proto::pb;
use rocksdb::ReadOptions;

use prost::bytes::BytesMut;

use super::{CF_SM_RESULTS, StateMachineStore, cf, invalid, io_err};
use crate::tally::{keys, wire};

/// Results per message.
pub const CHUNK: usize = 1000;

impl StateMachineStore {
    /// Calls `emit` with each chunk, in tree order, until it returns false.
    /// Blocking: run it off the async runtime.
    pub fn export(
        &self,
        region_code: &str,
        contest_id: &str,
        mut emit: impl FnMut(pb::ListJanggalResponse) -> bool,
    ) -> io::Result<Result<(), pb::Rejection>> {
        let db = self.inner_db();
        // Under the state lock: the list and the snapshot see the same
        // applied index (apply writes under the write side).
        let st = self.try_view()?;
        let snap = db.snapshot();
        let list = match st.tally.export_list(region_code, contest_id) {
            Ok(l) => l,
            Err(rej) => return Ok(Err(rej)),
        };
        let applied_index = st.last_applied.map_or(0, |l| l.index);
        drop(st);
        let data = cf(&db, CF_SM_RESULTS);
        let mut all = list.iter();
        let mut scratch = Vec::new();
        loop {
            let chunk: Vec<&[u8]> = all.by_ref().take(CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            let keys = chunk
                .iter()
                .map(|t| {
                    let id = wire::tps_id_of(t)
                        .ok_or_else(|| invalid("an encoded TPS without an id"))?;
                    Ok(keys::result_of(id, contest_id))
                })
                .collect::<io::Result<Vec<_>>>()?;
            let mut opts = ReadOptions::default();
            opts.set_snapshot(&snap);
            opts.fill_cache(false);
            let values = db.batched_multi_get_cf_opt(data, &keys, false, &opts);
            // One buffer per message; each item is a slice of it.
            let mut buf = BytesMut::with_capacity(chunk.len() * 256);
            let mut items = Vec::with_capacity(chunk.len());
            for ((tps, key), v) in chunk.iter().zip(&keys).zip(values) {
                let Some(v) = v.map_err(io_err)? else {
                    continue; // not reported
                };
                wire::encode_item(tps, &v, &mut scratch, &mut buf)
                    .ok_or_else(|| invalid(format!("undecodable result record {key:?}")))?;
                items.push(pb::JanggalItem {
                    encoded: Some(buf.split().freeze()),
                    ..Default::default()
                });
            }
            if items.is_empty() {
                continue;
            }
            let msg = pb::ListJanggalResponse {
                items,
                next_page_token: String::new(),
                total_janggal: 0,
                applied_index,
            };
            if !emit(msg) {
                break;
            }
        }
        Ok(Ok(()))
    }
}

//! Fuzz targets, shared by cargo-fuzz (libFuzzer, `node/fuzz`) and the
//! property tests that run in `cargo test` on stable Rust. Each target takes
//! raw bytes, so both drive exactly the same code:
//!
//! - `decode_and_validate`: every public request and the replicated
//!   `Command`, decoded from arbitrary bytes, validated and applied;
//! - `command_sequence`: commands against a reference tally (sums,
//!   idempotency, revisions);
//! - `authorization`: the authorization decision against a reference table;
//! - `snapshot_parse`: snapshot files, arbitrary and round-tripped.
//!
//! A target panics on a finding; a clean return means the input held.

mod authz;
mod model;
#[cfg(test)]
mod props;
pub(crate) mod world;

use prost::Message;
use rekap_proto::pb;

use crate::store::snapshot;
use crate::tally::{TallyState, revise, rules};

pub use authz::authorization;
pub use model::command_sequence;

/// Decodes `data` as every public request and as a `Command`; whatever
/// decodes is validated and applied to a small cluster state. Nothing may
/// panic, and a command refused by validation must change nothing.
pub fn decode_and_validate(data: &[u8]) {
    if let Ok(s) = pb::Submission::decode(data) {
        let _ = rules::check_submission(&s);
    }
    if let Ok(b) = pb::SubmitBatchRequest::decode(data) {
        let _ = rules::check_batch(&b.submissions);
    }
    if let Ok(c) = pb::CorrectRequest::decode(data) {
        let _ = rules::check_correction(&c.request_id, c.reason);
    }
    if let Ok(c) = pb::ClearFlagsRequest::decode(data) {
        let _ = rules::check_correction(&c.request_id, c.reason);
    }
    if let Ok(o) = pb::ObjectionRequest::decode(data) {
        let _ = revise::check_objection(&o);
    }
    for read in [
        pb::GetTotalsRequest::decode(data).map(|r| r.region_code),
        pb::ListChildrenRequest::decode(data).map(|r| r.region_code),
        pb::GetProgressRequest::decode(data).map(|r| r.region_code),
    ]
    .into_iter()
    .flatten()
    {
        let st = world::state();
        let _ = st.totals(&read, world::CONTEST);
        let _ = st.children_totals(&read, world::CONTEST);
        let _ = st.progress(&read, world::CONTEST);
    }
    if let Ok(m) = pb::ListMissingTpsRequest::decode(data) {
        let _ = world::state().missing(&m.region_code, &m.contest_id, 50, &m.page_token);
    }
    if let Ok(j) = pb::ListJanggalRequest::decode(data) {
        let st = world::state();
        let _ = st.janggal_queue(&j.region_code, &j.contest_id, 50, &j.page_token);
        let _ = st.results_page(&j.region_code, &j.contest_id, 50, &j.page_token);
    }
    if let Ok(cmd) = pb::Command::decode(data) {
        apply_checked(cmd);
    }
}

/// Applies `cmd` to the reference world; a refused command must leave the
/// state's data records as they were (only the audit chain moves).
fn apply_checked(cmd: pb::Command) {
    let mut st = world::state();
    let before = world::data_records(&st);
    let (resp, _writes) = st.apply(&cmd, 1_000);
    if let Some(pb::command_response::Kind::Rejection(r)) = &resp.kind {
        assert_eq!(
            world::data_records(&st),
            before,
            "a refused command ({}) changed the state",
            r.rule
        );
    }
    // Whatever was applied survives a restore from its records.
    let back = TallyState::restore(st.records()).expect("records restore");
    assert_eq!(back.records(), st.records(), "restore differs");
    assert_eq!(
        world::recounted(&st).records(),
        st.records(),
        "persisted aggregates or request index differ from a recount"
    );
}

/// Arbitrary bytes as a snapshot file must be refused or read, never crash;
/// records written by the writer must read back exactly, and any truncation
/// of such a file must be refused.
pub fn snapshot_parse(data: &[u8]) {
    if let Ok(r) = snapshot::Reader::new(data) {
        let _ = r.records();
    }
    let records: Vec<(Vec<u8>, Vec<u8>)> = data
        .chunks(7)
        .enumerate()
        .map(|(i, c)| (vec![b'x', i as u8, (i >> 8) as u8], c.to_vec()))
        .collect();
    let bytes = snapshot::to_bytes(&world::meta(), &records);
    let back = snapshot::Reader::new(bytes.as_slice())
        .and_then(snapshot::Reader::records)
        .expect("a written snapshot reads back");
    assert_eq!(back, records);
    let cut = data.first().map_or(0, |b| *b as usize) % bytes.len();
    assert!(
        snapshot::Reader::new(&bytes[..cut])
            .and_then(snapshot::Reader::records)
            .is_err(),
        "a snapshot cut to {cut} of {} bytes was accepted",
        bytes.len()
    );
}

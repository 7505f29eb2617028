//! Generators of registries and results, for demos, tests and benchmarks:
//! none talks to a cluster; each builds a `Registry` (and results) that
//! `rekapctl registry load` and `import` then send.
//!
//! - [`synthetic`]: a Kotabaru-like kabupaten of any shape, numbered names.
//! - [`kotabaru`]: Kabupaten Kotabaru's real kecamatan and desa and its
//!   2020 count night, rebuilt from the 2019 rows.
//! - [`pilpres2019`]: the real 2019 presidential results (KawalPemilu).
//! - [`national`]: a national-scale synthetic election (820,000 TPS).

pub mod kotabaru;
pub mod national;
pub mod pilpres2019;
pub mod synthetic;

pub use synthetic::Synthetic;

/// A contest over `scope` whose paslon are `paslon`, numbered 01, 02, ... in
/// ballot order.
pub(crate) fn contest(
    id: &str,
    name: &str,
    scope: &str,
    paslon: &[&str],
) -> rekap_proto::pb::Contest {
    rekap_proto::pb::Contest {
        contest_id: id.into(),
        name: name.into(),
        scope_code: scope.into(),
        candidates: paslon
            .iter()
            .zip(1u32..)
            .map(|(name, n)| rekap_proto::pb::Candidate {
                candidate_id: format!("{n:02}"),
                number: n,
                name: (*name).into(),
            })
            .collect(),
    }
}

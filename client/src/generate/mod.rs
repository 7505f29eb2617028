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

//! The C.Hasil rules live in the `rekap-rules` crate, shared with the
//! operator's station; the tally names them here as before.

pub use rekap_rules::*;

//! libFuzzer target; the body is shared with the property tests
//! (rekap_node::fuzzing::snapshot_parse).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rekap_node::fuzzing::snapshot_parse(data);
});

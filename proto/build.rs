//! Compiles `rekap/v1/*.proto` with the vendored protoc, so a fresh machine
//! needs no system protoc.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let files = [
        "rekap/v1/types.proto",
        "rekap/v1/tally.proto",
        "rekap/v1/admin.proto",
        "rekap/v1/raft.proto",
        "rekap/v1/backup.proto",
    ];
    let descriptor =
        std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("rekap_descriptor.bin");
    tonic_prost_build::configure()
        // Hand-written (`src/janggal_item.rs`): a sender may splice it.
        .extern_path(".rekap.v1.JanggalItem", "crate::janggal_item::JanggalItem")
        .file_descriptor_set_path(descriptor)
        .compile_protos(&files, &["."])?;
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    Ok(())
}

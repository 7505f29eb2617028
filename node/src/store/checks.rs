//! Start-up checks of a data directory: it belongs to this node of this
//! cluster (the IDENTITY file written when the directory was created), every
//! RocksDB block passes its checksum. (A snapshot file is checked whole
//! before it is installed; one left from before a restart is removed.) A
//! failed check stops the node with an error naming the file: nothing is
//! repaired or rebuilt silently. A replaced node gets an empty directory.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use rocksdb::{DB, IteratorMode, ReadOptions};
use serde::{Deserialize, Serialize};

pub const IDENTITY_FILE: &str = "IDENTITY";

/// Who a data directory belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub node_id: u64,
    pub cluster: String,
}

/// Records `owner` in a new directory, or checks it against the record.
pub fn identity(data_dir: &Path, owner: &Owner, fresh: bool) -> anyhow::Result<()> {
    let path = data_dir.join(IDENTITY_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let found: Owner = toml::from_str(&text).with_context(|| {
                format!(
                    "{} is damaged; it names the node and cluster this directory belongs to",
                    path.display()
                )
            })?;
            if found != *owner {
                bail!(
                    "data directory {} belongs to node {} of cluster {:?}, not node {} of cluster {:?} ({}); start node {} on it, or give this node an empty directory",
                    data_dir.display(),
                    found.node_id,
                    found.cluster,
                    owner.node_id,
                    owner.cluster,
                    path.display(),
                    found.node_id
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !fresh {
                tracing::warn!(path = %path.display(), "data directory has no IDENTITY record; recording this node as its owner");
            }
            let text = format!(
                "# Written when this data directory was created: the node and cluster it belongs to.\n{}",
                toml::to_string(owner)?
            );
            let tmp = data_dir.join("IDENTITY.tmp");
            let mut f = fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            fs::File::open(data_dir)?.sync_all()?;
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Reads every block of every column family with checksums on, so a
/// damaged file is found now rather than in the middle of a count. Returns
/// early, with Ok, once `stop` is set.
pub fn verify_db(db: &DB, cfs: &[&str], path: &Path, stop: &AtomicBool) -> anyhow::Result<()> {
    for name in cfs {
        let mut ro = ReadOptions::default();
        ro.set_verify_checksums(true);
        ro.fill_cache(false);
        ro.set_readahead_size(4 << 20);
        let cf = super::cf(db, name);
        for (n, kv) in db.iterator_cf_opt(cf, ro, IteratorMode::Start).enumerate() {
            if n % 4096 == 0 && stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            kv.with_context(|| {
                format!(
                    "RocksDB data in {} is corrupt (column family {name})",
                    path.display()
                )
            })?;
        }
    }
    Ok(())
}

/// Set when the background check found damage: the process must not exit
/// with success after the shutdown it starts.
pub static DAMAGED: AtomicBool = AtomicBool::new(false);

/// The checks of an existing directory, run beside the node instead of
/// before it: reading every block costs start time in proportion to the
/// data (seconds for a national state), and a node must serve again within
/// a couple of seconds of a restart. Damage found later stops the node the
/// same way (an error naming the file, an orderly shutdown, a failure exit
/// status); reads that hit it first fail on their own checksums.
pub struct Background {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    pub fn start(db: Arc<DB>, cfs: &'static [&'static str], db_path: PathBuf) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("rekap-verify".into())
            .spawn(move || {
                // Lowest CPU priority: the node's own work comes first on a
                // small machine. (On Linux this names the calling thread.)
                // SAFETY: plain syscalls on this thread's own id.
                unsafe {
                    let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                    libc::setpriority(libc::PRIO_PROCESS, tid, 19);
                }
                let t0 = std::time::Instant::now();
                let found = verify_db(&db, cfs, &db_path, &flag);
                drop(db);
                match found {
                    Ok(()) if !flag.load(Ordering::Relaxed) => {
                        tracing::info!(
                            took_ms = t0.elapsed().as_millis() as u64,
                            "data directory checked: every block is intact"
                        );
                    }
                    Ok(()) => {}
                    Err(e) => {
                        tracing::error!("{e:#}; stopping");
                        DAMAGED.store(true, Ordering::SeqCst);
                        // The orderly shutdown, as for an operator's SIGTERM.
                        // SAFETY: raise only sends a signal to this process.
                        unsafe { libc::raise(libc::SIGTERM) };
                    }
                }
            })
            .expect("spawning the verifier thread");
        Background {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the check and waits for it to let go of the database.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}

//! Group commit for log appends: one WAL fsync covers every append that
//! arrived while the previous fsync ran.

use std::sync::Arc;
use std::sync::mpsc;

use openraft::storage::IOFlushed;
use rocksdb::DB;

use crate::raft::TypeConfig;

#[derive(Clone)]
pub struct Flusher {
    tx: mpsc::Sender<IOFlushed<TypeConfig>>,
}

impl Flusher {
    pub fn start(db: Arc<DB>) -> Self {
        let (tx, rx) = mpsc::channel::<IOFlushed<TypeConfig>>();
        std::thread::Builder::new()
            .name("rekap-log-fsync".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut waiting = vec![first];
                    waiting.extend(rx.try_iter());
                    let res = db.flush_wal(true);
                    for cb in waiting {
                        cb.io_completed(
                            res.as_ref()
                                .map(|_| ())
                                .map_err(|e| std::io::Error::other(e.to_string())),
                        );
                    }
                }
            })
            .expect("spawn fsync thread");
        Flusher { tx }
    }

    /// Completes `cb` once everything written to the WAL so far is on disk.
    pub fn flush(&self, cb: IOFlushed<TypeConfig>) {
        if let Err(mpsc::SendError(cb)) = self.tx.send(cb) {
            cb.io_completed(Err(std::io::Error::other("fsync thread stopped")));
        }
    }
}

//! Group commit for log appends: one WAL fsync covers every append that
//! arrived while the previous fsync ran.
//!
//! The fsync thread holds a handle to the database, so it must be gone
//! before the database can close. When the last `LogStore` is dropped the
//! channel closes, the thread answers every callback still queued, and the
//! drop joins it: no thread outlives its store and touches RocksDB while the
//! process exits (issue 10: "pthread lock: Invalid argument" at exit).

use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use openraft::storage::IOFlushed;
use prometheus_client::metrics::histogram::Histogram;
use rocksdb::DB;

use super::held::Durable;
use crate::raft::types::{LogId, TypeConfig};

/// An append's callback, and what its fsync makes durable: the append's
/// last log id and the truncation generation it was written in.
type Waiting = (IOFlushed<TypeConfig>, Option<(LogId, u64)>);

#[derive(Clone)]
pub struct Flusher {
    inner: Arc<Inner>,
}

struct Inner {
    tx: Option<mpsc::Sender<Waiting>>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    /// Starts the fsync thread; each fsync's duration goes to `fsyncs`, and
    /// what it made durable to `durable`.
    pub fn start(db: Arc<DB>, fsyncs: Histogram, durable: Durable) -> Self {
        let (tx, rx) = mpsc::channel::<Waiting>();
        let thread = std::thread::Builder::new()
            .name("rekap-log-fsync".into())
            .spawn(move || run(db, rx, fsyncs, durable))
            .expect("spawn fsync thread");
        Flusher {
            inner: Arc::new(Inner {
                tx: Some(tx),
                thread: Some(thread),
            }),
        }
    }

    /// Completes `cb` once everything written to the WAL so far is on disk;
    /// `upto` (log id, generation) is then marked durable first.
    pub fn flush(&self, cb: IOFlushed<TypeConfig>, upto: Option<(LogId, u64)>) {
        match &self.inner.tx {
            Some(tx) => {
                if let Err(mpsc::SendError((cb, _))) = tx.send((cb, upto)) {
                    cb.io_completed(Err(std::io::Error::other("fsync thread stopped")));
                }
            }
            None => cb.io_completed(Err(std::io::Error::other("log store is closing"))),
        }
    }
}

fn run(db: Arc<DB>, rx: mpsc::Receiver<Waiting>, fsyncs: Histogram, durable: Durable) {
    // `recv` fails only once every sender is gone and the queue is empty, so
    // every queued callback is answered before the thread ends.
    while let Ok(first) = rx.recv() {
        let mut waiting = vec![first];
        waiting.extend(rx.try_iter());
        let started = std::time::Instant::now();
        let res = db.flush_wal(true);
        fsyncs.observe(started.elapsed().as_secs_f64());
        for (cb, upto) in waiting {
            // Marked before the callback: an answer the follower sends after
            // it never names less than what is on disk.
            if let (Ok(()), Some((id, generation))) = (&res, upto) {
                durable.flushed(id, generation);
            }
            cb.io_completed(
                res.as_ref()
                    .map(|_| ())
                    .map_err(|e| std::io::Error::other(e.to_string())),
            );
        }
    }
    tracing::debug!("fsync thread stopped");
}

impl Drop for Inner {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(h) = self.thread.take()
            && h.join().is_err()
        {
            tracing::error!("fsync thread panicked");
        }
    }
}

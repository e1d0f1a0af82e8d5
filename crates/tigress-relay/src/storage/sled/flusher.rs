//! Group commit: every caller that needs its writes on disk queues a request, and one flusher
//! thread serves all requests queued during the previous flush with a single `fsync`.

use std::sync::{Arc, mpsc};
use std::time::Instant;

use tokio::sync::oneshot;

use crate::error::RelayError;
use crate::metrics::Histogram;
use crate::storage::StorageResult;

/// Serves flush requests in groups on a thread of its own.
///
/// Dropping it stops the thread and waits for it, so that the database is closed (and its
/// folder can be opened again) once the storage is dropped.
#[derive(Debug)]
pub(super) struct GroupFlusher {
    requests: Option<mpsc::Sender<FlushWaiter>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type FlushWaiter = oneshot::Sender<Result<(), String>>;

impl GroupFlusher {
    pub(super) fn start(db: sled::Db, latency: Arc<Histogram>) -> std::io::Result<Self> {
        let (requests, incoming) = mpsc::channel::<FlushWaiter>();
        let thread = std::thread::Builder::new()
            .name("tigress-flusher".to_owned())
            .spawn(move || {
                // The loop ends when the storage, and with it every sender, is dropped.
                while let Ok(first) = incoming.recv() {
                    let mut waiters = vec![first];
                    waiters.extend(incoming.try_iter());
                    let started = Instant::now();
                    let outcome = db.flush().map(drop).map_err(|error| error.to_string());
                    latency.observe(started.elapsed());
                    tracing::trace!(
                        waiters = waiters.len(),
                        elapsed_us = started.elapsed().as_micros() as u64,
                        "flushed"
                    );
                    if let Err(error) = &outcome {
                        tracing::error!(%error, waiters = waiters.len(), "flush to disk failed");
                    }
                    for waiter in waiters {
                        // A waiter whose call was cancelled has gone away; nothing to tell it.
                        let _ = waiter.send(outcome.clone());
                    }
                }
            })?;
        Ok(Self {
            requests: Some(requests),
            thread: Some(thread),
        })
    }

    /// Waits until everything written before the call is on disk.
    pub(super) async fn flush(&self) -> StorageResult<()> {
        let (done, wait) = oneshot::channel();
        let stopped = || RelayError::Storage {
            op: "flush to disk",
            message: "the flusher thread stopped".to_owned(),
        };
        let requests = self.requests.as_ref().ok_or_else(stopped)?;
        requests.send(done).map_err(|_| stopped())?;
        wait.await
            .map_err(|_| stopped())?
            .map_err(|message| RelayError::Storage {
                op: "flush to disk",
                message,
            })
    }
}

impl Drop for GroupFlusher {
    fn drop(&mut self) {
        drop(self.requests.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("flusher thread panicked");
            }
        }
    }
}

//! Group commit: every caller that needs its writes on disk queues a job, and one thread serves
//! all jobs queued during the previous flush with a single `fsync`. Sends and acknowledgements
//! are jobs too: the thread queues every waiting envelope in one transaction, and removes every
//! acknowledged one in another, before that flush.

use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::Instant;

use tokio::sync::oneshot;

use super::mailbox::{Acknowledgement, NewEnvelope, QueueTrees};
use crate::error::RelayError;
use crate::metrics::Histogram;
use crate::storage::{Enqueued, StorageResult};

/// Most jobs served by one flush, so that a burst of sends does not hold every waiter for a
/// transaction of unbounded size.
const MAX_BATCH: usize = 512;

/// Serves flush and send jobs in groups on a thread of its own.
///
/// Dropping it stops the thread and waits for it, so that the database is closed (and its
/// folder can be opened again) once the storage is dropped.
#[derive(Debug)]
pub(super) struct GroupFlusher {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Work for the group commit.
enum Job {
    /// Tell the waiter once everything written before is on disk.
    Flush(oneshot::Sender<StorageResult<()>>),
    /// Queue the envelope, then tell the waiter its outcome once it is on disk.
    Enqueue(NewEnvelope, oneshot::Sender<StorageResult<Enqueued>>),
    /// Remove the envelopes, then tell the waiter how many were queued once that is on disk.
    Acknowledge(Acknowledgement, oneshot::Sender<StorageResult<u32>>),
}

/// The jobs of one group commit, sorted by kind.
#[derive(Default)]
struct Batch {
    flush_waiters: Vec<oneshot::Sender<StorageResult<()>>>,
    envelopes: Vec<NewEnvelope>,
    send_waiters: Vec<oneshot::Sender<StorageResult<Enqueued>>>,
    acknowledgements: Vec<Acknowledgement>,
    acknowledge_waiters: Vec<oneshot::Sender<StorageResult<u32>>>,
}

impl Batch {
    fn sort(jobs: Vec<Job>) -> Self {
        let mut batch = Self::default();
        for job in jobs {
            match job {
                Job::Flush(waiter) => batch.flush_waiters.push(waiter),
                Job::Enqueue(envelope, waiter) => {
                    batch.envelopes.push(envelope);
                    batch.send_waiters.push(waiter);
                }
                Job::Acknowledge(acknowledgement, waiter) => {
                    batch.acknowledgements.push(acknowledgement);
                    batch.acknowledge_waiters.push(waiter);
                }
            }
        }
        batch
    }

    fn waiters(&self) -> usize {
        self.flush_waiters.len() + self.send_waiters.len() + self.acknowledge_waiters.len()
    }
}

impl GroupFlusher {
    pub(super) fn start(trees: QueueTrees, latency: Arc<Histogram>) -> std::io::Result<Self> {
        let (jobs, incoming) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("tigress-flusher".to_owned())
            .spawn(move || {
                // The loop ends when the storage, and with it every sender, is dropped.
                while let Ok(first) = incoming.recv() {
                    let mut batch = vec![first];
                    batch.extend(incoming.try_iter().take(MAX_BATCH - 1));
                    commit(&trees, &latency, batch);
                }
            })?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Waits until everything written before the call is on disk.
    pub(super) async fn flush(&self) -> StorageResult<()> {
        let (done, wait) = oneshot::channel();
        self.submit(Job::Flush(done))?;
        wait.await.map_err(|_| stopped())?
    }

    /// Queues an envelope and waits until it is on disk.
    pub(super) async fn enqueue(&self, envelope: NewEnvelope) -> StorageResult<Enqueued> {
        let (done, wait) = oneshot::channel();
        self.submit(Job::Enqueue(envelope, done))?;
        wait.await.map_err(|_| stopped())?
    }

    /// Removes acknowledged envelopes and waits until that is on disk.
    pub(super) async fn acknowledge(&self, acknowledgement: Acknowledgement) -> StorageResult<u32> {
        let (done, wait) = oneshot::channel();
        self.submit(Job::Acknowledge(acknowledgement, done))?;
        wait.await.map_err(|_| stopped())?
    }

    fn submit(&self, job: Job) -> StorageResult<()> {
        let jobs = self.jobs.as_ref().ok_or_else(stopped)?;
        jobs.send(job).map_err(|_| stopped())
    }
}

impl Drop for GroupFlusher {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("flusher thread panicked");
            }
        }
    }
}

/// Queues the batch's envelopes in one transaction, removes its acknowledged envelopes in
/// another, flushes once, and replies to every job.
fn commit(trees: &QueueTrees, latency: &Histogram, jobs: Vec<Job>) {
    let batch = Batch::sort(jobs);
    let waiters = batch.waiters();
    let Batch {
        flush_waiters,
        envelopes,
        send_waiters,
        acknowledgements,
        acknowledge_waiters,
    } = batch;

    let outcomes = trees.enqueue_all(envelopes);
    let removed = trees.acknowledge_all(&acknowledgements);

    let started = Instant::now();
    let flushed = trees
        .db
        .flush()
        .map(drop)
        .map_err(|error| error.to_string());
    latency.observe(started.elapsed());
    tracing::trace!(
        waiters,
        elapsed_us = started.elapsed().as_micros() as u64,
        "flushed"
    );
    if let Err(error) = &flushed {
        tracing::error!(%error, waiters, "flush to disk failed");
    } else {
        // Ids grow in commit order, so the batch's highest id bounds everything on disk.
        let newest = outcomes
            .iter()
            .filter_map(|outcome| outcome.as_ref().ok())
            .map(|enqueued| enqueued.envelope_id)
            .max();
        if let Some(newest) = newest {
            trees.durable.fetch_max(newest, Ordering::SeqCst);
        }
    }

    // A waiter whose call was cancelled has gone away; there is nothing to tell it.
    for waiter in flush_waiters {
        let _ = waiter.send(after_flush(&flushed, ()));
    }
    for (waiter, outcome) in send_waiters.into_iter().zip(outcomes) {
        let _ = waiter.send(outcome.and_then(|enqueued| after_flush(&flushed, enqueued)));
    }
    for (waiter, removed) in acknowledge_waiters.into_iter().zip(removed) {
        let _ = waiter.send(removed.and_then(|removed| after_flush(&flushed, removed)));
    }
}

/// Returns `value` if the flush succeeded, and the flush's error otherwise.
fn after_flush<T>(flushed: &Result<(), String>, value: T) -> StorageResult<T> {
    match flushed {
        Ok(()) => Ok(value),
        Err(message) => Err(RelayError::Storage {
            op: "flush to disk",
            message: message.clone(),
        }),
    }
}

fn stopped() -> RelayError {
    RelayError::Storage {
        op: "flush to disk",
        message: "the flusher thread stopped".to_owned(),
    }
}

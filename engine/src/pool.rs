//! A fixed pool of worker threads fed through a crossbeam channel.

use crossbeam_channel::{Sender, unbounded};
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Worker threads that run environment steps and reward scoring.
///
/// ## Design
/// Threads are started once per runner and reused for every iteration, so dispatching a step
/// costs a channel send (well under a microsecond), not a thread spawn. Jobs own everything they
/// touch (the environment instance travels with its job), so workers share nothing and take no
/// locks. Results go back through a channel the job captured.
pub struct Pool {
    tx: Option<Sender<Job>>,
    handles: Vec<JoinHandle<()>>,
}

impl Pool {
    /// A pool of `threads` workers; 0 means one per available core.
    pub fn new(threads: usize) -> Self {
        let threads = if threads == 0 { available_cores() } else { threads };
        let (tx, rx) = unbounded::<Job>();
        let handles = (0..threads)
            .map(|i| {
                let rx = rx.clone();
                std::thread::Builder::new()
                    .name(format!("rlvr-worker-{i}"))
                    .spawn(move || {
                        while let Ok(job) = rx.recv() {
                            job();
                        }
                    })
                    .expect("spawning a worker thread")
            })
            .collect();
        Self { tx: Some(tx), handles }
    }

    /// How many workers run.
    pub fn threads(&self) -> usize {
        self.handles.len()
    }

    /// Queues `job`. Jobs must catch their own panics; the runner's do.
    pub fn execute(&self, job: impl FnOnce() + Send + 'static) {
        if let Some(tx) = &self.tx {
            // The receiver lives as long as the workers, which live as long as `self`.
            let _ = tx.send(Box::new(job));
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.tx.take();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// The number of cores this process may use.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

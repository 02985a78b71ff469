//! The job system: admission control, a bounded pool of blocking workers, persisted job state, results on
//! disk, retention and shutdown. Jobs belong to the [`JobManager`], never to the request that submitted them.
//!
//! A submitted job waits for one of `workers` semaphore permits (at most `queue_capacity` may wait; more are
//! refused with 429), then runs the domain generator on `spawn_blocking`. Cancellation is cooperative: the
//! generator polls a flag between entries.
//!
//! - [`model`]: the job record (`job.json`); [`job`]: one job in memory, its persistence and recovery.
//! - [`manager`]: the lifecycle (submit, run, cancel, list, delete, reap, shutdown).
//! - [`execute`]: what a job runs on its worker; [`inputs`]: the tokenizer and tokenized-dataset caches.
//! - [`dataset_tools`]: generating and converting datasets on the same workers.
//! - [`stores`], [`blobs`]: uploaded datasets and traces; [`metrics`]: Prometheus counters.

pub mod blobs;
pub mod dataset_tools;
pub mod disk;
pub mod execute;
pub mod inputs;
pub mod job;
pub mod manager;
pub mod metrics;
pub mod model;
pub mod stores;

pub use dataset_tools::{DatasetToolFailure, DatasetTools, StoreRoom};
pub use execute::Work;
pub use job::{JOB_FILE, Job};
pub use manager::{JobManager, SubmitError};

//! workload-generator: timed benchmark workloads for LLM serving systems, as a library, a CLI and an HTTP
//! service.
//!
//! # Layout
//! - [`domain`]: pure, synchronous, deterministic generation (datasets, tokenizer, sampling, arrivals,
//!   writers). Imports no async or HTTP crate.
//! - [`jobs`]: the job manager (admission, bounded blocking pool, persisted state), dataset and trace stores.
//! - [`http`]: axum handlers, wire DTOs, the problem+json error envelope, OpenAPI.
//! - [`replay`]: drive a workload against an OpenAI-compatible server and measure it (async).
//! - [`config`], [`startup`]: settings and running the service; [`cli`]: the command line.

pub mod cli;
pub mod codes;
pub mod config;
pub mod domain;
pub mod http;
pub mod jobs;
pub mod replay;
pub mod startup;

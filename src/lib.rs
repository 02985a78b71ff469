//! workload-generator: timed benchmark workloads for LLM serving systems, as a library, a CLI and an HTTP
//! service.
//!
//! # Layout
//! - [`domain`]: pure, synchronous, deterministic generation (datasets, tokenizer, sampling, arrivals,
//!   writers). Imports no async or HTTP crate.
//! - [`cli`]: the command line (`generate`, `serve`, ...), calling the domain directly.

pub mod cli;
pub mod domain;

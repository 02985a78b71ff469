//! The domain layer: pure, synchronous, deterministic generation. Datasets, tokenization, sampling, arrival
//! processes, writers and statistics live here.
//!
//! Nothing in this module imports tokio, axum, tower or utoipa, and its errors know nothing of HTTP: the CLI
//! and the service both call the same functions.

pub mod agent;
pub mod analysis;
pub mod arrival;
pub mod atomic;
pub mod bom;
pub mod constant;
pub mod dataset;
pub mod datasets_tools;
pub mod date;
pub mod emit;
pub mod errors;
pub mod exact;
pub mod files;
pub mod fit;
pub mod generate;
pub mod inputs;
pub mod json;
pub mod layout;
pub mod lengths;
pub mod limits;
pub mod pattern;
pub mod plot;
pub mod report;
pub mod run;
pub mod sample;
pub mod sampler;
pub mod spec;
pub mod stat;
pub mod stats;
pub mod tokenizer;
pub mod trace;
pub mod utility;
pub mod writer;

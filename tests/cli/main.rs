//! The command line, in one test binary: `generate` (flags, files written, determinism, errors), `plot`,
//! `dataset`, and flags parsed into specs.

mod dataset;
mod generate;
mod interrupt;
mod mutation;
mod plot;
mod spec;
#[path = "../support/svg.rs"]
mod svg;
mod trace;

/// The built binary.
fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_workload-generator"))
}

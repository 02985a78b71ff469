//! The command line: `generate` (the AIBrix generator's flags), and the other subcommands.

use clap::{Parser, Subcommand};

pub mod generate;
pub mod plot;

/// Benchmark workload generator for LLM serving systems.
#[derive(Debug, Parser)]
#[command(name = "workload-generator", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a workload file (accepts the AIBrix workload generator's flags).
    Generate(Box<generate::GenerateArgs>),
    /// Plots (SVG) and report.json for any workload file.
    Plot(Box<plot::PlotArgs>),
}

/// Runs the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Generate(args) => generate::run(*args),
        Command::Plot(args) => plot::run(*args),
    }
}

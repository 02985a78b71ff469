//! The command line: `serve` (default), `generate` (the AIBrix generator's flags), `openapi`, `healthcheck`, `replay`.

use clap::{Parser, Subcommand};

use crate::config::ServeConfig;

pub mod cleanup;
pub mod dataset;
pub mod generate;
pub mod plot;
pub mod replay;
pub mod serve;
pub mod trace;
pub mod utility;

/// Benchmark workload generator for LLM serving systems.
#[derive(Debug, Parser)]
#[command(name = "workload-generator", version, about)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Service settings when no subcommand is given.
    #[command(flatten)]
    pub serve: ServeConfig,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (the default).
    Serve(Box<ServeConfig>),
    /// Generate a workload file (accepts the AIBrix workload generator's flags).
    Generate(Box<generate::GenerateArgs>),
    /// Prepare prompt collections: convert ShareGPT / client output / chat JSONL, or generate synthetic ones.
    Dataset(Box<dataset::DatasetArgs>),
    /// Print the OpenAPI document.
    Openapi,
    /// Exit 0 when the local service answers /healthz with 200 (for container health checks).
    Healthcheck {
        /// URL to check (default http://127.0.0.1:<port of WG_BIND>/healthz).
        #[arg(long)]
        url: Option<String>,
    },
    /// Reshape existing workloads: concat, merge, time-scale, slice, sample, shift, stats.
    Utility(Box<utility::UtilityArgs>),
    /// Plots (SVG) and report.json for any workload file.
    Plot(Box<plot::PlotArgs>),
    /// Send a workload to an OpenAI-compatible server at its timestamps and measure it; `replay merge`.
    Replay(Box<replay::ReplayArgs>),
    /// Trace tools: `trace anonymize` (a workload with prompts to a text-free Mooncake-style trace).
    Trace(Box<trace::TraceArgs>),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => serve::serve(cli.serve),
        Some(Command::Serve(cfg)) => serve::serve(*cfg),
        Some(Command::Generate(args)) => {
            cleanup::guard(&args.output_dir);
            generate::run(*args)
        }
        Some(Command::Dataset(args)) => dataset::run(*args),
        Some(Command::Openapi) => serve::openapi(),
        Some(Command::Healthcheck { url }) => serve::healthcheck(url),
        Some(Command::Utility(args)) => utility::run(*args),
        Some(Command::Plot(args)) => plot::run(*args),
        Some(Command::Replay(args)) => replay::run(*args),
        Some(Command::Trace(args)) => trace::run(*args),
    }
}

/// Reads a generation spec file with the service's rules ([`parse_spec`]): one JSON value, null = absent,
/// sections are objects, unknown keys refused. Errors name the file and the field.
///
/// [`parse_spec`]: crate::domain::spec::parse_spec
pub fn read_spec(path: &std::path::Path) -> anyhow::Result<crate::domain::spec::GenerationSpec> {
    use anyhow::Context;
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    crate::domain::spec::parse_spec(&text)
        .map_err(|e| anyhow::anyhow!("{}: invalid generation spec: {e}", path.display()))
}

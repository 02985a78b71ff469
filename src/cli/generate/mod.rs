//! `workload-generator generate`: the reference CLI flags, plus `--spec FILE.json` and a few new knobs.
//! Flags given on the command line override the same values of the spec file.

use std::io::IsTerminal;

use crate::domain::inputs::{InputCache, PromptSource};
use crate::domain::run::{RunInput, run_to_dir};
use crate::domain::spec::{GenerationSpec, TraceType};
use crate::domain::tokenizer::TokenizerPolicy;

mod args;
mod flags;

pub use self::args::*;

/// A progress bar on stderr when it is a terminal; nothing otherwise.
fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// Where the CLI reads a spec's prompts: no collection for agent sessions, else `--prompt-file` or the
/// built-in sample (dataset ids are for the service).
pub fn prompt_source(spec: &GenerationSpec) -> PromptSource {
    PromptSource::named(
        spec.trace_type != TraceType::Agent,
        spec.prompt_file.as_deref(),
        spec.dataset.as_deref(),
    )
}

/// Runs `generate`.
pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let spec = args.to_spec()?.validate()?.limited(args.limits.limits())?;
    let s = spec.spec();
    let cache = InputCache::new(TokenizerPolicy::cli(), args.cache_dir());
    let bar = std::sync::OnceLock::new();
    let prepared = cache.prepare(
        &s.tokenizer,
        s.add_special_tokens,
        &prompt_source(s),
        None,
        &|d, total| {
            bar.get_or_init(|| progress_bar(total as u64, "tokenizing"))
                .set_position(d as u64)
        },
        crate::domain::tokenizer::NEVER,
    )?;
    if let Some(bar) = bar.get() {
        bar.finish_and_clear();
    }
    let bar = progress_bar(1000, "generating");
    let mut progress =
        |p: crate::domain::generate::Progress| bar.set_position((p.fraction * 1000.0) as u64);
    let out = run_to_dir(
        &spec,
        RunInput {
            data: &prepared.data,
            tokenizer: &prepared.tokenizer,
            inputs: prepared.files,
            files: &crate::domain::files::PathResolver,
            tap: None,
            cancel: &|| false,
            progress: &mut progress,
        },
        &args.output_dir,
    )?;
    bar.finish_and_clear();
    let sum = &out.manifest.summary;
    println!(
        "wrote {} ({} entries, {} requests, {:.3} req/s over {} ms, seed {})",
        out.workload.display(),
        sum.entries,
        sum.requests,
        sum.mean_rate_qps,
        sum.duration_ms,
        spec.seed()
    );
    println!("wrote {}", out.manifest_path.display());
    for note in &sum.notes {
        println!("note: {note}");
    }
    Ok(())
}

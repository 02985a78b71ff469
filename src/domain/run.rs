//! One generation run to an output directory: the workload file plus `manifest.json`, both written through
//! temporary files and renamed into place only when complete.

use std::path::{Path, PathBuf};

use serde::Serialize;
use thiserror::Error;

use super::analysis::Tee;
use super::atomic;
pub use super::files::InputFile;
use super::files::{FileResolver, RecordingResolver};
use super::generate::{GenerateError, GenerateInput, Progress, Summary, generate};
use super::lengths::TokenizedDataset;
use super::limits::Limits;
use super::plot::{AnalyzeError, AnalyzeOptions, write_analysis};
use super::report::{Report, Targets};
use super::spec::{GenerationSpec, ValidatedSpec};
use super::tokenizer::TokenCounter;
use super::writer::{Entry, EntrySink, LineTap, SinkError, WorkloadFile, workload_file_name};

/// Name of the manifest file.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Generator name and version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GeneratorInfo {
    /// `workload-generator`.
    pub name: &'static str,
    /// Crate version.
    pub version: &'static str,
}

/// Which tokenizer counted the lengths.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenizerInfo {
    /// Name as requested.
    pub id: String,
    /// SHA-256 prefix of its `tokenizer.json`.
    pub fingerprint: String,
    /// Whether special tokens were counted.
    pub add_special_tokens: bool,
}

/// The output file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputInfo {
    /// File name inside the output directory.
    pub file: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// `manifest.json`: everything needed to reproduce and audit a workload. Deterministic for the same spec,
/// inputs and seed (no wall-clock times).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    /// Generator name and version.
    pub generator: GeneratorInfo,
    /// The seed used.
    pub seed: u64,
    /// The full normalized spec.
    pub spec: GenerationSpec,
    /// Every input file with its hash.
    pub inputs: Vec<InputFile>,
    /// The tokenizer.
    pub tokenizer: TokenizerInfo,
    /// The workload file.
    pub output: OutputInfo,
    /// Counts and achieved statistics.
    pub summary: Summary,
    /// The fidelity report (also written as `report.json`), computed from the committed workload file.
    pub report: Report,
    /// Plot files written beside the workload (`traffic.svg`, ...).
    pub plots: Vec<String>,
}

/// Why a run failed.
#[derive(Debug, Error)]
pub enum RunError {
    /// Generation failed or was cancelled.
    #[error(transparent)]
    Generate(#[from] GenerateError),
    /// The committed workload could not be read back for the report.
    #[error(transparent)]
    Report(#[from] AnalyzeError),
    /// Writing the output failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// Path of the workload file.
    pub workload: PathBuf,
    /// Path of the manifest.
    pub manifest_path: PathBuf,
    /// The manifest.
    pub manifest: Manifest,
}

/// Everything a run needs besides the spec.
pub struct RunInput<'a> {
    /// Prompt collection with lengths.
    pub data: &'a TokenizedDataset,
    /// The tokenizer that counted them.
    pub tokenizer: &'a TokenCounter,
    /// Input files for the manifest (the prompt collection); files resolved while generating are added.
    pub inputs: Vec<InputFile>,
    /// Resolves file names of the spec.
    pub files: &'a dyn FileResolver,
    /// Receives each JSONL line as it is written (streaming responses).
    pub tap: Option<LineTap>,
    /// Polled between entries.
    pub cancel: &'a (dyn Fn() -> bool + Sync),
    /// Progress callback.
    pub progress: &'a mut dyn FnMut(Progress),
}

/// The workload file under the job's run-time budget: the run stops with a [`LimitError`] the moment the
/// workload crosses its request or byte limit, whatever the estimate said (the partial file is then removed).
///
/// [`LimitError`]: crate::domain::limits::LimitError
struct Budgeted<'a> {
    file: &'a mut WorkloadFile,
    tee: Tee,
    limits: Limits,
    requests: u64,
}

impl EntrySink for Budgeted<'_> {
    fn entry(&mut self, e: &Entry<'_>) -> Result<(), SinkError> {
        self.file.entry(e)?;
        self.requests += e.requests.len() as u64;
        self.limits
            .check_written(self.requests, self.file.bytes())
            .map_err(SinkError::Limit)?;
        // The report and plots are computed from the entries as they are written, not by reading them back.
        self.tee.entry(e);
        Ok(())
    }
}

/// Generates into `dir`: `workload.jsonl|json` and `manifest.json`.
pub fn run_to_dir(
    spec: &ValidatedSpec,
    input: RunInput<'_>,
    dir: &Path,
) -> Result<RunOutput, RunError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| RunError::Io { path, source }
    };
    let s = spec.spec();
    let mut file =
        WorkloadFile::create(dir, s.output.format, s.output.ascii, input.tap).map_err(io(dir))?;
    let recording = RecordingResolver::new(input.files);
    let options = AnalyzeOptions {
        name: workload_file_name(s.output.format).to_string(),
        ..Default::default()
    };
    let mut budgeted = Budgeted {
        tee: Tee::new(&options),
        file: &mut file,
        limits: *spec.limits(),
        requests: 0,
    };
    let summary = generate(
        spec,
        GenerateInput {
            data: input.data,
            tokenizer: input.tokenizer,
            files: &recording,
            cancel: input.cancel,
            progress: input.progress,
        },
        &mut budgeted,
    )?;
    let analysis = budgeted.tee.finish();
    let mut inputs = input.inputs;
    inputs.extend(recording.inputs().map_err(io(dir))?);
    let bytes = file.bytes();
    let mut manifest = Manifest {
        generator: GeneratorInfo {
            name: "workload-generator",
            version: env!("CARGO_PKG_VERSION"),
        },
        seed: spec.seed(),
        spec: s.clone(),
        inputs,
        tokenizer: TokenizerInfo {
            id: input.tokenizer.id().to_string(),
            fingerprint: input.tokenizer.fingerprint().to_string(),
            add_special_tokens: s.add_special_tokens,
        },
        output: OutputInfo {
            file: workload_file_name(s.output.format).to_string(),
            bytes,
        },
        report: Report::default(),
        plots: Vec::new(),
        summary,
    };
    let workload = file.commit().map_err(io(dir))?;
    let targets = Targets::from_spec(spec, Some(&manifest.summary));
    (manifest.report, manifest.plots) = write_analysis(&analysis, dir, &targets)?;
    let manifest_path = dir.join(MANIFEST_FILE);
    let mut text = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
    text.push(b'\n');
    atomic::write_bytes(&manifest_path, &text).map_err(io(&manifest_path))?;
    Ok(RunOutput {
        workload,
        manifest_path,
        manifest,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::dataset::parse_jsonl;
    use crate::domain::files::PathResolver;
    use crate::domain::lengths::tokenize;
    use crate::domain::plot::write_plots_and_report;
    use crate::domain::sample::sample_dataset;
    use crate::domain::tokenizer::NEVER;

    /// Runs `spec` on `data`, then analyzes the committed file again the old way (reading it back): the
    /// report and every plot must be byte-identical to what the tee computed while writing.
    fn tee_equals_reread(spec: serde_json::Value, data: &TokenizedDataset) {
        let tok = TokenCounter::embedded();
        let dir = tempfile::tempdir().unwrap();
        let spec: GenerationSpec = serde_json::from_value(spec).unwrap();
        let v = spec.validate().unwrap();
        let out = run_to_dir(
            &v,
            RunInput {
                data,
                tokenizer: &tok,
                inputs: Vec::new(),
                files: &PathResolver,
                tap: None,
                cancel: &|| false,
                progress: &mut |_| {},
            },
            &dir.path().join("tee"),
        )
        .unwrap();
        assert!(out.manifest.summary.requests > 0);
        let again = dir.path().join("reread");
        let options = AnalyzeOptions {
            name: out.manifest.output.file.clone(),
            ..Default::default()
        };
        let targets = Targets::from_spec(&v, Some(&out.manifest.summary));
        let (report, plots) =
            write_plots_and_report(&out.workload, &again, &options, &targets).unwrap();
        assert_eq!(plots, out.manifest.plots);
        assert_eq!(
            serde_json::to_value(&report).unwrap(),
            serde_json::to_value(&out.manifest.report).unwrap()
        );
        for name in plots.iter().map(String::as_str).chain(["report.json"]) {
            assert_eq!(
                std::fs::read(dir.path().join("tee").join(name)).unwrap(),
                std::fs::read(again.join(name)).unwrap(),
                "{name}"
            );
        }
    }

    fn tokenized(ds: crate::domain::dataset::Dataset) -> TokenizedDataset {
        let tok = TokenCounter::embedded();
        tokenize(Arc::new(ds), &tok, true, None, &|_, _| {}, NEVER).unwrap()
    }

    #[test]
    fn the_tee_report_equals_the_report_of_the_written_file() {
        let sample = tokenized(sample_dataset());
        tee_equals_reread(
            serde_json::json!({"trace_type": "constant", "duration_ms": 20000, "seed": 3,
                "traffic": {"target_qps": 4, "arrival": "gamma", "burstiness": 0.5},
                "lengths": {"target_prompt_len": 300}}),
            &sample,
        );
        // The JSON array with ASCII escapes, null output lengths, empty entries (a pattern with quiet seconds).
        tee_equals_reread(
            serde_json::json!({"trace_type": "synthetic", "duration_ms": 60000, "seed": 5,
                "output": {"format": "json", "ascii": true},
                "synthetic": {"traffic_pattern": "severe_fluctuation", "traffic_pattern_mean": 2}}),
            &sample,
        );
        // Sessions with integer and string ids, and non-ASCII prompts.
        let text = (0..12)
            .map(|i| {
                let id = if i % 2 == 0 {
                    serde_json::json!(i)
                } else {
                    serde_json::json!(format!("s-{i}"))
                };
                serde_json::json!({"session_id": id,
                    "prompts": [format!("Bonjour {i}, ça va ? 数据 {i}"), format!("second turn {i} ✓")]})
                .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n");
        let sessions = tokenized(parse_jsonl(text.as_bytes(), "sessions.jsonl").unwrap());
        tee_equals_reread(
            serde_json::json!({"trace_type": "constant", "duration_ms": 30000, "seed": 9,
                "traffic": {"target_qps": 2}}),
            &sessions,
        );
    }
}

//! What a job runs on its blocking worker: a generation (inputs, uploaded trace files, progress,
//! cancellation) or a utility operation on finished workloads; and how a run's error ends the job.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codes::ErrorCode;
use crate::domain::errors::{Classify, ErrorKind};
use crate::domain::files::FileResolver;
use crate::domain::generate::{GenerateError, Progress};
use crate::domain::run::{RunError, RunInput, run_to_dir};
use crate::domain::spec::{SpecError, ValidatedSpec};
use crate::domain::utility::{Input, Operation, OutputOptions, UtilityError};
use crate::domain::writer::LineTap;

use super::inputs::JobInputs;
use super::job::{Job, list_files};
use super::model::JobStatus;
use super::stores::TraceStore;

/// What a job does.
#[derive(Debug, Clone)]
pub enum Work {
    /// Generate a workload from a spec.
    Generate(Box<ValidatedSpec>),
    /// Reshape finished workloads (concat, merge, time-scale, slice, sample, shift).
    Utility {
        /// The validated operation.
        op: Operation,
        /// Ids of the input jobs, in order.
        inputs: Vec<String>,
        /// Output layout.
        output: OutputOptions,
    },
}

impl Work {
    /// The job kind: `generate` or the utility mode.
    pub(super) fn kind(&self) -> String {
        match self {
            Work::Generate(_) => "generate".into(),
            Work::Utility { op, .. } => op.mode().to_string(),
        }
    }

    /// The spec as recorded in the job record.
    pub(super) fn record_spec(&self) -> serde_json::Value {
        match self {
            Work::Generate(s) => serde_json::to_value(s.spec()).expect("spec serializes"),
            Work::Utility { op, inputs, output } => {
                let mut v = serde_json::to_value(op).expect("operation serializes");
                if let Some(m) = v.as_object_mut() {
                    m.insert("inputs".into(), serde_json::json!(inputs));
                    m.insert(
                        "output".into(),
                        serde_json::to_value(output).expect("serializes"),
                    );
                }
                v
            }
        }
    }
}

/// A finished run: its summary and result files.
pub(super) type Outcome = Result<(serde_json::Value, Vec<String>), RunError>;

/// How a failed run ends its job: `None` when it was cancelled, else the error code. The one place domain
/// error kinds become job codes; storage failures are `internal`, never a bad spec.
pub(super) fn failure_code(e: &impl Classify) -> Option<ErrorCode> {
    match e.kind() {
        ErrorKind::Cancelled => None,
        ErrorKind::Spec => Some(ErrorCode::InvalidSpec),
        ErrorKind::Input => Some(ErrorCode::InvalidInput),
        ErrorKind::Storage => Some(ErrorCode::Internal),
        ErrorKind::Limit => Some(ErrorCode::LimitExceeded),
        ErrorKind::Internal => Some(ErrorCode::GenerationFailed),
    }
}

/// Resolves spec file names to uploaded traces: only ids of stored traces, never server paths.
pub(super) struct TraceResolver<'a>(pub(super) &'a TraceStore);

impl FileResolver for TraceResolver<'_> {
    fn resolve(&self, field: &str, name: &str) -> Result<PathBuf, SpecError> {
        self.0.path(name).ok_or_else(|| SpecError {
            field: field.to_string(),
            message: format!(
                "names no uploaded trace: '{name}' (upload files to /v1/traces and give their id)"
            ),
        })
    }
}

/// Runs on a blocking thread: prepare the inputs, generate into the job's directory.
pub(super) fn generate(
    job: &Job,
    spec: &ValidatedSpec,
    inputs: &JobInputs,
    traces: &TraceStore,
    tap: Option<LineTap>,
) -> Outcome {
    let cancel = || job.stop_requested();
    let prepared = inputs.prepare(spec.spec(), &cancel)?;
    let resolver = TraceResolver(traces);
    let mut last = Instant::now();
    let mut progress = |p: Progress| {
        job.set_progress(p.fraction, p.requests);
        if last.elapsed() >= Duration::from_millis(100) || p.fraction >= 1.0 {
            last = Instant::now();
            job.notify();
        }
    };
    let out = run_to_dir(
        spec,
        RunInput {
            data: &prepared.data,
            tokenizer: &prepared.tokenizer,
            inputs: prepared.files,
            files: &resolver,
            tap,
            cancel: &cancel,
            progress: &mut progress,
        },
        job.dir(),
    )?;
    let summary = serde_json::to_value(&out.manifest.summary).expect("summary serializes");
    Ok((summary, list_files(job.dir())))
}

/// The input files of a utility job: each id must name (through `get`) a succeeded job with a workload file.
pub(super) fn utility_inputs(
    ids: &[String],
    get: impl Fn(&str) -> Option<Arc<Job>>,
) -> Result<Vec<Input>, SpecError> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            let err = |m: String| SpecError {
                field: format!("inputs[{i}]"),
                message: m,
            };
            let job = get(id).ok_or_else(|| err(format!("names no workload: '{id}'")))?;
            let rec = job.record();
            if rec.status != JobStatus::Succeeded {
                return Err(err(format!(
                    "workload '{id}' is {}, not succeeded",
                    rec.status.as_str()
                )));
            }
            let file = rec
                .files
                .iter()
                .find(|f| f.starts_with("workload."))
                .ok_or_else(|| err(format!("workload '{id}' has no workload file")))?;
            Ok(Input {
                name: id.clone(),
                path: job.dir().join(file),
            })
        })
        .collect()
}

/// Runs a utility operation on a blocking thread.
pub(super) fn utility(
    job: &Job,
    op: &Operation,
    inputs: &[Input],
    output: OutputOptions,
) -> Outcome {
    let cancel = || job.stop_requested();
    let run = crate::domain::utility::run_to_dir(op, inputs, job.dir(), output, &cancel).map_err(
        |e| match e {
            UtilityError::Cancelled => RunError::Generate(GenerateError::Cancelled),
            UtilityError::Input(i) => RunError::Generate(i.into()),
            UtilityError::Options(s) => RunError::Generate(s.into()),
            UtilityError::Io { path, source } => RunError::Io { path, source },
        },
    )?;
    job.set_done();
    let summary = serde_json::to_value(&run.manifest.report).expect("report serializes");
    Ok((summary, list_files(job.dir())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::files::InputError;
    use crate::domain::writer::SinkError;

    #[test]
    fn cancelled_runs_have_no_code_and_failures_theirs() {
        assert_eq!(
            failure_code(&RunError::Generate(GenerateError::Cancelled)),
            None
        );
        assert_eq!(
            failure_code(&RunError::Generate(GenerateError::Sink(SinkError::Closed))),
            None
        );
        let spec = SpecError {
            field: "x".into(),
            message: "y".into(),
        };
        assert_eq!(
            failure_code(&RunError::Generate(spec.into())),
            Some(ErrorCode::InvalidSpec)
        );
        assert_eq!(
            failure_code(&RunError::Generate(InputError::file("f", "bad").into())),
            Some(ErrorCode::InvalidInput)
        );
        let io = RunError::Io {
            path: "p".into(),
            source: std::io::Error::other("disk"),
        };
        assert_eq!(failure_code(&io), Some(ErrorCode::Internal));
    }
}

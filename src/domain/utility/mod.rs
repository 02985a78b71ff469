//! Workload utilities: reshape existing workload files (reference §6 `utility.py`, plus new modes).
//!
//! - `concat`: files one after another; each file is shifted by the previous file's largest (shifted)
//!   timestamp plus `gap_ms`. `gap_ms: 0` (default) is the reference: the next file's first entry collides
//!   with the previous file's last one (two entries, same timestamp). Unlike the reference the maximum is
//!   used, not the last line, so an unsorted file does not break the chain.
//! - `merge`: a k-way merge of the inputs on their original timestamps. Entries with equal timestamps become
//!   one entry: the first one's keys, requests appended in input (file, then line) order, keys only later
//!   entries have are added, list-valued keys (agent `events`) concatenated. An unsorted input is read into
//!   memory and sorted (stable) first, with a note.
//! - `time-scale` (multiply timestamps, rounded to ms), `slice` (keep `[start_ms, end_ms)`, re-based to 0),
//!   `sample` (keep each request with probability `fraction`, whole sessions at a time, seeded), `shift`
//!   (add `offset_ms`), `stats` (counts, span, rate, length percentiles).
//!
//! Inputs are JSONL or JSON-array workload files ([`read`]); everything but `timestamp` (and `requests` when
//! merging or sampling) passes through untouched, keys in their original order, including the reference's
//! legacy `Prompt Length`/`Output Length`. Output is written like Python's `json.dumps` ([`write`]) through a
//! temporary file, so a failed run writes nothing. Every function is synchronous and streams, except the
//! in-memory sort of an unsorted merge input.

pub mod anonymize;
mod merge;
mod options;
pub mod read;
pub mod stats;
mod tally;
pub mod write;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rand::Rng;
use serde::Serialize;

use super::atomic;
use super::files::sha256_file;
use super::generate::rng_for;
use super::run::{GeneratorInfo, InputFile, MANIFEST_FILE, OutputInfo};
use super::spec::SpecError;
use read::{EntryReader, MAX_TIMESTAMP_MS, RawEntry};
use stats::{StatsCollector, WorkloadStats};
use write::EntryWriter;

use merge::{MergeError, merge};
use options::io_err;
pub use options::{
    Input, InputReport, Operation, OutputOptions, OutputReport, UtilityError, UtilityReport,
};
use tally::{CANCEL_EVERY, Out, Tally, checked_ts};

/// RNG stream of `sample` (one seed, as in generation).
const SAMPLE_STREAM: u64 = 16;

/// Runs `op` on `inputs`, writing the result to `dest` (for `stats`: the summary as pretty JSON).
/// Nothing is written when it fails.
pub fn apply(
    op: &Operation,
    inputs: &[Input],
    dest: &Path,
    output: OutputOptions,
    cancel: &(dyn Fn() -> bool + Sync),
) -> Result<UtilityReport, UtilityError> {
    let op = op.validated(inputs.len())?;
    if op == Operation::Stats {
        let (stats, tally) = stats_of(&inputs[0], cancel)?;
        let mut text = serde_json::to_vec_pretty(&stats).expect("stats serialize");
        text.push(b'\n');
        atomic::write_bytes(dest, &text).map_err(io_err(dest))?;
        return Ok(UtilityReport {
            operation: op,
            inputs: vec![tally.report()],
            output: None,
            stats: Some(stats),
            notes: vec![],
        });
    }
    let mut notes = Vec::new();
    if op == Operation::Merge {
        // Restart with in-memory sorting of any input found unsorted during the streaming merge.
        let mut in_memory = vec![false; inputs.len()];
        loop {
            match merge(inputs, &in_memory, dest, output, cancel, &mut notes) {
                Err(MergeError::Unsorted {
                    input,
                    line,
                    prev,
                    ts,
                }) => {
                    notes.push(format!(
                        "{}: not sorted by timestamp (line {line}: {ts} after {prev}); it was read into \
                         memory and sorted (stable) before merging",
                        inputs[input].name
                    ));
                    in_memory[input] = true;
                }
                Err(MergeError::Other(e)) => return Err(e),
                Ok((tallies, out)) => {
                    return Ok(UtilityReport {
                        operation: op,
                        inputs: tallies.iter().map(Tally::report).collect(),
                        output: Some(out),
                        stats: None,
                        notes,
                    });
                }
            }
        }
    }
    let w = EntryWriter::create(dest, output.format, output.ascii).map_err(io_err(dest))?;
    let mut out = Out {
        w,
        requests: 0,
        first: None,
        last: None,
        cancel,
        dest,
    };
    let mut tallies = Vec::with_capacity(inputs.len());
    let mut offset = 0u64;
    let mut sample = match op {
        Operation::Sample { fraction, seed } => Some(Sampler {
            fraction,
            rng: rng_for(seed.expect("validated"), SAMPLE_STREAM),
            sessions: HashMap::new(),
        }),
        _ => None,
    };
    for input in inputs {
        let mut reader = EntryReader::open(&input.name, &input.path)?;
        let mut tally = Tally::new(&input.name);
        let mut shifted_max: Option<u64> = None;
        for e in reader.by_ref() {
            let mut e = e?;
            tally.add(&e);
            let name = &input.name;
            let ts = match &op {
                Operation::Concat { .. } => {
                    let t = checked_ts(&e, name, e.timestamp.checked_add(offset), "concatenating")?;
                    shifted_max = Some(shifted_max.map_or(t, |m| m.max(t)));
                    Some(t)
                }
                Operation::TimeScale { factor } => {
                    let t = (e.timestamp as f64 * factor).round();
                    let t = (t <= MAX_TIMESTAMP_MS as f64).then_some(t as u64);
                    Some(checked_ts(&e, name, t, &format!("scaling by {factor}"))?)
                }
                Operation::Slice { start_ms, end_ms } => (e.timestamp >= *start_ms
                    && end_ms.is_none_or(|end| e.timestamp < end))
                .then(|| e.timestamp - start_ms),
                Operation::Shift { offset_ms } => {
                    let t = e.timestamp.checked_add_signed(*offset_ms);
                    Some(checked_ts(
                        &e,
                        name,
                        t,
                        &format!("shifting by {offset_ms} ms"),
                    )?)
                }
                Operation::Sample { .. } => {
                    let s = sample.as_mut().expect("sampler");
                    s.thin(&mut e).then_some(e.timestamp)
                }
                Operation::Merge | Operation::Stats => unreachable!("handled above"),
            };
            if let Some(ts) = ts {
                e.set_timestamp(ts);
                out.write(&e)?;
            }
        }
        tally.finish(&reader);
        if let (Operation::Concat { gap_ms }, Some(m)) = (&op, shifted_max) {
            offset = m.saturating_add(*gap_ms);
        }
        if !tally.sorted {
            notes.push(format!(
                "{}: not sorted by timestamp; entries were kept in file order",
                input.name
            ));
        }
        tallies.push(tally);
    }
    let out = out.commit()?;
    Ok(UtilityReport {
        operation: op,
        inputs: tallies.iter().map(Tally::report).collect(),
        output: Some(out),
        stats: None,
        notes,
    })
}

/// Summarizes one workload file (the `stats` mode) without writing anything.
pub fn workload_stats(
    input: &Input,
    cancel: &(dyn Fn() -> bool + Sync),
) -> Result<WorkloadStats, UtilityError> {
    stats_of(input, cancel).map(|(s, _)| s)
}

fn stats_of(
    input: &Input,
    cancel: &(dyn Fn() -> bool + Sync),
) -> Result<(WorkloadStats, Tally), UtilityError> {
    let mut reader = EntryReader::open(&input.name, &input.path)?;
    let mut c = StatsCollector::new();
    let mut tally = Tally::new(&input.name);
    for e in reader.by_ref() {
        let e = e?;
        if tally.entries.is_multiple_of(CANCEL_EVERY) && cancel() {
            return Err(UtilityError::Cancelled);
        }
        tally.add(&e);
        c.add(&e);
    }
    tally.finish(&reader);
    Ok((c.finish(), tally))
}

/// Seeded thinning for `sample`.
struct Sampler {
    fraction: f64,
    rng: rand_chacha::ChaCha8Rng,
    sessions: HashMap<String, bool>,
}

impl Sampler {
    /// Thins the requests of `e` in place; false when the entry should be dropped (it had requests and none
    /// is left).
    fn thin(&mut self, e: &mut RawEntry) -> bool {
        let reqs = e.requests_mut();
        if reqs.is_empty() {
            return true;
        }
        let (fraction, rng, sessions) = (self.fraction, &mut self.rng, &mut self.sessions);
        reqs.retain(|r| {
            let session = r.get("session_id").filter(|s| !s.is_null());
            match session {
                Some(s) => *sessions
                    .entry(s.to_string())
                    .or_insert_with(|| rng.random::<f64>() < fraction),
                None => rng.random::<f64>() < fraction,
            }
        });
        !reqs.is_empty()
    }
}

/// `manifest.json` of a utility run: what was done to which inputs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UtilityManifest {
    /// Generator name and version.
    pub generator: GeneratorInfo,
    /// The operation as run.
    pub operation: Operation,
    /// Inputs with their hashes, in order.
    pub inputs: Vec<InputFile>,
    /// The workload file.
    pub output: OutputInfo,
    /// Counts and notes.
    pub report: UtilityReport,
}

/// The result of [`run_to_dir`].
#[derive(Debug, Clone)]
pub struct UtilityRun {
    /// Path of the workload file.
    pub workload: PathBuf,
    /// Path of the manifest.
    pub manifest_path: PathBuf,
    /// The manifest.
    pub manifest: UtilityManifest,
}

/// Runs `op` into `dir` as a workload resource: `workload.jsonl|json` plus `manifest.json` (both atomic).
/// `stats` produces no workload: use [`workload_stats`].
pub fn run_to_dir(
    op: &Operation,
    inputs: &[Input],
    dir: &Path,
    output: OutputOptions,
    cancel: &(dyn Fn() -> bool + Sync),
) -> Result<UtilityRun, UtilityError> {
    if *op == Operation::Stats {
        return Err(SpecError {
            field: "mode".into(),
            message: "stats produces no workload (use the stats call)".into(),
        }
        .into());
    }
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let file = super::writer::workload_file_name(output.format);
    let dest = dir.join(file);
    let report = apply(op, inputs, &dest, output, cancel)?;
    let mut files = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        let (sha256, bytes) = sha256_file(&input.path).map_err(io_err(&input.path))?;
        files.push(InputFile {
            role: format!("input_files[{i}]"),
            name: input.name.clone(),
            sha256,
            bytes,
        });
    }
    let manifest = UtilityManifest {
        generator: GeneratorInfo {
            name: "workload-generator",
            version: env!("CARGO_PKG_VERSION"),
        },
        operation: report.operation.clone(),
        inputs: files,
        output: OutputInfo {
            file: file.to_string(),
            bytes: report.output.as_ref().map_or(0, |o| o.bytes),
        },
        report,
    };
    let manifest_path = dir.join(MANIFEST_FILE);
    let mut text = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
    text.push(b'\n');
    atomic::write_bytes(&manifest_path, &text).map_err(io_err(&manifest_path))?;
    Ok(UtilityRun {
        workload: dest,
        manifest_path,
        manifest,
    })
}

#[cfg(test)]
mod tests;

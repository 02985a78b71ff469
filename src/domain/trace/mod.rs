//! Trace replay: Azure, Mooncake, BurstGPT and generic (column-mapped) traces.
//!
//! Every format is read by a streaming row reader ([`RowReader`]) that yields [`TraceRow`]s: an absolute time,
//! the prompt and output lengths, an optional session and (Mooncake) the KV-block hash ids. The shared
//! pipeline then
//! 1. scans the file once to validate every row (errors name the file, line and column before anything is
//!    written) and to check the order; unsorted rows are sorted in memory, with a note in the summary;
//! 2. streams the rows a second time through the time controls ([`TraceSpec::start_ms`], `duration_ms`,
//!    [`TraceSpec::time_scale`], [`TraceSpec::sample_fraction`], [`TraceSpec::max_requests`]);
//! 3. groups them into entries (`grouping: window` stamps each request at the start of its
//!    `group_interval_ms` window; `grouping: exact` keeps each request's own millisecond, consecutive equal
//!    times sharing one entry);
//! 4. turns each group into requests: length-matched prompts from the collection (Azure, BurstGPT, generic;
//!    `near`, the default, keeps those within ±5% and builds the others to the exact length, `exact` builds
//!    every one, `sample` keeps the reference's match), or prompts assembled from per-hash-id block
//!    texts (Mooncake).
//!
//! Memory is flat in the number of rows for sorted traces (one group is held at a time).

use std::borrow::Cow;
use std::path::Path;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::domain::emit::{
    Collector, GenerateError, GenerateInput, Progress, Summary, rng_for, streams,
};
use crate::domain::exact::ExactBuilder;
use crate::domain::files::{HashState, HashingRead, InputError, digest_of};
use crate::domain::lengths::TokenizedDataset;
use crate::domain::limits::LimitError;
use crate::domain::sampler::{PickKind, Sampler, Tolerance};
use crate::domain::spec::{LengthPolicy, OutputLengthSource, ValidatedSpec};
use crate::domain::writer::{Entry, EntrySink, Request};

pub mod azure;
mod blocks;
pub mod burstgpt;
pub mod generic;
pub mod mooncake;
pub mod rows;
pub mod spec;

pub(crate) use self::group::*;
pub use self::rows::*;
pub use self::spec::*;

mod group;

/// Opens the row reader for a trace type.
pub fn open_reader(
    kind: TraceKind,
    t: &TraceSpec,
    path: &Path,
) -> Result<Box<dyn RowReader>, InputError> {
    let f = std::fs::File::open(path)
        .map_err(|e| InputError::file(&t.file, format!("cannot open: {e}")))?;
    reader_of(kind, t, f)
}

/// [`open_reader`] that also hashes the bytes it reads (for the manifest, without a second read).
fn open_hashing(
    kind: TraceKind,
    t: &TraceSpec,
    path: &Path,
) -> Result<(Box<dyn RowReader>, HashState), InputError> {
    let f = std::fs::File::open(path)
        .map_err(|e| InputError::file(&t.file, format!("cannot open: {e}")))?;
    let (r, state) = HashingRead::new(f);
    Ok((reader_of(kind, t, r)?, state))
}

fn reader_of<R: std::io::Read + Send + 'static>(
    kind: TraceKind,
    t: &TraceSpec,
    f: R,
) -> Result<Box<dyn RowReader>, InputError> {
    let name = t.file.as_str();
    let r = std::io::BufReader::with_capacity(1 << 16, f);
    Ok(match kind {
        TraceKind::Azure => Box::new(azure::AzureReader::new(r, name)?),
        TraceKind::Mooncake => Box::new(mooncake::MooncakeReader::new(r, name)),
        TraceKind::Burstgpt => Box::new(burstgpt::BurstReader::new(r, name, t)?),
        TraceKind::Generic => generic::open(r, name, t)?,
    })
}

// ---------------------------------------------------------------------------------------------------------
// The pipeline.

/// What the validation pass found.
struct Scan {
    rows: u64,
    first_unsorted_line: Option<u64>,
    origin_us: i64,
    last_us: i64,
    notes: Vec<String>,
}

fn scan(
    mut reader: Box<dyn RowReader>,
    cancel: &(dyn Fn() -> bool + Sync),
) -> Result<Scan, GenerateError> {
    let mut s = Scan {
        rows: 0,
        first_unsorted_line: None,
        origin_us: i64::MAX,
        last_us: i64::MIN,
        notes: Vec::new(),
    };
    let mut prev = i64::MIN;
    for row in reader.by_ref() {
        let row = row?;
        if s.rows.is_multiple_of(65_536) && cancel() {
            return Err(GenerateError::Cancelled);
        }
        s.rows += 1;
        if row.time_us < prev && s.first_unsorted_line.is_none() {
            s.first_unsorted_line = Some(row.line);
        }
        prev = row.time_us;
        s.origin_us = s.origin_us.min(row.time_us);
        s.last_us = s.last_us.max(row.time_us);
    }
    s.notes = reader.notes();
    Ok(s)
}

/// The time controls: which rows are replayed and when.
#[derive(Debug)]
pub struct TimeControls {
    origin_us: i64,
    start_ms: f64,
    scale: f64,
    duration_ms: f64,
    fraction: f64,
    rng: ChaCha8Rng,
    max_requests: Option<u64>,
    /// Rows kept so far.
    pub kept: u64,
    /// Rows dropped by `sample_fraction`.
    pub thinned: u64,
    /// True once a row at or past `duration_ms` was seen.
    pub hit_duration: bool,
    /// True once `max_requests` stopped the replay.
    pub hit_max: bool,
}

/// What the time controls decide for a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Not replayed (before `start_ms`, or thinned out).
    Skip,
    /// Replayed at this many ms from the start of the workload.
    Keep(f64),
    /// Replay ends here (`duration_ms` or `max_requests` reached; rows are sorted).
    Stop,
}

impl TimeControls {
    /// Controls for a trace whose first row is at `origin_us`.
    pub fn new(t: &TraceSpec, origin_us: i64, duration_ms: u64, seed: u64) -> Self {
        Self {
            origin_us,
            start_ms: t.start_ms as f64,
            scale: t.time_scale,
            duration_ms: duration_ms as f64,
            fraction: t.sample_fraction,
            rng: rng_for(seed, THINNING_STREAM),
            max_requests: t.max_requests,
            kept: 0,
            thinned: 0,
            hit_duration: false,
            hit_max: false,
        }
    }

    /// Decides for one row (rows must come in time order).
    pub fn apply(&mut self, time_us: i64) -> Decision {
        let rel = (time_us - self.origin_us) as f64 / 1000.0;
        if rel < self.start_ms {
            return Decision::Skip;
        }
        let t = (rel - self.start_ms) * self.scale;
        if t >= self.duration_ms {
            self.hit_duration = true;
            return Decision::Stop;
        }
        if self.max_requests.is_some_and(|m| self.kept >= m) {
            self.hit_max = true;
            return Decision::Stop;
        }
        if self.fraction < 1.0 && self.rng.random::<f64>() >= self.fraction {
            self.thinned += 1;
            return Decision::Skip;
        }
        self.kept += 1;
        Decision::Keep(t)
    }
}

/// Length-matched prompts from the collection (Azure, BurstGPT, generic).
struct MatchedEmitter<'a> {
    data: &'a TokenizedDataset,
    sampler: Sampler,
    rng: ChaCha8Rng,
    tol: Tolerance,
    exact: Option<ExactBuilder<'a>>,
    policy: LengthPolicy,
    limits: crate::domain::limits::Limits,
    out_source: OutputLengthSource,
    started: Vec<bool>,
    sessions_started: u64,
}

impl<'a> MatchedEmitter<'a> {
    fn new(spec: &ValidatedSpec, input: &GenerateInput<'a>) -> Result<Self, GenerateError> {
        let s = spec.spec();
        let data = input.data;
        let mut rng = rng_for(spec.seed(), streams::PROMPTS);
        let sampler = Sampler::new(
            data,
            s.sampling.replacement,
            spec.max_open_sessions(),
            &mut rng,
        );
        let exact = match s.length_policy {
            LengthPolicy::Exact | LengthPolicy::Near => Some(
                ExactBuilder::new(input.tokenizer, data, s.add_special_tokens)?
                    .with_cancel(input.cancel),
            ),
            LengthPolicy::Sample => None,
        };
        Ok(Self {
            data,
            sampler,
            rng,
            tol: spec.tolerance(),
            exact,
            policy: s.length_policy,
            limits: *spec.limits(),
            out_source: s.output_length_source,
            started: vec![false; data.dataset.sessions.len()],
            sessions_started: 0,
        })
    }
}

impl GroupEmitter for MatchedEmitter<'_> {
    fn emit(
        &mut self,
        ts: u64,
        rows: &[TraceRow],
        sink: &mut dyn EntrySink,
        c: &mut Collector,
    ) -> Result<bool, GenerateError> {
        let data = self.data;
        let ds = &data.dataset;
        // Picks in row order (one RNG stream), then the exact-length texts in parallel (each is a pure
        // function of its pick and target, so the output does not depend on the thread count).
        let mut picks: Vec<(&TraceRow, usize)> = Vec::with_capacity(rows.len());
        let mut more = true;
        for row in rows {
            let tin = Some(row.input_len);
            let Some(pick) = self.sampler.pick(
                &mut self.rng,
                tin,
                self.policy.matched_output(row.output_len, self.out_source),
                self.tol,
            ) else {
                c.s.notes.push(if ds.sessions.is_empty() {
                    format!(
                        "all {} prompts were used (sampling without replacement) at {ts} ms; generation stopped there",
                        ds.len()
                    )
                } else {
                    format!(
                        "all {} sessions were used up at {ts} ms; generation stopped there",
                        ds.sessions.len()
                    )
                });
                more = false;
                break;
            };
            match pick.kind {
                PickKind::Untargeted => c.s.matching.untargeted += 1,
                PickKind::Window(_) => c.s.matching.in_window += 1,
                PickKind::Nearest => c.s.matching.nearest += 1,
            }
            picks.push((row, pick.item));
        }
        let policy = self.policy;
        if policy == LengthPolicy::Near {
            // Only the rows whose prompt is built are bounded by max_prompt_tokens (under `exact` every row
            // is checked as it is read).
            for &(row, item) in &picks {
                if !policy.keeps(data.prompt_len[item], row.input_len) {
                    self.limits
                        .check_prompt_tokens("trace.file", u64::from(row.input_len))
                        .map_err(|e| LimitError {
                            field: e.field,
                            message: format!("line {}: input_length {}", row.line, e.message),
                        })?;
                }
            }
        }
        let builds =
            |&(row, item): &(&TraceRow, usize)| !policy.keeps(data.prompt_len[item], row.input_len);
        let exact_texts: Vec<Option<(String, u32)>> = match &self.exact {
            // The thread pool only for groups with prompts to build (waking it for every group of a
            // trace whose prompts are all kept costs more than the work).
            Some(ex) if picks.iter().any(builds) => picks
                .par_iter()
                .map(|p| {
                    builds(p)
                        .then(|| {
                            let t = p.0.input_len;
                            ex.build_within(p.1, t, policy.build_window(t))
                        })
                        .transpose()
                })
                .collect::<Result<_, _>>()?,
            _ => vec![None; picks.len()],
        };
        let mut requests = Vec::with_capacity(picks.len());
        for ((row, item), exact) in picks.into_iter().zip(exact_texts) {
            let (prompt, plen) = match exact {
                Some((text, n)) => (Cow::Owned(text), n),
                None => (
                    Cow::Borrowed(ds.prompts[item].as_str()),
                    data.prompt_len[item],
                ),
            };
            if row.input_len > 0 {
                c.err.add(plen, row.input_len);
            }
            let output_length = match (row.output_len, self.out_source) {
                (Some(t), OutputLengthSource::Target) => Some(t),
                _ => data.completion_len[item],
            };
            let session_id = match &row.session {
                Some(id) => Some(id),
                None => self.sampler.session_of(item).map(|si| {
                    if !self.started[si] {
                        self.started[si] = true;
                        self.sessions_started += 1;
                    }
                    &ds.sessions[si].id
                }),
            };
            requests.push(Request {
                prompt,
                prompt_length: plen,
                output_length,
                session_id,
                agent: None,
            });
        }
        if !requests.is_empty() {
            let entry = Entry {
                timestamp: ts,
                requests,
                extra: None,
            };
            sink.entry(&entry)?;
            c.entry(&entry);
        }
        Ok(more)
    }

    fn finish(&mut self, c: &mut Collector) {
        if !self.data.dataset.sessions.is_empty() {
            c.s.sessions_started = Some(self.sessions_started);
            c.s.sessions_finished = Some(self.sampler.sessions_finished);
        }
    }
}

/// Rows of the second pass: streamed from the file, or sorted in memory.
enum Rows {
    Stream(Box<dyn RowReader>),
    Sorted(std::vec::IntoIter<TraceRow>),
}

impl Iterator for Rows {
    type Item = Result<TraceRow, InputError>;
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Rows::Stream(r) => r.next(),
            Rows::Sorted(v) => v.next().map(Ok),
        }
    }
}

/// Generates a workload from a trace (`azure`, `mooncake`, `burstgpt`, `generic`).
pub(crate) fn generate_trace(
    spec: &ValidatedSpec,
    kind: TraceKind,
    t: &TraceSpec,
    input: GenerateInput<'_>,
    sink: &mut dyn EntrySink,
) -> Result<Summary, GenerateError> {
    let s = spec.spec();
    let path = input.files.resolve("trace.file", &t.file)?;
    let duration = s.duration_ms;
    let (reader, hash) = open_hashing(kind, t, &path)?;
    let scan = scan(reader, input.cancel)?;
    // The validation pass read the whole file: its hash is the manifest's (when the size agrees; otherwise the
    // manifest hashes the file itself).
    let (sha256, bytes) = digest_of(&hash);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes) {
        input.files.hashed(&path, &sha256, bytes);
    }
    let mut c = Collector::default();
    c.s.notes.extend(scan.notes);
    if scan.rows == 0 {
        c.s.notes
            .push(format!("the trace {} has no requests", t.file));
        (input.progress)(Progress {
            fraction: 1.0,
            requests: 0,
        });
        return Ok(c.finish(duration));
    }
    let rows = match scan.first_unsorted_line {
        None => Rows::Stream(open_reader(kind, t, &path)?),
        Some(line) => {
            let mut all = open_reader(kind, t, &path)?.collect::<Result<Vec<_>, _>>()?;
            all.sort_by_key(|r| r.time_us);
            c.s.notes.push(format!(
                "the trace rows are not sorted by time (line {line} is earlier than the row before it); \
                 all {} rows were sorted in memory",
                all.len()
            ));
            Rows::Sorted(all.into_iter())
        }
    };
    let grouping = t.grouping.unwrap_or(if kind == TraceKind::Azure {
        Grouping::Window
    } else {
        Grouping::Exact
    });
    let window = t.group_interval_ms.unwrap_or(s.interval_ms).max(1);
    let mut tc = TimeControls::new(t, scan.origin_us, duration, spec.seed());
    let mut emitter: Box<dyn GroupEmitter + '_> = match kind {
        TraceKind::Mooncake => Box::new(mooncake::BlockEmitter::new(spec, t, &input)?),
        _ => Box::new(MatchedEmitter::new(spec, &input)?),
    };
    // Rows whose prompt text is built (Mooncake blocks, exact lengths) are bounded by max_prompt_tokens.
    let builds_text = kind == TraceKind::Mooncake || s.length_policy == LengthPolicy::Exact;
    let mut group: Vec<TraceRow> = Vec::new();
    let mut group_ts = 0u64;
    let mut seen = 0u64;
    let mut last_progress = 0u64;
    let mut stopped = false;
    for row in rows {
        let row = row?;
        if builds_text {
            spec.limits()
                .check_prompt_tokens("trace.file", u64::from(row.input_len))
                .map_err(|e| LimitError {
                    field: e.field,
                    message: format!("line {}: input_length {}", row.line, e.message),
                })?;
        }
        seen += 1;
        if (builds_text || seen.is_multiple_of(1024)) && (input.cancel)() {
            return Err(GenerateError::Cancelled);
        }
        let at = match tc.apply(row.time_us) {
            Decision::Skip => continue,
            Decision::Stop => break,
            Decision::Keep(at) => at,
        };
        let ms = at as u64;
        let ts = match grouping {
            Grouping::Window => ms / window * window,
            Grouping::Exact => ms,
        };
        if !group.is_empty() && ts != group_ts {
            if !emitter.emit(group_ts, &group, sink, &mut c)? {
                stopped = true;
                group.clear();
                break;
            }
            group.clear();
            if c.s.requests - last_progress >= 4096 {
                last_progress = c.s.requests;
                (input.progress)(Progress {
                    fraction: group_ts as f64 / duration as f64,
                    requests: c.s.requests,
                });
            }
        }
        group_ts = ts;
        group.push(row);
    }
    if !group.is_empty() && !stopped {
        emitter.emit(group_ts, &group, sink, &mut c)?;
    }
    emitter.finish(&mut c);
    let span_ms = (scan.last_us - scan.origin_us) as f64 / 1000.0;
    let replayed_ms = ((span_ms - t.start_ms as f64).max(0.0)) * t.time_scale;
    if !tc.hit_duration && !tc.hit_max && !stopped && replayed_ms < duration as f64 {
        c.s.notes.push(format!(
            "the trace covers only {replayed_ms:.0} ms after start_ms and time_scale, less than duration_ms {duration}"
        ));
    }
    if tc.thinned > 0 {
        c.s.notes.push(format!(
            "sample_fraction {} dropped {} of {} requests",
            t.sample_fraction,
            tc.thinned,
            tc.thinned + tc.kept
        ));
    }
    if tc.hit_max {
        c.s.notes.push(format!(
            "max_requests {} reached; the replay stopped there",
            tc.kept
        ));
    }
    (input.progress)(Progress {
        fraction: 1.0,
        requests: c.s.requests,
    });
    Ok(c.finish(duration))
}

#[cfg(test)]
pub(crate) mod tests;

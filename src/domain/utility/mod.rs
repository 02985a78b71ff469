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

pub mod read;
pub mod stats;
pub mod write;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::io::BufReader;
use std::path::{Path, PathBuf};

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use super::atomic;
use super::files::{InputError, sha256_file};
use super::generate::rng_for;
use super::run::{GeneratorInfo, InputFile, MANIFEST_FILE, OutputInfo};
use super::spec::{OutputFormat, SpecError};
use read::{EntryReader, Layout, MAX_TIMESTAMP_MS, RawEntry};
use stats::{StatsCollector, WorkloadStats};
use write::EntryWriter;

/// RNG stream of `sample` (one seed, as in generation).
const SAMPLE_STREAM: u64 = 16;

/// How often (in entries) the cancel flag is polled.
const CANCEL_EVERY: u64 = 1024;

/// One utility operation with its options. Serialized with a `mode` tag, e.g.
/// `{"mode": "concat", "gap_ms": 0}` or `{"mode": "time-scale", "factor": 0.5}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Operation {
    /// Files one after another.
    Concat {
        /// Milliseconds between the previous file's largest timestamp and the next file's time 0
        /// (0 = reference: the entries collide).
        #[serde(default)]
        gap_ms: u64,
    },
    /// Interleave on original timestamps; equal timestamps are combined.
    Merge,
    /// Multiply every timestamp by `factor` (rounded to the nearest ms).
    TimeScale {
        /// Factor > 0 (0.5 = twice as fast).
        factor: f64,
    },
    /// Keep entries with `start_ms <= timestamp < end_ms`, re-based so `start_ms` becomes 0.
    Slice {
        /// Window start, ms (default 0).
        #[serde(default)]
        start_ms: u64,
        /// Window end (exclusive), ms; absent = to the end.
        #[serde(default)]
        end_ms: Option<u64>,
    },
    /// Keep each request with probability `fraction`; requests with a `session_id` are kept or dropped with
    /// their whole session. Entries left without requests are dropped.
    Sample {
        /// Fraction of requests (or sessions) to keep, in (0, 1].
        fraction: f64,
        /// Seed; random when absent (and reported).
        #[serde(default)]
        seed: Option<u64>,
    },
    /// Add `offset_ms` to every timestamp.
    Shift {
        /// Offset, ms; may be negative as long as no timestamp becomes negative.
        offset_ms: i64,
    },
    /// Summarize one workload file.
    Stats,
}

impl Operation {
    /// The mode name (`concat`, `time-scale`, ...).
    pub fn mode(&self) -> &'static str {
        match self {
            Operation::Concat { .. } => "concat",
            Operation::Merge => "merge",
            Operation::TimeScale { .. } => "time-scale",
            Operation::Slice { .. } => "slice",
            Operation::Sample { .. } => "sample",
            Operation::Shift { .. } => "shift",
            Operation::Stats => "stats",
        }
    }

    /// Checks the options against `inputs` files; returns the operation with defaults filled in (a seed for
    /// `sample`).
    pub fn validated(&self, inputs: usize) -> Result<Operation, SpecError> {
        let err = |field: &str, message: String| SpecError {
            field: field.to_string(),
            message,
        };
        let multi = matches!(self, Operation::Concat { .. } | Operation::Merge);
        if inputs == 0 {
            return Err(err("input_files", "must name at least one file".into()));
        }
        if !multi && inputs != 1 {
            return Err(err(
                "input_files",
                format!("mode {} takes exactly one file, got {inputs}", self.mode()),
            ));
        }
        let mut op = self.clone();
        match &mut op {
            Operation::TimeScale { factor } if !(factor.is_finite() && *factor > 0.0) => {
                return Err(err("factor", format!("must be a number > 0, got {factor}")));
            }
            Operation::Slice {
                start_ms,
                end_ms: Some(end),
            } if *end <= *start_ms => {
                return Err(err(
                    "end_ms",
                    format!("must be greater than start_ms ({start_ms}), got {end}"),
                ));
            }
            Operation::Sample { fraction, seed } => {
                if !(*fraction > 0.0 && *fraction <= 1.0) {
                    return Err(err(
                        "fraction",
                        format!("must be in (0, 1], got {fraction}"),
                    ));
                }
                seed.get_or_insert_with(rand::random);
            }
            _ => {}
        }
        Ok(op)
    }
}

/// An input workload: a display name for errors and the manifest (a path or an id) and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// Name used in errors and the manifest.
    pub name: String,
    /// The file.
    pub path: PathBuf,
}

impl Input {
    /// An input named by its path (CLI).
    pub fn path(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self {
            name: path.display().to_string(),
            path,
        }
    }
}

/// Output layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OutputOptions {
    /// JSONL (default) or an indented JSON array.
    #[serde(default)]
    pub format: OutputFormat,
    /// Escape non-ASCII as `\uXXXX` like Python's default.
    #[serde(default)]
    pub ascii: bool,
}

/// Why a utility run failed. Nothing is written in any of these cases.
#[derive(Debug, Error)]
pub enum UtilityError {
    /// An option is invalid.
    #[error(transparent)]
    Options(#[from] SpecError),
    /// An input file is not a valid workload (names file, line and field).
    #[error(transparent)]
    Input(#[from] InputError),
    /// Writing the output failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Cancelled by the caller.
    #[error("the utility run was cancelled")]
    Cancelled,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> UtilityError + '_ {
    move |source| UtilityError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What was read from one input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputReport {
    /// Its name.
    pub name: String,
    /// `jsonl` or `json`.
    pub layout: &'static str,
    /// Entries read.
    pub entries: u64,
    /// Requests read.
    pub requests: u64,
    /// Whether its timestamps never decrease in file order.
    pub sorted: bool,
    /// Bare `NaN`/`Infinity` values (reference output) read as null.
    pub non_finite_as_null: u64,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputReport {
    /// Entries written.
    pub entries: u64,
    /// Requests written.
    pub requests: u64,
    /// First timestamp written, ms.
    pub first_timestamp_ms: Option<u64>,
    /// Largest timestamp written, ms.
    pub last_timestamp_ms: Option<u64>,
    /// Bytes written.
    pub bytes: u64,
}

/// The result of a utility run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UtilityReport {
    /// The operation as run (defaults and the seed filled in).
    pub operation: Operation,
    /// Per input.
    pub inputs: Vec<InputReport>,
    /// The written workload (absent for `stats`).
    pub output: Option<OutputReport>,
    /// The summary (`stats` only).
    pub stats: Option<WorkloadStats>,
    /// Things worth knowing (unsorted inputs, combined keys with differing values, ...).
    pub notes: Vec<String>,
}

/// Per-input bookkeeping.
struct Tally {
    name: String,
    layout: Option<Layout>,
    entries: u64,
    requests: u64,
    prev: Option<u64>,
    max: Option<u64>,
    sorted: bool,
    nan: u64,
}

impl Tally {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            layout: None,
            entries: 0,
            requests: 0,
            prev: None,
            max: None,
            sorted: true,
            nan: 0,
        }
    }

    fn add(&mut self, e: &RawEntry) {
        self.entries += 1;
        self.requests += e.requests().len() as u64;
        if self.prev.is_some_and(|p| e.timestamp < p) {
            self.sorted = false;
        }
        self.prev = Some(e.timestamp);
        self.max = Some(self.max.map_or(e.timestamp, |m| m.max(e.timestamp)));
    }

    fn finish<R: std::io::BufRead>(&mut self, r: &EntryReader<R>) {
        self.layout = r.layout();
        self.nan = r.nan_replaced();
    }

    fn report(&self) -> InputReport {
        InputReport {
            name: self.name.clone(),
            layout: match self.layout {
                Some(Layout::JsonArray) => "json",
                _ => "jsonl",
            },
            entries: self.entries,
            requests: self.requests,
            sorted: self.sorted,
            non_finite_as_null: self.nan,
        }
    }
}

/// The output side: writer plus counters and the cancel poll.
struct Out<'a> {
    w: EntryWriter,
    requests: u64,
    first: Option<u64>,
    last: Option<u64>,
    cancel: &'a (dyn Fn() -> bool + Sync),
    dest: &'a Path,
}

impl Out<'_> {
    fn write(&mut self, e: &RawEntry) -> Result<(), UtilityError> {
        if self.w.entries().is_multiple_of(CANCEL_EVERY) && (self.cancel)() {
            return Err(UtilityError::Cancelled);
        }
        self.w.write(&e.fields).map_err(io_err(self.dest))?;
        self.requests += e.requests().len() as u64;
        self.first.get_or_insert(e.timestamp);
        self.last = Some(self.last.map_or(e.timestamp, |l| l.max(e.timestamp)));
        Ok(())
    }

    fn commit(self) -> Result<OutputReport, UtilityError> {
        let entries = self.w.entries();
        let bytes = self.w.commit().map_err(io_err(self.dest))?;
        Ok(OutputReport {
            entries,
            requests: self.requests,
            first_timestamp_ms: self.first,
            last_timestamp_ms: self.last,
            bytes,
        })
    }
}

fn checked_ts(e: &RawEntry, file: &str, v: Option<u64>, why: &str) -> Result<u64, InputError> {
    v.filter(|t| *t <= MAX_TIMESTAMP_MS).ok_or_else(|| {
        InputError::at(
            file,
            e.line,
            Some("timestamp"),
            format!(
                "{why} takes timestamp {} out of range [0, 2^53]",
                e.timestamp
            ),
        )
    })
}

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

enum MergeError {
    Unsorted {
        input: usize,
        line: u64,
        prev: u64,
        ts: u64,
    },
    Other(UtilityError),
}

impl<E: Into<UtilityError>> From<E> for MergeError {
    fn from(e: E) -> Self {
        MergeError::Other(e.into())
    }
}

enum Source {
    Stream(EntryReader<BufReader<std::fs::File>>),
    Memory(std::vec::IntoIter<RawEntry>),
}

/// A heap item ordered by (timestamp, input index), smallest first.
struct Head {
    ts: u64,
    input: usize,
    entry: RawEntry,
}

impl PartialEq for Head {
    fn eq(&self, o: &Self) -> bool {
        (self.ts, self.input) == (o.ts, o.input)
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Head {
    fn cmp(&self, o: &Self) -> Ordering {
        (o.ts, o.input).cmp(&(self.ts, self.input))
    }
}

/// Appends `later` into `first` (same timestamp): requests appended, new keys added, lists concatenated,
/// other differing values counted in `conflicts` (the first value is kept).
fn combine(first: &mut RawEntry, later: RawEntry, conflicts: &mut BTreeMap<String, u64>) {
    for (k, v) in later.fields {
        if k == "timestamp" {
            continue;
        }
        match first.fields.get_mut(&k) {
            None => {
                first.fields.insert(k, v);
            }
            Some(Value::Array(a)) => match v {
                Value::Array(b) => a.extend(b),
                _ => *conflicts.entry(k).or_default() += 1,
            },
            Some(existing) => {
                if *existing != v {
                    *conflicts.entry(k).or_default() += 1;
                }
            }
        }
    }
}

/// The next entry of merge input `i`, or an `Unsorted` error when a streamed input goes back in time.
fn pull(
    i: usize,
    sources: &mut [Source],
    tallies: &mut [Tally],
) -> Result<Option<Head>, MergeError> {
    let entry = match &mut sources[i] {
        Source::Memory(it) => it.next(),
        Source::Stream(r) => match r.next() {
            None => {
                tallies[i].finish(r);
                None
            }
            Some(e) => {
                let e = e?;
                if let Some(prev) = tallies[i].prev.filter(|p| e.timestamp < *p) {
                    return Err(MergeError::Unsorted {
                        input: i,
                        line: e.line,
                        prev,
                        ts: e.timestamp,
                    });
                }
                tallies[i].add(&e);
                Some(e)
            }
        },
    };
    Ok(entry.map(|entry| Head {
        ts: entry.timestamp,
        input: i,
        entry,
    }))
}

fn merge(
    inputs: &[Input],
    in_memory: &[bool],
    dest: &Path,
    output: OutputOptions,
    cancel: &(dyn Fn() -> bool + Sync),
    notes: &mut Vec<String>,
) -> Result<(Vec<Tally>, OutputReport), MergeError> {
    let mut sources = Vec::with_capacity(inputs.len());
    let mut tallies: Vec<Tally> = inputs.iter().map(|i| Tally::new(&i.name)).collect();
    for (i, input) in inputs.iter().enumerate() {
        let reader = EntryReader::open(&input.name, &input.path)?;
        if in_memory[i] {
            let mut reader = reader;
            let mut all: Vec<RawEntry> = reader.by_ref().collect::<Result<_, _>>()?;
            for e in &all {
                tallies[i].add(e);
            }
            tallies[i].finish(&reader);
            all.sort_by_key(|e| e.timestamp);
            sources.push(Source::Memory(all.into_iter()));
        } else {
            sources.push(Source::Stream(reader));
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
    let mut heap = BinaryHeap::with_capacity(inputs.len());
    for i in 0..inputs.len() {
        if let Some(h) = pull(i, &mut sources, &mut tallies)? {
            heap.push(h);
        }
    }
    let mut group: Option<RawEntry> = None;
    let mut conflicts = BTreeMap::new();
    let mut combined = 0u64;
    while let Some(Head { ts, input, entry }) = heap.pop() {
        if let Some(next) = pull(input, &mut sources, &mut tallies)? {
            heap.push(next);
        }
        match &mut group {
            Some(g) if g.timestamp == ts => {
                combine(g, entry, &mut conflicts);
                combined += 1;
            }
            _ => {
                if let Some(g) = group.replace(entry) {
                    out.write(&g)?;
                }
            }
        }
    }
    if let Some(g) = group {
        out.write(&g)?;
    }
    let out = out.commit()?;
    if combined > 0 {
        notes.push(format!(
            "{combined} entries were combined into an earlier entry with the same timestamp"
        ));
    }
    for (k, n) in conflicts {
        notes.push(format!(
            "key '{k}': {n} combined entries had a different value; the first entry's value was kept"
        ));
    }
    Ok((tallies, out))
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

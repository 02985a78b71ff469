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
//!    `length_policy: exact` builds them to the exact length), or prompts assembled from per-hash-id block
//!    texts (Mooncake).
//!
//! Memory is flat in the number of rows for sorted traces (one group is held at a time).

use std::borrow::Cow;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::dataset::SessionId;
use super::exact::ExactBuilder;
use super::files::InputError;
use super::generate::{
    Collector, GenerateError, GenerateInput, Progress, Summary, rng_for, streams,
};
use super::lengths::TokenizedDataset;
use super::sampler::{PickKind, Sampler, Tolerance};
use super::spec::{
    GenerationSpec, LengthPolicy, OutputLengthSource, SpecError, TraceType, ValidatedSpec,
};
use super::writer::{Entry, EntrySink, Request};

pub mod azure;
pub mod burstgpt;
pub mod generic;
pub mod mooncake;

/// Default Mooncake KV-block size in tokens.
pub const DEFAULT_BLOCK_SIZE: u32 = 512;

/// RNG stream of the `sample_fraction` thinning (separate from arrivals, lengths and prompt choice).
pub const THINNING_STREAM: u64 = 0x7472_6163_6501;

/// How trace requests are grouped into workload entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Grouping {
    /// One entry per `group_interval_ms` window, stamped at the window start (reference; Azure default).
    Window,
    /// Each request keeps its own time in ms; consecutive requests with the same ms share an entry (default
    /// for Mooncake, BurstGPT and generic traces).
    Exact,
}

/// Unit of a generic trace's timestamp column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestampUnit {
    /// Seconds (a number, fractions allowed). Default.
    #[default]
    S,
    /// Milliseconds.
    Ms,
    /// Microseconds.
    Us,
    /// A date-time string `YYYY-MM-DD[ T]HH:MM:SS[.fraction][Z|±HH:MM]`.
    Datetime,
}

/// File format of a generic trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// Column mapping of a generic trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceColumns {
    /// Column (CSV header name or JSON key) of the request time.
    pub timestamp: String,
    /// Unit of the time column: `s` (default), `ms`, `us` or `datetime`.
    #[serde(default)]
    pub timestamp_unit: TimestampUnit,
    /// Column of the prompt length (tokens).
    pub input: String,
    /// Column of the output length (tokens); absent = no output target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Column of a session id, emitted as `session_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

/// Trace replay options (`trace` in the spec).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceSpec {
    /// The trace file: a path (CLI, `--traffic-file`) or an uploaded trace id (service).
    #[serde(default)]
    pub file: String,
    /// Generic traces: `csv` or `jsonl` (default: from the file name, `.jsonl`/`.json` = jsonl, else csv).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<TraceFormat>,
    /// Window of `grouping: window`, ms (default: the spec's `interval_ms`, as the reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_interval_ms: Option<u64>,
    /// `window` (Azure default) or `exact` (default for the other trace types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grouping: Option<Grouping>,
    /// Mooncake: tokens per KV block (default 512).
    #[serde(default = "default_block_size")]
    pub block_size: u32,
    /// BurstGPT: keep only rows of this `Model` (e.g. `ChatGPT`, `GPT-4`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// BurstGPT: keep only rows of this `Log Type` (e.g. `Conversation log`, `API log`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_type: Option<String>,
    /// BurstGPT: keep failed requests (0 response tokens), dropped by default.
    #[serde(default)]
    pub keep_failed: bool,
    /// Generic traces: the column mapping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<TraceColumns>,
    /// Skip the first `start_ms` of the trace (trace time, before scaling).
    #[serde(default)]
    pub start_ms: u64,
    /// Multiplies trace time gaps: 0.5 replays twice as fast (default 1).
    #[serde(default = "one")]
    pub time_scale: f64,
    /// Keep each request with this probability (seeded thinning; keeps the burst shape). Default 1.
    #[serde(default = "one")]
    pub sample_fraction: f64,
    /// Stop after this many requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u64>,
}

fn default_block_size() -> u32 {
    DEFAULT_BLOCK_SIZE
}
fn one() -> f64 {
    1.0
}

impl TraceSpec {
    /// Options for `file` with every default.
    pub fn new(file: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            format: None,
            group_interval_ms: None,
            grouping: None,
            block_size: DEFAULT_BLOCK_SIZE,
            model: None,
            log_type: None,
            keep_failed: false,
            columns: None,
            start_ms: 0,
            time_scale: 1.0,
            sample_fraction: 1.0,
            max_requests: None,
        }
    }
}

fn spec_err(field: &str, message: impl Into<String>) -> SpecError {
    SpecError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// True for the trace types replayed by this module.
pub fn is_trace_type(t: TraceType) -> bool {
    matches!(
        t,
        TraceType::Azure | TraceType::Mooncake | TraceType::Burstgpt | TraceType::Generic
    )
}

impl GenerationSpec {
    /// Checks the `trace` object against the trace type.
    pub(crate) fn validate_trace(&self) -> Result<(), SpecError> {
        let ty = self.trace_type;
        let Some(t) = &self.trace else {
            if is_trace_type(ty) {
                return Err(spec_err(
                    "trace.file",
                    format!(
                        "is required for trace_type {} (CLI: --traffic-file)",
                        ty.as_str()
                    ),
                ));
            }
            return Ok(());
        };
        if !is_trace_type(ty) {
            return Err(spec_err(
                "trace",
                "is only used by trace_type azure, mooncake, burstgpt or generic",
            ));
        }
        if t.file.trim().is_empty() {
            return Err(spec_err(
                "trace.file",
                format!(
                    "is required for trace_type {} (CLI: --traffic-file)",
                    ty.as_str()
                ),
            ));
        }
        if t.group_interval_ms == Some(0) {
            return Err(spec_err("trace.group_interval_ms", "must be > 0"));
        }
        if !(t.time_scale.is_finite() && t.time_scale > 0.0) {
            return Err(spec_err("trace.time_scale", "must be > 0"));
        }
        if !(t.sample_fraction.is_finite() && t.sample_fraction > 0.0 && t.sample_fraction <= 1.0) {
            return Err(spec_err("trace.sample_fraction", "must be within (0, 1]"));
        }
        if t.max_requests == Some(0) {
            return Err(spec_err(
                "trace.max_requests",
                "must be > 0 (omit it for no limit)",
            ));
        }
        if ty == TraceType::Mooncake
            && !(mooncake::MIN_BLOCK_SIZE..=1 << 20).contains(&t.block_size)
        {
            return Err(spec_err(
                "trace.block_size",
                format!("must be within [{}, 1048576]", mooncake::MIN_BLOCK_SIZE),
            ));
        }
        if ty != TraceType::Mooncake && t.block_size != DEFAULT_BLOCK_SIZE {
            return Err(spec_err(
                "trace.block_size",
                "is only used by trace_type mooncake",
            ));
        }
        if ty != TraceType::Burstgpt && (t.model.is_some() || t.log_type.is_some() || t.keep_failed)
        {
            let f = if t.model.is_some() {
                "trace.model"
            } else if t.log_type.is_some() {
                "trace.log_type"
            } else {
                "trace.keep_failed"
            };
            return Err(spec_err(f, "is only used by trace_type burstgpt"));
        }
        match (ty, &t.columns) {
            (TraceType::Generic, None) => {
                return Err(spec_err(
                    "trace.columns",
                    "is required for trace_type generic (at least timestamp and input)",
                ));
            }
            (TraceType::Generic, Some(c)) => {
                if c.timestamp.trim().is_empty() {
                    return Err(spec_err("trace.columns.timestamp", "must not be empty"));
                }
                if c.input.trim().is_empty() {
                    return Err(spec_err("trace.columns.input", "must not be empty"));
                }
            }
            (_, Some(_)) => {
                return Err(spec_err(
                    "trace.columns",
                    "is only used by trace_type generic",
                ));
            }
            _ => {}
        }
        if ty != TraceType::Generic && t.format.is_some() {
            return Err(spec_err(
                "trace.format",
                "is only used by trace_type generic",
            ));
        }
        Ok(())
    }
}

/// One request of a trace, as read.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRow {
    /// 1-based line (CSV: record line) in the file.
    pub line: u64,
    /// Absolute time in microseconds (epoch for date-times, else from the trace's own zero).
    pub time_us: i64,
    /// Prompt length, tokens.
    pub input_len: u32,
    /// Output length, tokens (None when the trace has no output column).
    pub output_len: Option<u32>,
    /// Session id, when the trace has one.
    pub session: Option<SessionId>,
    /// Mooncake KV-block hash ids (empty for other formats).
    pub hash_ids: Vec<u64>,
}

/// A streaming reader of trace rows.
pub trait RowReader: Iterator<Item = Result<TraceRow, InputError>> {
    /// Notes about rows the reader dropped (filters), for the summary.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Opens the row reader for a trace type.
pub fn open_reader(
    ty: TraceType,
    t: &TraceSpec,
    path: &Path,
) -> Result<Box<dyn RowReader>, InputError> {
    let name = t.file.as_str();
    let f = std::fs::File::open(path)
        .map_err(|e| InputError::file(name, format!("cannot open: {e}")))?;
    let r = std::io::BufReader::with_capacity(1 << 16, f);
    Ok(match ty {
        TraceType::Azure => Box::new(azure::AzureReader::new(r, name)?),
        TraceType::Mooncake => Box::new(mooncake::MooncakeReader::new(r, name)),
        TraceType::Burstgpt => Box::new(burstgpt::BurstReader::new(r, name, t)?),
        TraceType::Generic => generic::open(r, name, t)?,
        other => {
            return Err(InputError::file(
                name,
                format!("trace_type {} does not read trace files", other.as_str()),
            ));
        }
    })
}

// ---------------------------------------------------------------------------------------------------------
// Field parsing shared by the readers.

/// Parses a token length: a non-negative integer (an integral float like `512.0` is accepted).
pub fn parse_len(raw: &[u8]) -> Result<u32, String> {
    let b = raw.trim_ascii();
    if b.is_empty() {
        return Err("is empty; expected a non-negative integer".into());
    }
    let mut v: u64 = 0;
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        v = v * 10 + (b[i] - b'0') as u64;
        if v > u32::MAX as u64 {
            return Err(format!("'{}' is too large", String::from_utf8_lossy(b)));
        }
        i += 1;
    }
    if i == b.len() {
        return Ok(v as u32);
    }
    // Not a plain integer: accept integral floats, name negatives and garbage.
    let s = String::from_utf8_lossy(b);
    match s.parse::<f64>() {
        Ok(x) if x < 0.0 => Err(format!(
            "'{s}' is negative; expected a non-negative integer"
        )),
        Ok(x) if x.fract() == 0.0 && x <= u32::MAX as f64 => Ok(x as u32),
        _ => Err(format!("'{s}' is not a non-negative integer")),
    }
}

/// A token length from a JSON value (number or numeric string).
pub fn json_len(v: Option<&Value>) -> Result<u32, String> {
    match v {
        None | Some(Value::Null) => Err("is missing".into()),
        Some(Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                u32::try_from(u).map_err(|_| format!("{u} is too large"))
            } else {
                parse_len(n.to_string().as_bytes())
            }
        }
        Some(Value::String(s)) => parse_len(s.as_bytes()),
        Some(other) => Err(format!("must be a number, got {other}")),
    }
}

/// Parses a number (seconds, ms, ...) as f64.
pub fn parse_f64(raw: &[u8]) -> Result<f64, String> {
    let s = std::str::from_utf8(raw.trim_ascii()).map_err(|_| "is not UTF-8".to_string())?;
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(format!("'{s}' is not a number")),
    }
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DD[ T]HH:MM:SS[.fraction][Z|±HH:MM]` into microseconds since the Unix epoch (UTC).
pub fn parse_datetime_us(raw: &[u8]) -> Option<i64> {
    let b = raw.trim_ascii();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (c - b'0') as i64;
        }
        Some(v)
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b' ' || b[10] == b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        let mut scale = 100_000i64;
        while i < b.len() && b[i].is_ascii_digit() {
            micros += (b[i] - b'0') as i64 * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let mut offset_s = 0i64;
    if i < b.len() {
        match b[i] {
            b'Z' | b'z' if i + 1 == b.len() => {}
            b'+' | b'-' if b.len() == i + 6 && b[i + 3] == b':' => {
                let sign = if b[i] == b'-' { -1 } else { 1 };
                offset_s = sign * (num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60);
            }
            _ => return None,
        }
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset_s;
    Some(secs * 1_000_000 + micros)
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

/// Turns a group of rows (one workload entry) into requests and writes them.
trait GroupEmitter {
    /// Emits the entry; returns false when generation must stop (collection used up).
    fn emit(
        &mut self,
        ts: u64,
        rows: &[TraceRow],
        sink: &mut dyn EntrySink,
        c: &mut Collector,
    ) -> Result<bool, GenerateError>;

    /// Adds final counters to the summary.
    fn finish(&mut self, _c: &mut Collector) {}
}

/// Length-matched prompts from the collection (Azure, BurstGPT, generic).
struct MatchedEmitter<'a> {
    data: &'a TokenizedDataset,
    sampler: Sampler,
    rng: ChaCha8Rng,
    tol: Tolerance,
    exact: Option<ExactBuilder<'a>>,
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
            LengthPolicy::Exact => Some(ExactBuilder::new(
                input.tokenizer,
                data,
                s.add_special_tokens,
            )?),
            LengthPolicy::Match => None,
        };
        Ok(Self {
            data,
            sampler,
            rng,
            tol: spec.tolerance(),
            exact,
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
            let Some(pick) = self
                .sampler
                .pick(&mut self.rng, tin, row.output_len, self.tol)
            else {
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
        let exact_texts: Vec<Option<(String, u32)>> = match &self.exact {
            Some(ex) => picks
                .par_iter()
                .map(|&(row, item)| {
                    (row.input_len > 0)
                        .then(|| ex.build(item, row.input_len))
                        .transpose()
                })
                .collect::<Result<_, _>>()?,
            None => vec![None; picks.len()],
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
    input: GenerateInput<'_>,
    sink: &mut dyn EntrySink,
) -> Result<Summary, GenerateError> {
    let s = spec.spec();
    let ty = s.trace_type;
    let t = s.trace.as_ref().ok_or_else(|| {
        spec_err(
            "trace.file",
            format!(
                "is required for trace_type {} (CLI: --traffic-file)",
                ty.as_str()
            ),
        )
    })?;
    let path = input.files.resolve("trace.file", &t.file)?;
    let duration = s.duration_ms;
    let scan = scan(open_reader(ty, t, &path)?, input.cancel)?;
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
        None => Rows::Stream(open_reader(ty, t, &path)?),
        Some(line) => {
            let mut all = open_reader(ty, t, &path)?.collect::<Result<Vec<_>, _>>()?;
            all.sort_by_key(|r| r.time_us);
            c.s.notes.push(format!(
                "the trace rows are not sorted by time (line {line} is earlier than the row before it); \
                 all {} rows were sorted in memory",
                all.len()
            ));
            Rows::Sorted(all.into_iter())
        }
    };
    let grouping = t.grouping.unwrap_or(if ty == TraceType::Azure {
        Grouping::Window
    } else {
        Grouping::Exact
    });
    let window = t.group_interval_ms.unwrap_or(s.interval_ms).max(1);
    let mut tc = TimeControls::new(t, scan.origin_us, duration, spec.seed());
    let mut emitter: Box<dyn GroupEmitter + '_> = match ty {
        TraceType::Mooncake => Box::new(mooncake::BlockEmitter::new(spec, &input)?),
        _ => Box::new(MatchedEmitter::new(spec, &input)?),
    };
    let mut group: Vec<TraceRow> = Vec::new();
    let mut group_ts = 0u64;
    let mut seen = 0u64;
    let mut last_progress = 0u64;
    let mut stopped = false;
    for row in rows {
        let row = row?;
        seen += 1;
        if seen.is_multiple_of(1024) && (input.cancel)() {
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

/// Deterministic 64-bit mix of a seed and a key (SplitMix64 finalizer).
pub(crate) fn mix(seed: u64, key: u64) -> u64 {
    let mut z = seed ^ key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A ChaCha8 generator for `key` under `seed`.
pub(crate) fn keyed_rng(seed: u64, key: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(seed, key))
}

#[cfg(test)]
pub(crate) mod tests;

//! The emit layer: the types and helpers every traffic shape shares (RNG streams, the summary and its
//! collector, the generation input, and the length-matched emitter). It sits below every shape and imports
//! none of them.
//!
//! Randomness comes from separate ChaCha8 streams derived from the one seed: arrivals, lengths and prompt
//! choice each have their own, so changing one knob does not reshuffle the others.

use std::borrow::Cow;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use thiserror::Error;

use super::arrival::RatePiece;
use super::exact::ExactBuilder;
use super::files::FileResolver;
use super::lengths::TokenizedDataset;
use super::sampler::{PickKind, Sampler};
use super::spec::ValidatedSpec;
use super::spec::common::{LengthPolicy, OutputLengthSource};
use super::stats::{ErrorCollector, Histogram, LengthError, LengthSummary, round3};
use super::tokenizer::TokenCounter;
use super::writer::{Entry, EntrySink, Request, SinkError};

/// RNG stream ids (one seed, independent streams).
pub mod streams {
    /// Arrival times.
    pub const ARRIVALS: u64 = 1;
    /// Length series (patterns, percentiles).
    pub const LENGTHS: u64 = 2;
    /// Prompt choice.
    pub const PROMPTS: u64 = 3;
}

/// A ChaCha8 generator for `stream` of `seed`.
pub fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// Why generation stopped without a result.
#[derive(Debug, Error)]
pub enum GenerateError {
    /// A spec value is unusable (found while generating, e.g. a file that does not resolve).
    #[error(transparent)]
    Spec(#[from] super::spec::common::SpecError),
    /// An input file (trace, CSV, config) is invalid.
    #[error(transparent)]
    Input(#[from] super::files::InputError),
    /// Tokenization failed.
    #[error(transparent)]
    Tokenizer(#[from] super::tokenizer::TokenizerError),
    /// Cancelled by the caller.
    #[error("generation was cancelled")]
    Cancelled,
    /// The job would exceed, or crossed, one of its limits.
    #[error(transparent)]
    Limit(#[from] super::limits::LimitError),
    /// The sink failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

impl From<super::exact::ExactError> for GenerateError {
    fn from(e: super::exact::ExactError) -> Self {
        match e {
            super::exact::ExactError::Tokenizer(t) => GenerateError::Tokenizer(t),
            super::exact::ExactError::Cancelled => GenerateError::Cancelled,
        }
    }
}

/// Progress report: fraction of the workload's duration done and requests so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// 0..=1.
    pub fraction: f64,
    /// Requests emitted so far.
    pub requests: u64,
}

/// How prompts were matched.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MatchSummary {
    /// Picks without any target (shuffled deck / uniform).
    pub untargeted: u64,
    /// Picks inside a tolerance window.
    pub in_window: u64,
    /// Picks that fell back to the nearest prompt.
    pub nearest: u64,
    /// Prompt length against its target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_length_error: Option<LengthError>,
}

/// What was generated: counts and achieved statistics.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Lines written.
    pub entries: u64,
    /// Requests written.
    pub requests: u64,
    /// The workload's nominal duration, ms.
    pub duration_ms: u64,
    /// First timestamp, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_timestamp_ms: Option<u64>,
    /// Last timestamp, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_timestamp_ms: Option<u64>,
    /// Requests per second over the nominal duration.
    pub mean_rate_qps: f64,
    /// Prompt lengths (tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_length: Option<LengthSummary>,
    /// Output lengths (tokens), over requests that have one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_length: Option<LengthSummary>,
    /// Requests whose `output_length` is null.
    pub null_output_lengths: u64,
    /// Prompt matching.
    pub matching: MatchSummary,
    /// Distinct sessions that emitted at least one turn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions_started: Option<u64>,
    /// Sessions whose every turn was emitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions_finished: Option<u64>,
    /// Things the user should know (e.g. the collection ran out).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The rate curve the arrivals followed (synthetic patterns, stat rows), for the report and plots.
    #[serde(skip)]
    pub target_rate: Option<Vec<RatePiece>>,
}

/// Accumulates the summary while entries are emitted.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    pub(crate) s: Summary,
    plen: Histogram,
    olen: Histogram,
    pub(crate) err: ErrorCollector,
}

impl Collector {
    pub(crate) fn entry(&mut self, e: &Entry<'_>) {
        self.s.entries += 1;
        self.s.first_timestamp_ms.get_or_insert(e.timestamp);
        self.s.last_timestamp_ms = Some(e.timestamp);
        for r in &e.requests {
            self.s.requests += 1;
            self.plen.add(r.prompt_length as u64);
            match r.output_length {
                Some(o) => self.olen.add(o as u64),
                None => self.s.null_output_lengths += 1,
            }
        }
    }

    pub(crate) fn finish(mut self, duration_ms: u64) -> Summary {
        self.s.duration_ms = duration_ms;
        self.s.mean_rate_qps = round3(self.s.requests as f64 / (duration_ms as f64 / 1000.0));
        self.s.prompt_length = self.plen.summary();
        self.s.output_length = self.olen.summary();
        self.s.matching.prompt_length_error = self.err.summary();
        self.s
    }
}

/// Everything generation reads besides the spec.
pub struct GenerateInput<'a> {
    /// The prompt collection with token lengths.
    pub data: &'a TokenizedDataset,
    /// The tokenizer that counted them (for prompts built to exact lengths).
    pub tokenizer: &'a TokenCounter,
    /// Resolves file names of the spec (paths in the CLI, uploaded ids in the service).
    pub files: &'a dyn FileResolver,
    /// Polled between entries; true stops generation with `Cancelled`.
    pub cancel: &'a (dyn Fn() -> bool + Sync),
    /// Called now and then with progress.
    pub progress: &'a mut dyn FnMut(Progress),
}

/// The shared emitter: for each `(timestamp, prompt target, output target)`, one entry with one matched
/// prompt. Used by every trace type that picks prompts from a collection.
pub(crate) fn emit_matched(
    spec: &ValidatedSpec,
    input: GenerateInput<'_>,
    sink: &mut dyn EntrySink,
    times: impl Iterator<Item = (u64, Option<u32>, Option<u32>)>,
) -> Result<Summary, GenerateError> {
    let s = spec.spec();
    let data = input.data;
    let ds = &data.dataset;
    let duration = s.duration_ms;
    let mut prompt_rng = rng_for(spec.seed(), streams::PROMPTS);
    let mut sampler = Sampler::new(
        data,
        s.sampling.replacement,
        spec.max_open_sessions(),
        &mut prompt_rng,
    );
    let tol = spec.tolerance();
    let sessioned = !ds.sessions.is_empty();
    let mut started = vec![false; if sessioned { ds.sessions.len() } else { 0 }];
    let mut sessions_started = 0u64;
    let mut c = Collector::default();
    let mut last_progress = 0u64;
    let policy = s.length_policy;
    let exact = match policy {
        LengthPolicy::Exact | LengthPolicy::Near => Some(
            ExactBuilder::new(input.tokenizer, data, s.add_special_tokens)?
                .with_cancel(input.cancel),
        ),
        LengthPolicy::Sample => None,
    };
    let prompt_target_field = if s.lengths.target_prompt_len.is_some() {
        "lengths.target_prompt_len"
    } else {
        "prompt length target"
    };
    for (n, (ts, tin, tout)) in times.enumerate() {
        if ts >= duration {
            break;
        }
        // Every request when prompts are built (each may take a while), else every 1024 requests (an entry
        // can hold thousands of requests, so entries are no measure of work).
        if (policy == LengthPolicy::Exact || n % 1024 == 0) && (input.cancel)() {
            return Err(GenerateError::Cancelled);
        }
        let Some(pick) = sampler.pick(
            &mut prompt_rng,
            tin,
            policy.matched_output(tout, s.output_length_source),
            tol,
        ) else {
            c.s.notes.push(if sessioned {
                format!("all {} sessions were used up at {ts} ms; generation stopped there", ds.sessions.len())
            } else {
                format!(
                    "all {} prompts were used (sampling without replacement) at {ts} ms; generation stopped there",
                    ds.len()
                )
            });
            break;
        };
        let item = pick.item;
        match pick.kind {
            PickKind::Untargeted => c.s.matching.untargeted += 1,
            PickKind::Window(_) => c.s.matching.in_window += 1,
            PickKind::Nearest => c.s.matching.nearest += 1,
        }
        let (prompt, plen) = match (&exact, tin) {
            (Some(ex), Some(t)) if !policy.keeps(data.prompt_len[item], t) => {
                spec.limits()
                    .check_prompt_tokens(prompt_target_field, u64::from(t))?;
                let (text, n) = ex.build_within(item, t, policy.build_window(t))?;
                (Cow::Owned(text), n)
            }
            _ => (
                Cow::Borrowed(ds.prompts[item].as_str()),
                data.prompt_len[item],
            ),
        };
        if let Some(t) = tin {
            c.err.add(plen, t);
        }
        let output_length = match (tout, s.output_length_source) {
            (Some(t), OutputLengthSource::Target) => Some(t),
            _ => data.completion_len[item],
        };
        let session_id = sampler.session_of(item).map(|si| {
            if !started[si] {
                started[si] = true;
                sessions_started += 1;
            }
            &ds.sessions[si].id
        });
        let entry = Entry {
            timestamp: ts,
            requests: vec![Request {
                prompt,
                prompt_length: plen,
                output_length,
                session_id,
                agent: None,
            }],
            extra: None,
        };
        sink.entry(&entry)?;
        c.entry(&entry);
        if c.s.requests - last_progress >= 4096 {
            last_progress = c.s.requests;
            (input.progress)(Progress {
                fraction: ts as f64 / duration as f64,
                requests: c.s.requests,
            });
        }
    }
    if sessioned {
        c.s.sessions_started = Some(sessions_started);
        c.s.sessions_finished = Some(sampler.sessions_finished);
    }
    (input.progress)(Progress {
        fraction: 1.0,
        requests: c.s.requests,
    });
    Ok(c.finish(duration))
}

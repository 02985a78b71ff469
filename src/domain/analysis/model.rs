//! What an analysis is asked for ([`AnalyzeOptions`]) and what it finds ([`Analysis`]), or why it failed.

use thiserror::Error;

use crate::domain::files::InputError;
use crate::domain::stats::Histogram;
use crate::domain::tokenizer::TokenCounter;

/// Options of [`analyze`](super::analyze).
#[derive(Clone)]
pub struct AnalyzeOptions<'a> {
    /// Name of the input in error messages (a path or an id).
    pub name: String,
    /// Width of a time bin, ms (default 1000). Doubled automatically for long workloads.
    pub bin_ms: u64,
    /// At most this many bins per series (default 2000).
    pub max_points: usize,
    /// Prefix-reuse block size in UTF-8 bytes when no tokenizer is given (default 64, about 16 tokens).
    pub block_bytes: usize,
    /// Prefix-reuse block size in tokens when a tokenizer is given (default 16).
    pub block_tokens: usize,
    /// Capacity of the LRU prefix cache, in blocks (default 32768, i.e. 524,288 tokens of 16-token blocks).
    pub lru_capacity_blocks: usize,
    /// Distinct blocks the "unlimited" cache remembers at most (default 4,194,304); beyond that the unlimited
    /// figure is reported as a lower bound.
    pub unlimited_cap_blocks: usize,
    /// Sessions drawn in the timeline (default 100); all sessions are counted in the report.
    pub max_session_rows: usize,
    /// Tokenizer for token blocks. Without one, blocks are UTF-8 bytes (tokenizing every prompt is costly).
    pub tokenizer: Option<&'a TokenCounter>,
    /// Whether the tokenizer counts special tokens.
    pub add_special_tokens: bool,
    /// Polled between batches (16 MiB of lines, or 1,024 array entries): true stops the pass with
    /// [`AnalyzeError::Cancelled`].
    pub cancel: Option<&'a (dyn Fn() -> bool + Sync)>,
}

impl Default for AnalyzeOptions<'_> {
    fn default() -> Self {
        Self {
            name: "workload".into(),
            bin_ms: 1000,
            max_points: 2000,
            block_bytes: 64,
            block_tokens: 16,
            lru_capacity_blocks: 32_768,
            unlimited_cap_blocks: 1 << 22,
            max_session_rows: 100,
            tokenizer: None,
            add_special_tokens: true,
            cancel: None,
        }
    }
}

/// Why a workload could not be analyzed.
#[derive(Debug, Error)]
pub enum AnalyzeError {
    /// Reading failed.
    #[error("reading {file}: {source}")]
    Io {
        /// The input's name.
        file: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Writing a plot or the report failed.
    #[error("writing {file}: {source}")]
    Write {
        /// The path.
        file: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// An entry is invalid (file, line, field and why).
    #[error(transparent)]
    Input(#[from] InputError),
    /// The cancel flag was raised.
    #[error("cancelled")]
    Cancelled,
}

/// Counts of one time bin.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bin {
    /// Lines (entries) whose timestamp is in the bin.
    pub entries: u64,
    /// Requests.
    pub requests: u64,
    /// Sum of `prompt_length` over requests that have one.
    pub prompt_tokens: u64,
    /// Requests with a `prompt_length`.
    pub prompt_n: u64,
    /// Sum of `output_length` over requests that have one.
    pub output_tokens: u64,
    /// Requests with an `output_length`.
    pub output_n: u64,
}

/// One drawn row of the session timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    /// The session id as text (strings quoted when they look like a number).
    pub label: String,
    /// Bin indices (at the final bin width) holding at least one of its requests, ascending.
    pub bins: Vec<u64>,
}

/// Sessions seen in the workload.
#[derive(Debug, Clone, Default)]
pub struct SessionStats {
    /// Distinct session ids.
    pub count: u64,
    /// Requests per session.
    pub turns: Histogram,
    /// Largest number of sessions open at once (a session is open from its first to its last request,
    /// both inclusive).
    pub max_concurrent: u64,
    /// The first `max_session_rows` sessions by first appearance.
    pub rows: Vec<SessionRow>,
}

/// What a prefix-reuse block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockBasis {
    /// Fixed-size blocks of UTF-8 bytes of the prompt.
    Bytes,
    /// Fixed-size blocks of token ids.
    Tokens,
}

/// Prefix reuse: the share of prompt units (bytes or tokens) in full blocks whose whole prefix (this block
/// and every block before it) appeared in an earlier request. Hits stop at the first miss, as a prefix cache
/// does.
#[derive(Debug, Clone, PartialEq)]
pub struct PrefixStats {
    /// Bytes or tokens.
    pub basis: BlockBasis,
    /// Block size in units.
    pub block_size: usize,
    /// Total prompt units (including partial last blocks, which are never reused).
    pub total_units: u64,
    /// Units reused with an unlimited cache.
    pub reused_unlimited: u64,
    /// True when the unlimited cache hit its memory cap (the unlimited figure is then a lower bound).
    pub unlimited_saturated: bool,
    /// LRU capacity, blocks.
    pub lru_capacity_blocks: usize,
    /// Units reused with the LRU cache.
    pub reused_lru: u64,
}

/// Everything collected in one pass over a workload.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// Bin width requested, ms.
    pub base_bin_ms: u64,
    /// Final bin width, ms (a power-of-two multiple of `base_bin_ms`).
    pub bin_ms: u64,
    /// Bins from t = 0; bin k covers `[k·bin_ms, (k+1)·bin_ms)`.
    pub bins: Vec<Bin>,
    /// Lines.
    pub entries: u64,
    /// Lines with no requests.
    pub empty_entries: u64,
    /// Requests.
    pub requests: u64,
    /// Smallest timestamp, ms.
    pub min_ts: Option<u64>,
    /// Largest timestamp, ms.
    pub max_ts: Option<u64>,
    /// Prompt lengths (requests with one).
    pub prompt_len: Histogram,
    /// Output lengths (requests with one).
    pub output_len: Histogram,
    /// Requests without a prompt length.
    pub missing_prompt_length: u64,
    /// Requests whose output length is null or absent.
    pub null_output_length: u64,
    /// Gaps between consecutive requests in file order, ms (0 within an entry).
    pub gaps: Histogram,
    /// Requests whose timestamp is earlier than the previous request's (gap not counted).
    pub out_of_order: u64,
    /// Sessions, when any request has a `session_id`.
    pub sessions: Option<SessionStats>,
    /// Prefix reuse, when any request has a prompt.
    pub prefix: Option<PrefixStats>,
    /// At most this many bins per series.
    pub max_points: usize,
}

impl Analysis {
    /// The bins covering `[0, end_ms)` (padded with empty bins), merged pairwise as in the pass until there are
    /// at most `max_points` of them: `(bin_ms, bins)`. Bins past `end_ms` are kept.
    pub fn window_bins(&self, end_ms: u64) -> (u64, Vec<Bin>) {
        let mut bin = self.bin_ms;
        let mut bins = self.bins.clone();
        while end_ms.div_ceil(bin) > self.max_points.max(1) as u64 {
            bins = bins
                .chunks(2)
                .map(|pair| {
                    let mut t = Bin::default();
                    for b in pair {
                        t.entries += b.entries;
                        t.requests += b.requests;
                        t.prompt_tokens += b.prompt_tokens;
                        t.prompt_n += b.prompt_n;
                        t.output_tokens += b.output_tokens;
                        t.output_n += b.output_n;
                    }
                    t
                })
                .collect();
            bin = bin.saturating_mul(2);
        }
        let n = end_ms.div_ceil(bin) as usize;
        if bins.len() < n {
            bins.resize(n, Bin::default());
        }
        (bin, bins)
    }

    /// End of the observed window: the largest timestamp rounded up to a whole base bin (at least one bin).
    pub fn observed_end_ms(&self) -> u64 {
        match self.max_ts {
            Some(t) => (t / self.base_bin_ms + 1).saturating_mul(self.base_bin_ms),
            None => 0,
        }
    }
}

//! What the tokenizer module and its fast path share: the error, the cancel flag and the poll intervals.

use thiserror::Error;

/// Why a tokenizer could not be loaded or used.
#[derive(Debug, Error)]
pub enum TokenizerError {
    /// The name did not resolve to any file; `tried` lists every place that was looked at.
    #[error("tokenizer '{name}' not found (offline; tried: {})", tried.join(", "))]
    NotFound {
        /// The requested name.
        name: String,
        /// Every path or rule tried.
        tried: Vec<String>,
    },
    /// A file was found but could not be read or parsed.
    #[error("tokenizer file {path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// Encoding a text failed.
    #[error("tokenization failed: {0}")]
    Encode(String),
    /// The caller's cancel flag was set while a long text was being encoded, decoded or counted.
    #[error("cancelled")]
    Cancelled,
}

/// A cancel flag polled by the long tokenizer calls (about every 64 KiB of text or 64 Ki ids).
pub type Cancel<'a> = &'a (dyn Fn() -> bool + Sync);

/// The flag of work that is never cancelled.
pub const NEVER: Cancel<'static> = &|| false;

/// Bytes of text per chunk of a cancellable encode.
pub(super) const ENCODE_CHUNK: usize = 64 << 10;

/// Ids per step of a cancellable decode, and pieces per step of a cancellable count.
pub(super) const POLL_EVERY: usize = 64 << 10;

//! One classification of every domain failure. Each domain error type says what kind of failure it is; the
//! job layer maps a kind to a job error code once (`jobs::execute::failure_code`) and the HTTP layer maps codes
//! to statuses. Storage failures (a disk that is full or gone) are never reported as a bad spec.
//!
//! This module sits above the modules whose errors it classifies; nothing in `domain` imports it.

use super::datasets_tools::DatasetToolError;
use super::emit::GenerateError;
use super::plot::AnalyzeError;
use super::run::RunError;
use super::tokenizer::TokenizerError;
use super::utility::UtilityError;
use super::writer::SinkError;

/// What kind of failure a domain error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A spec or option value is unusable (the caller can fix the request).
    Spec,
    /// An input file (prompt collection, trace, config, workload) is invalid: file, line and field named.
    Input,
    /// The caller cancelled the work (or the consumer of a stream went away).
    Cancelled,
    /// Reading or writing the server's own storage failed (full disk, permissions).
    Storage,
    /// The job would exceed (or crossed) one of its limits (requests, bytes, prompt tokens).
    Limit,
    /// Anything else that went wrong while working (a bug or an unexpected library failure).
    Internal,
}

/// A domain error that knows its [`ErrorKind`].
pub trait Classify {
    /// The kind of this failure.
    fn kind(&self) -> ErrorKind;
}

impl Classify for TokenizerError {
    fn kind(&self) -> ErrorKind {
        match self {
            // A name that does not resolve, or a file that is not a tokenizer, is the spec's fault.
            TokenizerError::NotFound { .. } | TokenizerError::Invalid { .. } => ErrorKind::Spec,
            TokenizerError::Encode(_) => ErrorKind::Internal,
            TokenizerError::Cancelled => ErrorKind::Cancelled,
        }
    }
}

impl Classify for SinkError {
    fn kind(&self) -> ErrorKind {
        match self {
            SinkError::Closed => ErrorKind::Cancelled,
            SinkError::Io(_) => ErrorKind::Storage,
            SinkError::Limit(_) => ErrorKind::Limit,
        }
    }
}

impl Classify for GenerateError {
    fn kind(&self) -> ErrorKind {
        match self {
            GenerateError::Spec(_) => ErrorKind::Spec,
            GenerateError::Input(_) => ErrorKind::Input,
            GenerateError::Tokenizer(t) => t.kind(),
            GenerateError::Cancelled => ErrorKind::Cancelled,
            GenerateError::Limit(_) => ErrorKind::Limit,
            GenerateError::Sink(s) => s.kind(),
        }
    }
}

impl Classify for AnalyzeError {
    fn kind(&self) -> ErrorKind {
        match self {
            AnalyzeError::Input(_) => ErrorKind::Input,
            AnalyzeError::Io { .. } | AnalyzeError::Write { .. } => ErrorKind::Storage,
            AnalyzeError::Cancelled => ErrorKind::Cancelled,
        }
    }
}

impl Classify for RunError {
    fn kind(&self) -> ErrorKind {
        match self {
            RunError::Generate(g) => g.kind(),
            // The report reads back the file this run just wrote: an invalid entry there is our bug.
            RunError::Report(AnalyzeError::Input(_)) => ErrorKind::Internal,
            RunError::Report(r) => r.kind(),
            RunError::Io { .. } => ErrorKind::Storage,
        }
    }
}

impl Classify for UtilityError {
    fn kind(&self) -> ErrorKind {
        match self {
            UtilityError::Options(_) => ErrorKind::Spec,
            UtilityError::Input(_) => ErrorKind::Input,
            UtilityError::Io { .. } => ErrorKind::Storage,
            UtilityError::Cancelled => ErrorKind::Cancelled,
        }
    }
}

impl Classify for DatasetToolError {
    fn kind(&self) -> ErrorKind {
        match self {
            DatasetToolError::Spec(_) | DatasetToolError::Text(_) => ErrorKind::Spec,
            DatasetToolError::Input(_) => ErrorKind::Input,
            DatasetToolError::Tokenizer(t) => t.kind(),
            DatasetToolError::Io(_) => ErrorKind::Storage,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::files::InputError;
    use crate::domain::spec::SpecError;

    #[test]
    fn kinds() {
        let spec = || SpecError {
            field: "x".into(),
            message: "y".into(),
        };
        assert_eq!(GenerateError::Spec(spec()).kind(), ErrorKind::Spec);
        assert_eq!(
            GenerateError::Input(InputError::file("f", "bad")).kind(),
            ErrorKind::Input
        );
        assert_eq!(GenerateError::Cancelled.kind(), ErrorKind::Cancelled);
        assert_eq!(
            GenerateError::Sink(SinkError::Closed).kind(),
            ErrorKind::Cancelled
        );
        let disk = || std::io::Error::other("No space left on device");
        assert_eq!(
            RunError::Io {
                path: "p".into(),
                source: disk()
            }
            .kind(),
            ErrorKind::Storage
        );
        assert_eq!(DatasetToolError::Io(disk()).kind(), ErrorKind::Storage);
        assert_eq!(
            UtilityError::Io {
                path: "p".into(),
                source: disk()
            }
            .kind(),
            ErrorKind::Storage
        );
        assert_eq!(
            GenerateError::Tokenizer(TokenizerError::NotFound {
                name: "t".into(),
                tried: vec![]
            })
            .kind(),
            ErrorKind::Spec
        );
    }
}

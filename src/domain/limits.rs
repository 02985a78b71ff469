//! Cost before work: how much one job may build, checked against the spec's estimate before any work starts
//! and enforced again while the workload is written (the estimate can be wrong; the budget cannot).
//!
//! A leaf module: it knows numbers, not shapes. The spec computes its estimate ([`Estimate`]); shapes that only
//! know their size after reading their inputs (statistics files, traces) check it with
//! [`Limits::check_requests`] before they emit anything; the workload writer stops with
//! [`LimitError`] the moment it crosses [`Limits::max_requests`] or [`Limits::max_output_bytes`].

use thiserror::Error;

/// Default of [`Limits::max_requests`]: 10 million requests.
pub const DEFAULT_MAX_REQUESTS: u64 = 10_000_000;
/// Default of [`Limits::max_output_bytes`]: 20 GB.
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 20_000_000_000;
/// Default of [`Limits::max_prompt_tokens`]: 1 million tokens per prompt.
pub const DEFAULT_MAX_PROMPT_TOKENS: u64 = 1_000_000;

/// What one job may build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests in the workload at most (`--max-job-requests`).
    pub max_requests: u64,
    /// Bytes of the workload file at most (`--max-job-output-bytes`).
    pub max_output_bytes: u64,
    /// Tokens of one prompt at most (`--max-prompt-tokens`): bounds the text built for exact lengths.
    pub max_prompt_tokens: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_requests: DEFAULT_MAX_REQUESTS,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            max_prompt_tokens: DEFAULT_MAX_PROMPT_TOKENS,
        }
    }
}

/// A job would exceed (or has crossed) one of its [`Limits`]. `field` names the spec field that drives the
/// cost (or `workload` for the run-time budget).
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{field} {message}")]
pub struct LimitError {
    /// The spec field (dotted path) responsible, or `workload`.
    pub field: String,
    /// What the estimate or the count was and which limit it exceeds.
    pub message: String,
}

/// The expected size of a job, from its spec (each part `None` when it cannot be known before the inputs are
/// read). Each part names the spec field that drives it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Estimate {
    /// Expected requests.
    pub requests: Option<(String, f64)>,
    /// Expected bytes of the workload file.
    pub bytes: Option<(String, f64)>,
    /// The longest prompt the spec asks to build, tokens.
    pub prompt_tokens: Option<(String, u64)>,
}

/// Rough bytes of one request line besides its prompt text (keys, numbers, timestamp).
pub const REQUEST_OVERHEAD_BYTES: f64 = 90.0;
/// Rough bytes of text per token for estimates (English BPE text is about 4 bytes per token).
pub const BYTES_PER_TOKEN: f64 = 4.0;

impl Limits {
    /// Checks an estimate before any work (prompt length, then requests, then bytes): the first part that
    /// exceeds its limit is the error.
    pub fn check(&self, e: &Estimate) -> Result<(), LimitError> {
        if let Some((field, t)) = &e.prompt_tokens {
            self.check_prompt_tokens(field, *t)?;
        }
        if let Some((field, n)) = &e.requests {
            self.check_requests(field, *n)?;
        }
        if let Some((field, b)) = &e.bytes
            && *b > self.max_output_bytes as f64
        {
            return Err(LimitError {
                field: field.clone(),
                message: format!(
                    "gives a workload of about {} (estimate); at most {} are allowed (max_job_output_bytes)",
                    human_bytes(*b),
                    human_bytes(self.max_output_bytes as f64)
                ),
            });
        }
        Ok(())
    }

    /// Refuses an expected request count above [`Limits::max_requests`].
    pub fn check_requests(&self, field: &str, expected: f64) -> Result<(), LimitError> {
        if expected.is_nan() || expected > self.max_requests as f64 {
            return Err(LimitError {
                field: field.to_string(),
                message: format!(
                    "gives about {expected:.0} requests (estimate); at most {} are allowed (max_job_requests)",
                    self.max_requests
                ),
            });
        }
        Ok(())
    }

    /// Refuses a prompt longer than [`Limits::max_prompt_tokens`].
    pub fn check_prompt_tokens(&self, field: &str, tokens: u64) -> Result<(), LimitError> {
        if tokens > self.max_prompt_tokens {
            return Err(LimitError {
                field: field.to_string(),
                message: format!(
                    "asks for a prompt of {tokens} tokens; at most {} are allowed (max_prompt_tokens)",
                    self.max_prompt_tokens
                ),
            });
        }
        Ok(())
    }

    /// The run-time budget check after `requests` requests and `bytes` bytes were written.
    pub fn check_written(&self, requests: u64, bytes: u64) -> Result<(), LimitError> {
        if requests > self.max_requests {
            return Err(LimitError {
                field: "workload".into(),
                message: format!(
                    "crossed its budget of {} requests while generating (max_job_requests); the partial result \
                     was removed",
                    self.max_requests
                ),
            });
        }
        if bytes > self.max_output_bytes {
            return Err(LimitError {
                field: "workload".into(),
                message: format!(
                    "crossed its budget of {} while generating (max_job_output_bytes); the partial result was \
                     removed",
                    human_bytes(self.max_output_bytes as f64)
                ),
            });
        }
        Ok(())
    }
}

/// `12.3 GB`-style bytes (decimal units).
pub fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_over_a_limit_name_the_field_and_the_numbers() {
        let l = Limits::default();
        let e = Estimate {
            requests: Some(("traffic.target_qps".into(), 2e7)),
            ..Default::default()
        };
        let err = l.check(&e).unwrap_err();
        assert_eq!(err.field, "traffic.target_qps");
        assert!(
            err.message.contains("20000000") && err.message.contains("10000000"),
            "{err}"
        );
        let e = Estimate {
            requests: Some(("traffic.target_qps".into(), 1e6)),
            bytes: Some(("lengths.target_prompt_len".into(), 3e10)),
            prompt_tokens: None,
        };
        let err = l.check(&e).unwrap_err();
        assert_eq!(err.field, "lengths.target_prompt_len");
        assert!(
            err.message.contains("30.0 GB") && err.message.contains("20.0 GB"),
            "{err}"
        );
        let e = Estimate {
            prompt_tokens: Some(("lengths.target_prompt_len".into(), 4_294_967_295)),
            ..Default::default()
        };
        assert!(
            l.check(&e)
                .unwrap_err()
                .message
                .contains("4294967295 tokens")
        );
        assert!(l.check(&Estimate::default()).is_ok());
        assert!(l.check_requests("x", f64::NAN).is_err());
        assert!(l.check_requests("x", f64::INFINITY).is_err());
    }

    #[test]
    fn the_budget_stops_at_the_first_excess() {
        let l = Limits {
            max_requests: 10,
            max_output_bytes: 1000,
            max_prompt_tokens: 5,
        };
        assert!(l.check_written(10, 1000).is_ok());
        assert_eq!(l.check_written(11, 0).unwrap_err().field, "workload");
        assert!(
            l.check_written(1, 1001)
                .unwrap_err()
                .message
                .contains("1.0 kB")
        );
    }
}

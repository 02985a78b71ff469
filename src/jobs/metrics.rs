//! Prometheus metrics of the job system, rendered as text exposition format.

use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the job duration histogram.
const BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0, 600.0];

/// Counters and a histogram; gauges are read from the job manager at scrape time.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Submissions answered 429 or 503.
    pub rejected: AtomicU64,
    /// Jobs submitted.
    pub submitted: AtomicU64,
    durations: Mutex<([u64; BUCKETS.len()], u64, f64)>,
}

impl Metrics {
    /// Records a finished job's duration.
    pub fn observe_duration(&self, secs: f64) {
        let mut d = self.durations.lock().expect("not poisoned");
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                d.0[i] += 1;
            }
        }
        d.1 += 1;
        d.2 += secs;
    }

    /// Renders every metric; `gauges` supplies (jobs by status, queued, running, bytes stored).
    pub fn render(
        &self,
        by_status: &[(&str, u64)],
        queued: u64,
        running: u64,
        bytes: u64,
    ) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP wg_jobs Jobs known to the service, by status.\n# TYPE wg_jobs gauge"
        );
        for (s, n) in by_status {
            let _ = writeln!(out, "wg_jobs{{status=\"{s}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP wg_queue_depth Jobs waiting for a worker.\n# TYPE wg_queue_depth gauge\nwg_queue_depth {queued}"
        );
        let _ = writeln!(
            out,
            "# HELP wg_running_jobs Jobs generating now.\n# TYPE wg_running_jobs gauge\nwg_running_jobs {running}"
        );
        let _ = writeln!(
            out,
            "# HELP wg_submissions_total Jobs submitted.\n# TYPE wg_submissions_total counter\nwg_submissions_total {}",
            self.submitted.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP wg_rejected_submissions_total Submissions refused (queue full or shutting down).\n# TYPE wg_rejected_submissions_total counter\nwg_rejected_submissions_total {}",
            self.rejected.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP wg_bytes_stored Bytes of datasets, traces and results on disk.\n# TYPE wg_bytes_stored gauge\nwg_bytes_stored {bytes}"
        );
        let d = self.durations.lock().expect("not poisoned");
        let _ = writeln!(
            out,
            "# HELP wg_job_duration_seconds Time from start to end of finished jobs.\n# TYPE wg_job_duration_seconds histogram"
        );
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "wg_job_duration_seconds_bucket{{le=\"{b}\"}} {}",
                d.0[i]
            );
        }
        let _ = writeln!(out, "wg_job_duration_seconds_bucket{{le=\"+Inf\"}} {}", d.1);
        let _ = writeln!(out, "wg_job_duration_seconds_sum {}", d.2);
        let _ = writeln!(out, "wg_job_duration_seconds_count {}", d.1);
        out
    }
}

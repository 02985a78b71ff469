//! The open-loop dispatcher, session tasks and the results writer.
//!
//! A dedicated timer thread walks the plan in due order and sleeps to each request's **absolute** deadline
//! (`start + due`, so lateness never accumulates), then hands the request to the tokio runtime: a
//! sessionless request becomes a task, a session turn is passed to its session's task, which sends it once
//! it is due *and* the previous turn has finished (plus think time), with the real history. Every finished
//! request is sent as a record over an unbounded channel to a writer thread, so writing never slows
//! dispatch; the writer streams `results.jsonl` under a temporary name and folds the records into the
//! [`Summary`]; files are renamed into place only when the replay is complete.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

use crate::domain::atomic::{self, AtomicFile};

use super::client::{Endpoint, Outcome, Target, send};
use super::plan::Planned;
use super::plots::PlotAcc;
use super::report::{RequestResult, Slo, Summary, gap_summary, ms};

/// What to do with a session turn whose previous turn finished after the turn was due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LatePolicy {
    /// Send it as soon as the previous turn has finished (plus think time); later turns keep their times.
    #[default]
    Send,
    /// Send it then, and delay every later turn of the session by the same amount (keeps the session's
    /// own gaps).
    Shift,
}

/// Everything but the plan.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Where and how to send.
    pub target: Target,
    /// Extra headers (and `Authorization` for an API key).
    pub headers: reqwest::header::HeaderMap,
    /// At most this many requests in flight (None = no cap).
    pub max_inflight: Option<usize>,
    /// Minimum time between a turn's answer and the session's next turn.
    pub think_time: Duration,
    /// Late turns.
    pub late: LatePolicy,
    /// Goodput objectives.
    pub slo: Slo,
    /// Window of the planned-vs-sent counts, ms.
    pub window_ms: u64,
    /// Per-request timeout (None = none).
    pub timeout: Option<Duration>,
    /// Shard label for the summary (e.g. `0/1`).
    pub shard: String,
    /// Where `results.jsonl`, `summary.json` and `report.json` go.
    pub output_dir: PathBuf,
    /// The target's Prometheus metrics, scraped before, during and after (None = not scraped).
    pub target_metrics: Option<TargetMetrics>,
}

/// `--target-metrics`: where and how often to scrape, and the workload's own prefix-reuse prediction to
/// report beside what the server counted.
#[derive(Debug, Clone)]
pub struct TargetMetrics {
    /// The metrics URL (e.g. `http://127.0.0.1:8000/metrics`).
    pub url: String,
    /// Time between scrapes during the replay.
    pub interval: Duration,
    /// Reported as `server.predicted`.
    pub predicted: Option<Value>,
}

struct Ctx {
    client: reqwest::Client,
    target: Target,
    url: String,
    headers: reqwest::header::HeaderMap,
    inflight: Option<Arc<Semaphore>>,
    think_time: Duration,
    late: LatePolicy,
    start: Instant,
    records: mpsc::UnboundedSender<RequestResult>,
}

struct Turn {
    planned: Planned,
}

fn us_of(d: Duration) -> u64 {
    d.as_micros() as u64
}

fn record(
    ctx: &Ctx,
    p: &Planned,
    sent: Instant,
    wait: Duration,
    off_schedule: bool,
    o: &Outcome,
) -> RequestResult {
    let sent_us = us_of(sent - ctx.start);
    let tokens = o.output_tokens.unwrap_or(o.chunks);
    let tpot = match o.decode {
        Some(d) if tokens >= 2 => Some(ms(d) / (tokens - 1) as f64),
        _ => None,
    };
    RequestResult {
        index: p.index,
        session_id: p.session_id.clone(),
        turn: p.turn,
        turns: p.turns,
        timestamp_ms: p.timestamp_ms,
        scheduled_ms: p.due_us as f64 / 1000.0,
        sent_ms: sent_us as f64 / 1000.0,
        lateness_ms: sent_us.saturating_sub(p.due_us) as f64 / 1000.0,
        inflight_wait_ms: ms(wait),
        off_schedule,
        status: o.status,
        error: o.error.clone(),
        ttft_ms: o.ttft.map(ms),
        tpot_ms: tpot.map(|t| (t * 1000.0).round() / 1000.0),
        itl: gap_summary(&o.gaps),
        e2e_ms: ms(o.e2e),
        prompt_length: p.prompt_length,
        output_length: p.output_length,
        prompt_tokens: o.prompt_tokens,
        output_tokens: o.output_tokens,
    }
}

async fn one_request(
    ctx: Arc<Ctx>,
    p: Planned,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    wait: Duration,
) {
    let input = match ctx.target.endpoint {
        Endpoint::Completions => Value::String(p.prompt.clone()),
        Endpoint::Chat => json!([{ "role": "user", "content": p.prompt }]),
    };
    let (sent, o) = send_one(&ctx, &p, input, permit).await;
    let r = record(&ctx, &p, sent, wait, false, &o);
    let _ = ctx.records.send(r);
}

/// Sends one request with `input` as its prompt or messages; the in-flight slot is released when the
/// response has ended. Returns when it was handed to the client, and what came back.
async fn send_one(
    ctx: &Ctx,
    p: &Planned,
    input: Value,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> (Instant, Outcome) {
    let body = ctx.target.body(input, p.output_length);
    let sent = Instant::now();
    let o = send(
        &ctx.client,
        &ctx.target,
        &ctx.url,
        &body,
        &ctx.headers,
        sent,
    )
    .await;
    drop(permit);
    (sent, o)
}

async fn session(ctx: Arc<Ctx>, mut turns: mpsc::UnboundedReceiver<Turn>) {
    let mut messages: Vec<Value> = Vec::new();
    let mut context = String::new();
    let mut prev_done: Option<Instant> = None;
    let mut shift = Duration::ZERO;
    while let Some(Turn { planned: p }) = turns.recv().await {
        let due = ctx.start + Duration::from_micros(p.due_us) + shift;
        let ready = prev_done.map(|d| d + ctx.think_time);
        let off_schedule = ready.is_some_and(|r| r > due);
        if let (Some(r), LatePolicy::Shift) = (ready, ctx.late)
            && r > due
        {
            shift += r - due;
        }
        let at = ready.map_or(due, |r| r.max(due));
        if at > Instant::now() {
            tokio::time::sleep_until(at.into()).await;
        }
        let (permit, wait) = match &ctx.inflight {
            None => (None, Duration::ZERO),
            Some(s) => match s.clone().try_acquire_owned() {
                Ok(p) => (Some(p), Duration::ZERO),
                Err(_) => {
                    let t = Instant::now();
                    let p = s.clone().acquire_owned().await.ok();
                    (p, t.elapsed())
                }
            },
        };
        let input = match ctx.target.endpoint {
            Endpoint::Chat => {
                messages.push(json!({ "role": "user", "content": p.prompt }));
                Value::Array(messages.clone())
            }
            Endpoint::Completions => {
                if !context.is_empty() {
                    context.push('\n');
                }
                context.push_str(&p.prompt);
                Value::String(context.clone())
            }
        };
        let (sent, o) = send_one(&ctx, &p, input, permit).await;
        prev_done = Some(Instant::now());
        match ctx.target.endpoint {
            Endpoint::Chat => {
                if !o.text.is_empty() {
                    messages.push(json!({ "role": "assistant", "content": o.text }));
                }
            }
            Endpoint::Completions => context.push_str(&o.text),
        }
        let r = record(&ctx, &p, sent, wait, off_schedule, &o);
        let _ = ctx.records.send(r);
    }
}

/// The timer loop (runs on its own thread): absolute deadlines, then hand-off to the runtime.
fn dispatch(plan: Vec<Planned>, ctx: Arc<Ctx>, rt: tokio::runtime::Handle) {
    let mut sessions: HashMap<String, mpsc::UnboundedSender<Turn>> = HashMap::new();
    for p in plan {
        let deadline = ctx.start + Duration::from_micros(p.due_us);
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
        match p.session_id.as_ref().map(Value::to_string) {
            None => {
                let (permit, wait) = match &ctx.inflight {
                    None => (None, Duration::ZERO),
                    Some(s) => match s.clone().try_acquire_owned() {
                        Ok(permit) => (Some(permit), Duration::ZERO),
                        Err(_) => {
                            let t = Instant::now();
                            let permit = rt.block_on(s.clone().acquire_owned()).ok();
                            (permit, t.elapsed())
                        }
                    },
                };
                rt.spawn(one_request(ctx.clone(), p, permit, wait));
            }
            Some(key) => {
                let last = p.turn + 1 >= p.turns;
                let tx = sessions.entry(key.clone()).or_insert_with(|| {
                    let (tx, rx) = mpsc::unbounded_channel();
                    rt.spawn(session(ctx.clone(), rx));
                    tx
                });
                let _ = tx.send(Turn { planned: p });
                if last {
                    sessions.remove(&key);
                }
            }
        }
    }
}

/// Writes `value` as pretty JSON to `path` through a temporary file.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_vec_pretty(value)?;
    text.push(b'\n');
    atomic::write_bytes(path, &text)?;
    Ok(())
}

/// Streams the records to `path` under its temporary name; the caller commits the file once the summary
/// and the report are written.
fn writer(
    mut rx: mpsc::UnboundedReceiver<RequestResult>,
    path: &Path,
    mut summary: Summary,
) -> anyhow::Result<(Summary, PlotAcc, AtomicFile)> {
    let mut out = AtomicFile::create(path)?;
    let mut plots = PlotAcc::new();
    while let Some(r) = rx.blocking_recv() {
        serde_json::to_writer(&mut out, &r)?;
        out.write_all(b"\n")?;
        summary.add(&r);
        plots.add(&r);
    }
    summary.close();
    Ok((summary, plots, out))
}

/// Names of the files of a replay directory.
pub const RESULTS: &str = "results.jsonl";
/// The mergeable summary.
pub const SUMMARY: &str = "summary.json";
/// The report.
pub const REPORT: &str = "report.json";

/// Replays `plan` and writes `results.jsonl`, `summary.json`, `report.json` and the plots ([`super::plots`])
/// into the output directory.
/// Must run inside a multi-threaded tokio runtime.
pub async fn replay(plan: Vec<Planned>, opts: ReplayOptions) -> anyhow::Result<Summary> {
    std::fs::create_dir_all(&opts.output_dir)?;
    let mut builder = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .tcp_nodelay(true);
    if let Some(t) = opts.timeout {
        builder = builder.timeout(t);
    }
    let client = builder.build()?;
    // The server's view: the first scrape happens before the first request.
    let watcher = match &opts.target_metrics {
        Some(m) => {
            let (started_tx, started_rx) = tokio::sync::oneshot::channel();
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
            let task = tokio::spawn(super::metrics::watch(
                client.clone(),
                m.url.clone(),
                m.interval,
                started_tx,
                stop_rx,
            ));
            let _ = started_rx.await;
            Some((task, stop_tx, m.predicted.clone()))
        }
        None => None,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let summary = Summary::new(opts.window_ms, opts.slo, opts.shard.clone());
    let results = opts.output_dir.join(RESULTS);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("replay-writer".into())
        .spawn(move || {
            let _ = done_tx.send(writer(rx, &results, summary));
        })?;
    let ctx = Arc::new(Ctx {
        client,
        url: opts.target.url(),
        target: opts.target.clone(),
        headers: opts.headers.clone(),
        inflight: opts
            .max_inflight
            .map(|n| Arc::new(Semaphore::new(n.max(1)))),
        think_time: opts.think_time,
        late: opts.late,
        start: Instant::now() + Duration::from_millis(5),
        records: tx,
    });
    let rt = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("replay-timer".into())
        .spawn(move || dispatch(plan, ctx, rt))?;
    let (summary, plots, results) = done_rx
        .await
        .map_err(|_| anyhow::anyhow!("the results writer died"))??;
    let mut report = summary.report();
    if let Some((task, stop, predicted)) = watcher {
        let _ = stop.send(());
        let view = task
            .await
            .map_err(|e| anyhow::anyhow!("the metrics scraper died: {e}"))?;
        report["server"] = view.report(predicted);
    }
    write_json(&opts.output_dir.join(SUMMARY), &summary)?;
    write_json(&opts.output_dir.join(REPORT), &report)?;
    super::plots::write(&opts.output_dir, &plots, &summary)?;
    results.commit()?;
    Ok(summary)
}

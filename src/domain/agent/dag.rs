//! The session DAG of the reference: per turn, plan → parallel tools (with retries) → join → follow-up →
//! wait; sessions arrive as a Poisson process and overlap freely.
//!
//! Random draws happen in exactly the reference's order (see the module docs of [`super::pyrandom`]), so
//! the same config and seed give the same timeline as the Python generator.
//!
//! The timeline is a map from integer milliseconds to the model calls and events starting then, in
//! insertion order. Sessions start at increasing times and every node of a session starts at or after the
//! session's start, so entries before the next session's start are final: [`Timeline`] yields them as soon
//! as that start is known. Memory follows the sessions that overlap, not the whole workload.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::config::{AgentConfig, IntRange};
use super::pyrandom::{PyRandom, round_half_even};

/// The `schema_version` of agent entries, requests and events.
pub const SCHEMA_VERSION: &str = "aibrix.agent-session.v1";

/// Ids shared by every node of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionIds {
    /// Index of the session (0-based, in arrival order).
    pub index: u64,
    /// `session_` + 16 hex digits.
    pub session_id: String,
    /// `task_` + 16 hex digits.
    pub task_id: String,
    /// `state_` + 16 hex digits.
    pub state_ref: String,
}

/// The phase of a model call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The first call of a turn.
    Plan,
    /// The call after the tools joined.
    Followup,
}

impl Phase {
    /// `plan` or `followup`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Plan => "plan",
            Phase::Followup => "followup",
        }
    }
}

/// A model call (a request of the workload).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelCall {
    /// Session ids.
    pub session: Arc<SessionIds>,
    /// This node.
    pub node_id: String,
    /// Parent nodes (empty for the first plan).
    pub parent_ids: Vec<String>,
    /// Turn index.
    pub turn: u64,
    /// Plan or follow-up.
    pub phase: Phase,
    /// Prompt length to build, tokens.
    pub prompt_tokens: u64,
    /// Drawn model latency, ms.
    pub expected_latency_ms: u64,
    /// Tokens this call adds to the context.
    pub context_delta_tokens: u64,
}

/// The kind of a non-model node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A tool call (`tool` for the first attempt, `retry` for later ones).
    Tool {
        /// Parallel branch index.
        branch: u64,
        /// Attempt (0 = first).
        attempt: u64,
        /// Whether this attempt failed (and is retried).
        failed: bool,
    },
    /// All branches joined.
    Join,
    /// Think time before the next turn.
    Wait,
}

/// A non-model node of the DAG.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Session ids.
    pub session: Arc<SessionIds>,
    /// This node.
    pub node_id: String,
    /// Parent nodes.
    pub parent_ids: Vec<String>,
    /// Turn index.
    pub turn: u64,
    /// What it is.
    pub kind: EventKind,
    /// Duration, ms.
    pub duration_ms: u64,
    /// Tokens it adds to the context.
    pub context_delta_tokens: u64,
}

impl Event {
    /// `tool`, `retry`, `join` or `wait`.
    pub fn node_type(&self) -> &'static str {
        match self.kind {
            EventKind::Tool { attempt: 0, .. } => "tool",
            EventKind::Tool { .. } => "retry",
            EventKind::Join => "join",
            EventKind::Wait => "wait",
        }
    }
}

/// Everything starting at one millisecond, in insertion order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Slot {
    /// Model calls.
    pub requests: Vec<ModelCall>,
    /// Tool, retry, join and wait events.
    pub events: Vec<Event>,
}

/// The timeline would not fit in 64-bit milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the agent session timeline exceeds 2^64 ms (session {session}); use smaller latencies")]
pub struct TimelineOverflow {
    /// The session being built.
    pub session: u64,
}

/// First 16 hex digits of the SHA-256 of `text`.
pub fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(&digest[..8])
}

fn draw(rng: &mut PyRandom, r: IntRange) -> u64 {
    rng.randint(r.min, r.max)
}

/// Yields `(timestamp, slot)` in increasing timestamp order while generating sessions lazily.
#[derive(Debug)]
pub struct Timeline<'c> {
    cfg: &'c AgentConfig,
    seed: i128,
    rng: PyRandom,
    slots: BTreeMap<u64, Slot>,
    /// Index and start of the next session to build, when one is left.
    next: Option<(u64, u64)>,
    ready: VecDeque<(u64, Slot)>,
}

impl<'c> Timeline<'c> {
    /// A timeline for `cfg` with `seed` (ids hash its decimal form; the RNG is seeded with its magnitude).
    pub fn new(cfg: &'c AgentConfig, seed: i128) -> Self {
        let rng = PyRandom::new(seed.unsigned_abs() as u64);
        Self {
            cfg,
            seed,
            rng,
            slots: BTreeMap::new(),
            next: (cfg.num_sessions > 0).then_some((0, 0)),
            ready: VecDeque::new(),
        }
    }

    /// Sessions built so far.
    pub fn sessions_built(&self) -> u64 {
        match self.next {
            Some((s, _)) => s,
            None => self.cfg.num_sessions,
        }
    }

    fn slot(&mut self, ts: u64) -> &mut Slot {
        self.slots.entry(ts).or_default()
    }

    /// Builds session `s` starting at `start` with the reference's draw order, then draws the next start.
    fn build_session(&mut self, s: u64, start: u64) -> Result<(), TimelineOverflow> {
        let cfg = self.cfg;
        let seed = self.seed;
        let overflow = TimelineOverflow { session: s };
        let add = |a: u64, b: u64| a.checked_add(b).ok_or(overflow.clone());
        let ids = Arc::new(SessionIds {
            index: s,
            session_id: format!("session_{}", short_hash(&format!("{seed}:session:{s}"))),
            task_id: format!("task_{}", short_hash(&format!("{seed}:task:{s}"))),
            state_ref: format!("state_{}", short_hash(&format!("{seed}:state:{s}"))),
        });
        let turns = draw(&mut self.rng, cfg.turns_per_session);
        let mut turn_start = start;
        let mut prev: Option<String> = None;
        for turn in 0..turns {
            let node = |label: &str| {
                format!(
                    "node_{}",
                    short_hash(&format!("{seed}:node:{s}:{turn}:{label}"))
                )
            };
            // Bounded by config validation (MAX_PROMPT_TOKENS).
            let plan_tokens = cfg.initial_prompt_tokens + turn * cfg.context_growth_tokens;
            let plan_lat = draw(&mut self.rng, cfg.model_latency_ms);
            let plan = node("plan");
            self.slot(turn_start).requests.push(ModelCall {
                session: ids.clone(),
                node_id: plan.clone(),
                parent_ids: prev.take().into_iter().collect(),
                turn,
                phase: Phase::Plan,
                prompt_tokens: plan_tokens,
                expected_latency_ms: plan_lat,
                context_delta_tokens: if turn == 0 {
                    cfg.initial_prompt_tokens
                } else {
                    cfg.context_growth_tokens
                },
            });
            let tool_start = add(turn_start, plan_lat)?;
            let mut join_ts = tool_start;
            let mut join_parents = Vec::new();
            let k = draw(&mut self.rng, cfg.parallel_tools);
            for branch in 0..k {
                let mut parent = plan.clone();
                let mut attempt = 0u64;
                let mut a_start = tool_start;
                loop {
                    let id = node(&format!("tool-{branch}-{attempt}"));
                    let lat = draw(&mut self.rng, cfg.tool_latency_ms);
                    // random() is always drawn, even when no retry is left.
                    let failed =
                        self.rng.random() < cfg.retry_probability && attempt < cfg.max_tool_retries;
                    self.slot(a_start).events.push(Event {
                        session: ids.clone(),
                        node_id: id.clone(),
                        parent_ids: vec![parent],
                        turn,
                        kind: EventKind::Tool {
                            branch,
                            attempt,
                            failed,
                        },
                        duration_ms: lat,
                        context_delta_tokens: if failed { 0 } else { cfg.tool_result_tokens },
                    });
                    let end = add(a_start, lat)?;
                    join_ts = join_ts.max(end);
                    if !failed {
                        join_parents.push(id);
                        break;
                    }
                    parent = id;
                    attempt += 1;
                    a_start = end;
                }
            }
            let join = node("join");
            self.slot(join_ts).events.push(Event {
                session: ids.clone(),
                node_id: join.clone(),
                parent_ids: join_parents,
                turn,
                kind: EventKind::Join,
                duration_ms: 0,
                context_delta_tokens: 0,
            });
            let fol_lat = draw(&mut self.rng, cfg.model_latency_ms);
            let followup = node("followup");
            self.slot(join_ts).requests.push(ModelCall {
                session: ids.clone(),
                node_id: followup.clone(),
                parent_ids: vec![join],
                turn,
                phase: Phase::Followup,
                prompt_tokens: plan_tokens + k * cfg.tool_result_tokens,
                expected_latency_ms: fol_lat,
                context_delta_tokens: 0,
            });
            prev = Some(followup.clone());
            if turn + 1 < turns {
                let w = draw(&mut self.rng, cfg.think_time_ms);
                let w_start = add(join_ts, fol_lat)?;
                let wait = node("wait");
                self.slot(w_start).events.push(Event {
                    session: ids.clone(),
                    node_id: wait.clone(),
                    parent_ids: vec![followup],
                    turn,
                    kind: EventKind::Wait,
                    duration_ms: w,
                    context_delta_tokens: 0,
                });
                turn_start = add(w_start, w)?;
                prev = Some(wait);
            }
        }
        // The next session's start is the next draw; everything before it is final.
        self.next = if s + 1 < cfg.num_sessions {
            let gap = round_half_even(self.rng.expovariate(cfg.session_arrival_rate_rps) * 1000.0);
            // A gap beyond 2^64 ms saturates and then overflows the addition below.
            let gap = if gap >= 1.0 { gap as u64 } else { 1 };
            Some((s + 1, add(start, gap)?))
        } else {
            None
        };
        let bound = self.next.map(|(_, t)| t);
        while let Some(entry) = self.slots.first_entry() {
            if bound.is_some_and(|b| *entry.key() >= b) {
                break;
            }
            let (ts, slot) = entry.remove_entry();
            self.ready.push_back((ts, slot));
        }
        Ok(())
    }
}

impl Iterator for Timeline<'_> {
    type Item = Result<(u64, Slot), TimelineOverflow>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some(Ok(item));
            }
            let (s, start) = self.next?;
            if let Err(e) = self.build_session(s, start) {
                self.next = None;
                self.slots.clear();
                return Some(Err(e));
            }
        }
    }
}

/// The start times of the sessions (draws the whole timeline; for tests and reports).
pub fn session_starts(cfg: &AgentConfig, seed: i128) -> Result<Vec<u64>, TimelineOverflow> {
    let mut t = Timeline::new(cfg, seed);
    let mut starts = Vec::new();
    while let Some((s, start)) = t.next {
        debug_assert_eq!(s as usize, starts.len());
        starts.push(start);
        t.build_session(s, start)?;
        t.ready.clear();
    }
    Ok(starts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_config() -> AgentConfig {
        AgentConfig {
            num_sessions: 2,
            session_arrival_rate_rps: 2.0,
            turns_per_session: IntRange::new(2, 2),
            parallel_tools: IntRange::new(2, 2),
            tool_latency_ms: IntRange::new(10, 20),
            model_latency_ms: IntRange::new(5, 10),
            think_time_ms: IntRange::new(1, 3),
            retry_probability: 0.0,
            max_tool_retries: 1,
            initial_prompt_tokens: 100,
            context_growth_tokens: 20,
            tool_result_tokens: 10,
            output_tokens: 16,
            seed: Some(7),
        }
    }

    #[test]
    fn golden_test_config_timestamps() {
        // Reference §4.7 golden vector (test config, seed 7).
        let cfg = test_config();
        let slots: Vec<(u64, Slot)> = Timeline::new(&cfg, 7).map(Result::unwrap).collect();
        let ts: Vec<u64> = slots.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            ts,
            [0, 6, 26, 35, 36, 45, 61, 400, 409, 428, 437, 440, 448, 461]
        );
        let first = &slots[0].1.requests[0];
        assert_eq!(first.session.session_id, "session_f2c1c82b66d207fd");
        assert_eq!(first.node_id, "node_9b5f4304e8a7c333");
        assert_eq!((first.prompt_tokens, first.expected_latency_ms), (100, 6));
        let tools: Vec<u64> = slots[1].1.events.iter().map(|e| e.duration_ms).collect();
        assert_eq!(tools, [20, 18]);
        assert_eq!(slots[2].1.requests[0].prompt_tokens, 120);
        assert_eq!(slots[2].1.events[0].node_type(), "join");
        assert_eq!(slots[3].1.events[0].duration_ms, 1);
        assert_eq!(slots[4].1.requests[0].prompt_tokens, 120);
        let tools: Vec<u64> = slots[5].1.events.iter().map(|e| e.duration_ms).collect();
        assert_eq!(tools, [10, 16]);
        assert_eq!(slots[6].1.requests[0].prompt_tokens, 140);
        assert_eq!(
            slots[7].1.requests[0].session.session_id,
            "session_274bf356ab7f7cad"
        );
        assert_eq!(session_starts(&cfg, 7).unwrap(), [0, 400]);
    }

    #[test]
    fn retries_chain_and_end_in_success() {
        // Reference test: 1 session, 1 turn, 1 tool, retry_probability 1, max_tool_retries 2.
        let cfg = AgentConfig {
            num_sessions: 1,
            turns_per_session: IntRange::new(1, 1),
            parallel_tools: IntRange::new(1, 1),
            retry_probability: 1.0,
            max_tool_retries: 2,
            ..test_config()
        };
        let events: Vec<Event> = Timeline::new(&cfg, 7)
            .map(Result::unwrap)
            .flat_map(|(_, s)| s.events)
            .collect();
        let kinds: Vec<(&str, bool)> = events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::Tool { failed, .. } => Some((e.node_type(), failed)),
                _ => None,
            })
            .collect();
        assert_eq!(kinds, [("tool", true), ("retry", true), ("retry", false)]);
        assert_eq!(events[1].parent_ids, [events[0].node_id.clone()]);
        let join = events.iter().find(|e| e.kind == EventKind::Join).unwrap();
        assert_eq!(join.parent_ids, [events[2].node_id.clone()]);
    }

    #[test]
    fn huge_latencies_overflow_cleanly() {
        let cfg = AgentConfig {
            num_sessions: 3,
            model_latency_ms: IntRange::new(u64::MAX / 4, u64::MAX / 4),
            tool_latency_ms: IntRange::new(u64::MAX / 4, u64::MAX / 4),
            ..test_config()
        };
        let r: Result<Vec<_>, _> = Timeline::new(&cfg, 7).collect();
        assert_eq!(r.unwrap_err(), TimelineOverflow { session: 0 });
    }
}

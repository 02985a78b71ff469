//! The replay plan: every request of a workload file with its scheduled time, session and turn, read with
//! the workload reader of [`crate::domain::utility::read`] (JSONL or JSON, legacy keys, bare NaN).

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::domain::utility::read::EntryReader;

/// One request to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// 0-based position of the request in the file (entries in file order, requests in entry order).
    pub index: u64,
    /// The entry's timestamp, ms (before `--time-scale`).
    pub timestamp_ms: u64,
    /// When to send it, µs from the start of the replay (after `--time-scale`).
    pub due_us: u64,
    /// The prompt (this turn only for sessions).
    pub prompt: String,
    /// `prompt_length` of the workload, when present.
    pub prompt_length: Option<u64>,
    /// `output_length` of the workload (`max_tokens`), when present and a number.
    pub output_length: Option<u64>,
    /// The session id as written (an integer or a string), when present.
    pub session_id: Option<Value>,
    /// 0-based turn within the session (0 without a session).
    pub turn: u32,
    /// Turns of this session in the plan (1 without a session).
    pub turns: u32,
}

/// Which share of the workload to replay: `index` of `count` (`--shard i/N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based share index.
    pub index: u64,
    /// Number of shares (≥ 1).
    pub count: u64,
}

impl Default for Shard {
    fn default() -> Self {
        Self { index: 0, count: 1 }
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("expected i/N (e.g. 0/4), got '{s}'"))?;
        let index: u64 = i
            .trim()
            .parse()
            .map_err(|_| format!("bad shard index '{i}'"))?;
        let count: u64 = n
            .trim()
            .parse()
            .map_err(|_| format!("bad shard count '{n}'"))?;
        if count == 0 || index >= count {
            return Err(format!("shard {index}/{count}: need 0 <= i < N"));
        }
        Ok(Self { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Whether a request belongs to this share: whole sessions by a hash of the session id (its JSON text),
    /// sessionless requests by file index.
    pub fn owns(&self, index: u64, session_id: Option<&Value>) -> bool {
        if self.count == 1 {
            return true;
        }
        let key = match session_id {
            Some(id) => {
                let digest = Sha256::digest(id.to_string().as_bytes());
                u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
            }
            None => index,
        };
        key % self.count == self.index
    }
}

/// What to take from the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanOptions {
    /// Factor applied to every timestamp (0.5 = twice as fast).
    pub time_scale: f64,
    /// Keep only requests due before this many ms of replay time (after scaling).
    pub duration_ms: Option<u64>,
    /// The share to keep.
    pub shard: Shard,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            time_scale: 1.0,
            duration_ms: None,
            shard: Shard::default(),
        }
    }
}

fn number(v: Option<&Value>) -> Option<u64> {
    let v = v?;
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f.round() as u64)
    })
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Builds the plan from the entries of one workload file, sorted by due time (stable: file order within a
/// millisecond). Turns are numbered per session in that order.
pub fn plan_file(path: &Path, opts: &PlanOptions) -> anyhow::Result<Vec<Planned>> {
    let name = path.display().to_string();
    let reader = EntryReader::open(&name, path)?;
    plan_entries(reader, opts)
}

/// [`plan_file`] over any entry iterator.
pub fn plan_entries<I, E>(entries: I, opts: &PlanOptions) -> anyhow::Result<Vec<Planned>>
where
    I: IntoIterator<Item = Result<crate::domain::utility::read::RawEntry, E>>,
    E: std::error::Error + Send + Sync + 'static,
{
    anyhow::ensure!(
        opts.time_scale.is_finite() && opts.time_scale > 0.0,
        "--time-scale must be a number > 0"
    );
    let mut out = Vec::new();
    let mut index = 0u64;
    for entry in entries {
        let entry = entry?;
        let due_us = (entry.timestamp as f64 * opts.time_scale * 1000.0).round() as u64;
        for r in entry.requests() {
            let i = index;
            index += 1;
            let session_id = r.get("session_id").filter(|v| !v.is_null()).cloned();
            if !opts.shard.owns(i, session_id.as_ref()) {
                continue;
            }
            if opts.duration_ms.is_some_and(|d| due_us >= d * 1000) {
                continue;
            }
            out.push(Planned {
                index: i,
                timestamp_ms: entry.timestamp,
                due_us,
                prompt: text(r.get("prompt").or_else(|| r.get("Prompt"))),
                prompt_length: number(r.get("prompt_length").or_else(|| r.get("Prompt Length"))),
                output_length: number(r.get("output_length").or_else(|| r.get("Output Length"))),
                session_id,
                turn: 0,
                turns: 1,
            });
        }
    }
    out.sort_by_key(|p| p.due_us);
    let mut turns: HashMap<String, u32> = HashMap::new();
    for p in &mut out {
        if let Some(id) = &p.session_id {
            let n = turns.entry(id.to_string()).or_default();
            p.turn = *n;
            *n += 1;
        }
    }
    for p in &mut out {
        if let Some(id) = &p.session_id {
            p.turns = turns[&id.to_string()];
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::utility::read::read_all;

    const W: &[u8] = b"{\"timestamp\": 0, \"requests\": [{\"prompt\": \"a\", \"prompt_length\": 1, \"output_length\": 4, \"session_id\": 1}, {\"prompt\": \"x\", \"Prompt Length\": 2, \"Output Length\": NaN}]}\n{\"timestamp\": 10, \"requests\": [{\"prompt\": \"b\", \"output_length\": 3, \"session_id\": 1}, {\"prompt\": \"c\", \"session_id\": \"1\"}]}\n";

    #[test]
    fn sessions_turns_legacy_keys_and_scale() {
        let opts = PlanOptions {
            time_scale: 0.5,
            ..PlanOptions::default()
        };
        let p = plan_entries(
            read_all("w.jsonl", W)
                .unwrap()
                .into_iter()
                .map(Ok::<_, crate::domain::files::InputError>),
            &opts,
        )
        .unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!((p[0].turn, p[0].turns, p[0].output_length), (0, 2, Some(4)));
        assert_eq!(
            (
                p[1].prompt_length,
                p[1].output_length,
                p[1].session_id.clone()
            ),
            (Some(2), None, None)
        );
        assert_eq!((p[2].turn, p[2].due_us), (1, 5000));
        assert_eq!((p[3].turn, p[3].turns), (0, 1), "\"1\" is not 1");
    }

    #[test]
    fn shards_partition_and_keep_sessions_whole() {
        let mut text = Vec::new();
        for i in 0..200u64 {
            let s = if i % 3 == 0 {
                "null".to_string()
            } else {
                (i % 17).to_string()
            };
            text.extend_from_slice(format!("{{\"timestamp\": {i}, \"requests\": [{{\"prompt\": \"p\", \"session_id\": {s}}}]}}\n").as_bytes());
        }
        let entries = read_all("w.jsonl", &text).unwrap();
        let all = |shard| {
            let opts = PlanOptions {
                shard,
                ..PlanOptions::default()
            };
            plan_entries(
                entries
                    .clone()
                    .into_iter()
                    .map(Ok::<_, crate::domain::files::InputError>),
                &opts,
            )
            .unwrap()
        };
        let whole = all(Shard::default());
        let parts: Vec<_> = (0..3).map(|i| all(Shard { index: i, count: 3 })).collect();
        assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), whole.len());
        for p in &parts {
            assert!(!p.is_empty());
            for r in p {
                let w = whole.iter().find(|w| w.index == r.index).unwrap();
                assert_eq!((w.turn, w.turns), (r.turn, r.turns), "sessions stay whole");
            }
        }
        assert!("3/3".parse::<Shard>().is_err());
        assert_eq!(
            "1/4".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 4 }
        );
    }
}

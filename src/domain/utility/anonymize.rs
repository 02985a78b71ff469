//! `trace anonymize`: a workload with real prompts becomes a Mooncake-style trace, one JSON line per request:
//! `{"timestamp", "input_length", "output_length", "hash_ids"}`. Nothing of the text is written.
//!
//! Each prompt is encoded and cut into blocks of `block_size` tokens (the last one may be shorter). Each
//! block is hashed with a keyed SHA-256 over the key, the previous block's hash and the block's token ids, so a
//! block's hash stands for the whole prefix up to it, as in Mooncake. Hashes become small integers in the
//! order they first appear. The key is 32 random bytes per run unless one is given, and it is never written. An
//! id therefore carries only "this prefix was seen before": it cannot be matched against hashes of guessed
//! texts. Requests that share a token prefix share a prefix of `hash_ids`, which is what a replay or a
//! prefix-cache study needs. `input_length` is the prompt's token count, and `output_length` the request's
//! (0 when it has none).

use std::collections::HashMap;
use std::io::{BufRead, Write};

use sha2::{Digest, Sha256};

use super::read::EntryReader;
use crate::domain::files::InputError;
use crate::domain::tokenizer::{Cancel, TokenCounter, TokenizerError};

/// Options of [`anonymize`].
#[derive(Debug, Clone)]
pub struct AnonymizeOptions {
    /// Tokens per block (Mooncake: 512).
    pub block_size: u32,
    /// The hash key.
    pub key: [u8; 32],
}

/// What [`anonymize`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AnonymizeReport {
    /// Requests written (lines).
    pub requests: u64,
    /// Distinct blocks (the largest id + 1).
    pub distinct_blocks: u64,
    /// Blocks written in all (sum of the `hash_ids` lengths).
    pub blocks: u64,
    /// Prompt tokens in all.
    pub prompt_tokens: u64,
}

/// Why a workload could not be anonymized.
#[derive(Debug, thiserror::Error)]
pub enum AnonymizeError {
    /// The workload is malformed: file, line, field and why.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Tokenizing a prompt failed.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// Writing failed.
    #[error("writing the trace: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads the workload `src` (JSONL or JSON array, as written by this tool or the reference) and writes its
/// requests as a Mooncake-style trace to `out`, in file order. `cancel` is polled per entry.
pub fn anonymize(
    name: &str,
    src: impl BufRead,
    tok: &TokenCounter,
    opts: &AnonymizeOptions,
    out: &mut dyn Write,
    cancel: Cancel<'_>,
) -> Result<AnonymizeReport, AnonymizeError> {
    let block = opts.block_size.max(1) as usize;
    let mut ids_of: HashMap<[u8; 16], u64> = HashMap::new();
    let mut report = AnonymizeReport::default();
    let mut line = Vec::with_capacity(256);
    for entry in EntryReader::new(name, src) {
        let entry = entry?;
        if cancel() {
            return Err(TokenizerError::Cancelled.into());
        }
        for (k, r) in entry.requests().iter().enumerate() {
            let field = |f: &str| format!("requests[{k}].{f}");
            let prompt = r.get("prompt").and_then(|p| p.as_str()).ok_or_else(|| {
                InputError::at(
                    name,
                    entry.line,
                    Some(&field("prompt")),
                    "must be a string (anonymize reads workloads with their prompts)",
                )
            })?;
            let output = match r.get("output_length") {
                None | Some(serde_json::Value::Null) => 0,
                Some(v) => v
                    .as_f64()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| {
                        InputError::at(
                            name,
                            entry.line,
                            Some(&field("output_length")),
                            "must be a non-negative number or null",
                        )
                    })? as u64,
            };
            let tokens = tok.encode_cancellable(prompt, cancel)?;
            let mut prev = [0u8; 16];
            let mut hash_ids = Vec::with_capacity(tokens.len().div_ceil(block));
            for chunk in tokens.chunks(block) {
                let mut h = Sha256::new();
                h.update(opts.key);
                h.update(prev);
                for t in chunk {
                    h.update(t.to_le_bytes());
                }
                prev = h.finalize()[..16].try_into().expect("16 bytes");
                let next = ids_of.len() as u64;
                hash_ids.push(*ids_of.entry(prev).or_insert(next));
            }
            line.clear();
            serde_json::to_writer(
                &mut line,
                &serde_json::json!({
                    "timestamp": entry.timestamp,
                    "input_length": tokens.len(),
                    "output_length": output,
                    "hash_ids": hash_ids,
                }),
            )
            .map_err(std::io::Error::from)?;
            line.push(b'\n');
            out.write_all(&line)?;
            report.requests += 1;
            report.blocks += hash_ids.len() as u64;
            report.prompt_tokens += tokens.len() as u64;
        }
    }
    report.distinct_blocks = ids_of.len() as u64;
    out.flush()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tokenizer::NEVER;

    fn run(workload: &str, key: u8, block: u32) -> (Vec<serde_json::Value>, AnonymizeReport) {
        let tok = crate::domain::trace::tests::tok();
        let mut out = Vec::new();
        let opts = AnonymizeOptions {
            block_size: block,
            key: [key; 32],
        };
        let r = anonymize("w.jsonl", workload.as_bytes(), tok, &opts, &mut out, NEVER).unwrap();
        let lines = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (lines, r)
    }

    #[test]
    fn shared_prefixes_share_ids_and_no_text_is_written() {
        let tok = crate::domain::trace::tests::tok();
        let base = "The quick brown fox jumps over the lazy dog. ".repeat(20);
        let a = format!("{base}First question about foxes?");
        let b = format!("{base}A different ending entirely, and longer than the first one.");
        let w = format!(
            "{}\n{}\n",
            serde_json::json!({"timestamp": 5, "requests": [{"prompt": a, "prompt_length": 1, "output_length": 7}]}),
            serde_json::json!({"timestamp": 9, "requests": [
                {"prompt": b, "output_length": null}, {"prompt": a, "output_length": 3}]}),
        );
        let (lines, r) = run(&w, 1, 16);
        assert_eq!(lines.len(), 3);
        let ids = |i: usize| -> Vec<u64> {
            lines[i]["hash_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect()
        };
        let shared = tok.encode(&base, false).unwrap().len() / 16;
        assert!(shared >= 10);
        assert_eq!(ids(0)[..shared], ids(1)[..shared], "a shared prefix");
        assert_ne!(ids(0).last(), ids(1).last());
        assert_eq!(ids(0), ids(2), "the same prompt, the same ids");
        assert_eq!(ids(0)[0], 0, "ids count up from 0 in order of appearance");
        for (i, p) in [(0, &a), (1, &b), (2, &a)] {
            let n = tok.encode(p, false).unwrap().len() as u64;
            assert_eq!(lines[i]["input_length"], n);
            assert_eq!(ids(i).len() as u64, n.div_ceil(16));
        }
        assert_eq!(
            [
                &lines[0]["timestamp"],
                &lines[1]["timestamp"],
                &lines[2]["timestamp"]
            ],
            [5, 9, 9]
        );
        assert_eq!(
            [
                &lines[0]["output_length"],
                &lines[1]["output_length"],
                &lines[2]["output_length"]
            ],
            [7, 0, 3]
        );
        let text = lines.iter().map(|l| l.to_string()).collect::<String>();
        assert!(!text.contains("fox") && !text.contains("prompt"));
        assert_eq!(r.requests, 3);
        assert_eq!(
            r.distinct_blocks,
            *ids(1).iter().chain(&ids(0)).max().unwrap() + 1
        );
        // Another key gives the same structure (the ids are orders of appearance, the key never shows).
        assert_eq!(run(&w, 2, 16).0, lines);
    }

    #[test]
    fn a_workload_without_prompts_is_refused_with_its_line_and_field() {
        let tok = crate::domain::trace::tests::tok();
        let opts = AnonymizeOptions {
            block_size: 512,
            key: [0; 32],
        };
        let w = "{\"timestamp\": 0, \"requests\": [{\"prompt\": \"hi\"}]}\n{\"timestamp\": 1, \"requests\": [{\"prompt_length\": 3}]}\n";
        let e = anonymize("w.jsonl", w.as_bytes(), tok, &opts, &mut Vec::new(), NEVER)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("w.jsonl") && e.contains('2') && e.contains("requests[0].prompt"),
            "{e}"
        );
    }
}

//! Converters into prompt collections: ShareGPT, AIBrix client output and OpenAI-style chat JSONL.
//!
//! Inputs are streamed: a JSON array is split into its elements by a small scanner that tracks strings,
//! escapes and nesting depth, so a 650 MB ShareGPT file is never held in memory; JSON Lines of the same
//! objects are read line by line. A file cut off in the middle (a truncated download) is read up to its last
//! complete record, and the bytes of the incomplete one are reported.
//!
//! Conversations: system turns are skipped; roles `human|user` and `gpt|assistant|chatgpt` are recognised
//! (other roles are skipped and counted); consecutive user turns are joined by a blank line into one prompt,
//! and so are consecutive assistant turns into one completion; assistant turns before the first user turn are
//! dropped; empty turns are skipped; conversations without a user turn are dropped.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

mod records;
mod turns;

use records::Records;
use turns::{Conversation, client_record, openai_turns, sharegpt_turns};

use super::common::{DatasetToolError, OutId, plain_line, session_line};
use crate::domain::atomic;
use crate::domain::files::InputError;
use crate::domain::spec::SpecError;

/// The input format.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SourceFormat {
    /// `[{"id", "conversations": [{"from", "value"}]}]` (or JSON Lines of such objects).
    Sharegpt,
    /// AIBrix client output: one record per request with `input` messages, `output` and `status`.
    #[serde(alias = "trace", alias = "aibrix_client")]
    AibrixClient,
    /// `{"messages": [{"role", "content"}]}` per line.
    #[serde(alias = "openai_chat")]
    OpenaiChat,
}

impl SourceFormat {
    /// The name used on the command line and in the API (`sharegpt`, `aibrix-client`, `openai-chat`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sharegpt => "sharegpt",
            Self::AibrixClient => "aibrix-client",
            Self::OpenaiChat => "openai-chat",
        }
    }

    /// Parses a name (also `trace`, the reference's name for the client converter).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sharegpt" => Some(Self::Sharegpt),
            "aibrix-client" | "aibrix_client" | "trace" => Some(Self::AibrixClient),
            "openai-chat" | "openai_chat" => Some(Self::OpenaiChat),
            _ => None,
        }
    }
}

/// The output schema.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OutputSchema {
    /// `{"prompt", "completion"?}`: the first user/assistant pair of each conversation.
    Plain,
    /// `{"session_id", "prompts", "completions"?}`: every user turn with the assistant turn that follows it.
    Sessioned,
}

/// What to convert.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConvertSpec {
    /// The input format.
    pub from: SourceFormat,
    /// The output schema (default: sessioned for ShareGPT and OpenAI chat, plain for the AIBrix client).
    #[serde(default)]
    pub format: Option<OutputSchema>,
}

impl ConvertSpec {
    /// Checks the combination; the AIBrix client's records are single requests, so only `plain` is possible.
    pub fn validate(self) -> Result<Self, SpecError> {
        if self.from == SourceFormat::AibrixClient && self.format == Some(OutputSchema::Sessioned) {
            return Err(SpecError {
                field: "format".into(),
                message: "must be plain for aibrix-client (one record per request)".into(),
            });
        }
        Ok(self)
    }

    /// The output schema in effect.
    pub fn schema(&self) -> OutputSchema {
        self.format.unwrap_or(match self.from {
            SourceFormat::AibrixClient => OutputSchema::Plain,
            _ => OutputSchema::Sessioned,
        })
    }
}

/// What a conversion did.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConvertReport {
    /// The input format.
    pub from: SourceFormat,
    /// The output schema.
    pub format: OutputSchema,
    /// Complete records read.
    pub records: u64,
    /// Lines written.
    pub written: u64,
    /// Prompts written.
    pub prompts: u64,
    /// Completions written.
    pub completions: u64,
    /// Records and turns left out, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// The input ended inside a record (or before the array's closing bracket).
    pub truncated: bool,
    /// Bytes of the incomplete last record that were not read.
    pub skipped_bytes: u64,
}

/// Converts a file into a collection at `output` (written through a temporary file and a rename).
pub fn convert_file(
    spec: &ConvertSpec,
    input: &Path,
    output: &Path,
) -> Result<ConvertReport, DatasetToolError> {
    convert_file_named(spec, input, &input.display().to_string(), output)
}

/// [`convert_file`] with the input called `name` in messages (the service gives the upload's name, never
/// the temporary file's server path).
pub fn convert_file_named(
    spec: &ConvertSpec,
    input: &Path,
    name: &str,
    output: &Path,
) -> Result<ConvertReport, DatasetToolError> {
    let name = name.to_string();
    let f = std::fs::File::open(input)
        .map_err(|e| InputError::file(&name, format!("cannot open: {e}")))?;
    let reader = std::io::BufReader::with_capacity(1 << 20, f);
    atomic::write_with(output, |w| convert(spec, reader, &name, w))
}

/// Converts `reader` (called `name` in messages) into JSONL written to `out`.
pub fn convert(
    spec: &ConvertSpec,
    reader: impl BufRead,
    name: &str,
    out: &mut dyn Write,
) -> Result<ConvertReport, DatasetToolError> {
    let schema = spec.schema();
    let mut report = ConvertReport {
        from: spec.from,
        format: schema,
        records: 0,
        written: 0,
        prompts: 0,
        completions: 0,
        skipped: BTreeMap::new(),
        truncated: false,
        skipped_bytes: 0,
    };
    let mut records = Records::new(reader, name);
    let mut buf = Vec::with_capacity(1 << 16);
    while let Some(rec) = records.next_record()? {
        let value: Value = match serde_json::from_slice(&records.elem) {
            Ok(v) => v,
            Err(e) if e.is_eof() && rec.last_unterminated => {
                report.truncated = true;
                report.skipped_bytes = records.elem.len() as u64;
                break;
            }
            Err(e) => {
                let line = rec.line + e.line() as u64 - 1;
                let col = if e.line() <= 1 {
                    rec.col + e.column() as u64 - 1
                } else {
                    e.column() as u64
                };
                return Err(InputError::at(
                    name,
                    line,
                    None,
                    format!("invalid JSON at column {col}: {e}"),
                )
                .into());
            }
        };
        let index = report.records;
        report.records += 1;
        let at = |field: &str, why: String| InputError::at(name, rec.line, Some(field), why);
        buf.clear();
        match spec.from {
            SourceFormat::Sharegpt | SourceFormat::OpenaiChat => {
                let (id, turns) = if spec.from == SourceFormat::Sharegpt {
                    sharegpt_turns(&value, &at)?
                } else {
                    openai_turns(&value, &at)?
                };
                let conv = Conversation::from_turns(turns, &mut report.skipped);
                if conv.prompts.is_empty() {
                    *report
                        .skipped
                        .entry("conversations without a user turn".into())
                        .or_default() += 1;
                    continue;
                }
                match schema {
                    OutputSchema::Plain => {
                        let c = conv.completions.first().map(String::as_str);
                        plain_line(&mut buf, &conv.prompts[0], c);
                        report.prompts += 1;
                        report.completions += u64::from(c.is_some());
                    }
                    OutputSchema::Sessioned => {
                        let id = match &id {
                            Some(Value::String(s)) => OutId::Str(s),
                            Some(Value::Number(n)) if n.is_u64() || n.is_i64() => OutId::Json(n),
                            _ => OutId::Int(index),
                        };
                        session_line(&mut buf, id, &conv.prompts, &conv.completions);
                        report.prompts += conv.prompts.len() as u64;
                        report.completions += conv.completions.len() as u64;
                    }
                }
            }
            SourceFormat::AibrixClient => {
                let Some((prompt, completion)) = client_record(&value, &at, &mut report.skipped)?
                else {
                    continue;
                };
                plain_line(&mut buf, &prompt, completion.as_deref());
                report.prompts += 1;
                report.completions += u64::from(completion.is_some());
            }
        }
        out.write_all(&buf)?;
        report.written += 1;
    }
    if records.truncated {
        report.truncated = true;
        report.skipped_bytes = records.skipped_bytes;
    }
    out.flush()?;
    if report.written == 0 {
        return Err(InputError::file(
            name,
            format!(
                "no usable record ({} read{}): the output would be an empty collection",
                report.records,
                if report.truncated {
                    ", input truncated"
                } else {
                    ""
                }
            ),
        )
        .into());
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::dataset::{Schema, parse_jsonl};

    const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/datasets");

    fn spec(from: SourceFormat, format: Option<OutputSchema>) -> ConvertSpec {
        ConvertSpec { from, format }.validate().unwrap()
    }

    fn run_bytes(
        s: &ConvertSpec,
        input: &[u8],
        cap: usize,
    ) -> Result<(Vec<u8>, ConvertReport), DatasetToolError> {
        let mut out = Vec::new();
        let r = convert(
            s,
            std::io::BufReader::with_capacity(cap, input),
            "in.json",
            &mut out,
        )?;
        Ok((out, r))
    }

    fn run_fixture(s: &ConvertSpec, file: &str) -> (Vec<u8>, ConvertReport) {
        let bytes = std::fs::read(format!("{FIX}/{file}")).unwrap();
        let (out, r) = run_bytes(s, &bytes, 1 << 16).unwrap();
        // Tiny read buffers split strings, escapes and UTF-8 across chunk boundaries: same result.
        for cap in [1, 3, 7] {
            assert_eq!(run_bytes(s, &bytes, cap).unwrap().0, out, "buffer {cap}");
        }
        (out, r)
    }

    #[test]
    fn sharegpt_sessioned_keeps_completions() {
        let s = spec(SourceFormat::Sharegpt, None);
        let (out, r) = run_fixture(&s, "sharegpt.json");
        let ds = parse_jsonl(&out[..], "o").unwrap();
        assert_eq!(ds.schema, Schema::Sessioned);
        assert_eq!(ds.sessions.len(), 3);
        assert_eq!(ds.sessions[0].id.to_string(), "conv-1");
        assert_eq!(serde_json::to_string(&ds.sessions[2].id).unwrap(), "44");
        assert_eq!(
            ds.prompts,
            vec![
                "What is a vector clock?",
                "And a {Lamport} clock? Use \"quotes\" and a \\ backslash ]}",
                "Écris un haïku sur le café ☕\n\nEn français, s'il te plaît.",
                "Merci !",
                "Summarise plate tectonics.",
            ]
        );
        assert_eq!(ds.completions.get(1), Some("A single counter."));
        assert!(ds.completions.get(2).unwrap().starts_with("Matin gris"));
        assert_eq!(ds.completions.get(3), None);
        assert_eq!(
            (r.records, r.written, r.prompts, r.completions),
            (4, 3, 5, 3)
        );
        assert!(!r.truncated);
        assert_eq!(r.skipped["system turns"], 1);
        assert_eq!(r.skipped["conversations without a user turn"], 1);
        assert_eq!(r.skipped["assistant turns before the first user turn"], 1);
        assert_eq!(r.skipped["turns with another role"], 1);
        assert_eq!(r.skipped["empty turns"], 1);
        // UTF-8, not escaped.
        assert!(String::from_utf8(out).unwrap().contains("café ☕"));
        // JSON Lines of the same objects give the same collection.
        let (jl, _) = run_fixture(&s, "sharegpt.jsonl");
        assert_eq!(parse_jsonl(&jl[..], "o").unwrap().prompts, ds.prompts);
    }

    #[test]
    fn sharegpt_plain_first_pairs() {
        let (out, r) = run_fixture(
            &spec(SourceFormat::Sharegpt, Some(OutputSchema::Plain)),
            "sharegpt.json",
        );
        let ds = parse_jsonl(&out[..], "o").unwrap();
        assert_eq!(ds.schema, Schema::Plain);
        assert_eq!(ds.len(), 3);
        assert_eq!(ds.prompts[0], "What is a vector clock?");
        assert!(ds.completions.get(0).unwrap().starts_with("A vector clock"));
        assert_eq!(ds.completions.get(2), None);
        assert_eq!((r.prompts, r.completions), (3, 2));
    }

    #[test]
    fn truncated_sharegpt_reads_complete_conversations() {
        let (out, r) = run_fixture(
            &spec(SourceFormat::Sharegpt, None),
            "sharegpt_truncated.json",
        );
        assert!(r.truncated);
        assert_eq!(r.skipped_bytes, 40);
        assert_eq!((r.records, r.written), (3, 2));
        let ds = parse_jsonl(&out[..], "o").unwrap();
        assert_eq!(ds.sessions.len(), 2);
        // Cut between elements (no closing bracket): truncated, nothing skipped.
        let (_, r) = run_bytes(
            &spec(SourceFormat::Sharegpt, None),
            br#"[{"id": "a", "conversations": [{"from": "human", "value": "x"}]},"#,
            64,
        )
        .unwrap();
        assert!(r.truncated);
        assert_eq!(r.skipped_bytes, 0);
        // A cut-off last JSON line.
        let (_, r) = run_bytes(
            &spec(SourceFormat::Sharegpt, None),
            b"{\"id\": \"a\", \"conversations\": [{\"from\": \"human\", \"value\": \"x\"}]}\n{\"id\": \"b\", \"conv",
            64,
        )
        .unwrap();
        assert!(r.truncated);
        assert_eq!((r.written, r.skipped_bytes), (1, 17));
    }

    #[test]
    fn aibrix_client_uses_the_last_user_message_and_skips_errors() {
        let (out, r) = run_fixture(
            &spec(SourceFormat::AibrixClient, None),
            "aibrix_client.jsonl",
        );
        let ds = parse_jsonl(&out[..], "o").unwrap();
        assert_eq!(
            ds.prompts,
            vec![
                "Explain load balancing.",
                "Second turn, the one sent.",
                "No output recorded."
            ]
        );
        assert_eq!(ds.completions.get(1), Some("Second answer."));
        assert_eq!(ds.completions.get(2), None);
        assert_eq!(r.skipped["error records"], 1);
        assert_eq!(r.format, OutputSchema::Plain);
        assert_eq!(
            ConvertSpec {
                from: SourceFormat::AibrixClient,
                format: Some(OutputSchema::Sessioned)
            }
            .validate()
            .unwrap_err()
            .to_string(),
            "format must be plain for aibrix-client (one record per request)"
        );
    }

    #[test]
    fn openai_chat_to_sessions() {
        let (out, r) = run_fixture(&spec(SourceFormat::OpenaiChat, None), "openai_chat.jsonl");
        let ds = parse_jsonl(&out[..], "o").unwrap();
        assert_eq!(ds.sessions.len(), 2);
        assert_eq!(
            ds.prompts,
            vec!["Name a prime.", "Another?", "Describe this\nin one line."]
        );
        assert_eq!(ds.completions.get(1), Some("11"));
        assert_eq!(r.skipped["conversations without a user turn"], 1);
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let s = spec(SourceFormat::Sharegpt, None);
        let e = |input: &[u8]| run_bytes(&s, input, 4).unwrap_err().to_string();
        assert_eq!(
            e(b"[\n {\"id\": 1, \"conversations\": []},\n {\"id\": 2,\n  \"conversations\": 5}\n]"),
            "in.json:3: column 'conversations': must be a list, got a number"
        );
        let msg = e(b"[\n  {\"id\": tru}\n]");
        assert!(
            msg.starts_with("in.json:2: invalid JSON at column"),
            "{msg}"
        );
        assert!(
            e(b"[1]")
                .starts_with("in.json:1: expected an object in the array, found '1' at column 2")
        );
        assert!(e(b"  x").contains("expected a JSON array of objects or JSON Lines"));
        assert!(e(b"").contains("the file is empty"));
        assert!(e(b"[]").contains("no usable record"));
        assert_eq!(
            e(b"{\"conversations\": [{\"from\": \"human\", \"value\": \"a\"}]}\n{\"conversations\": [{\"value\": \"b\"}]}\n"),
            "in.json:2: column 'conversations[0].from': missing"
        );
        let o = spec(SourceFormat::OpenaiChat, None);
        let err = run_bytes(
            &o,
            b"{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}\n{\"nope\": 1}\n",
            64,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("in.json:2: column 'messages': missing"),
            "{err}"
        );
    }

    #[test]
    fn convert_file_writes_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sub/out.jsonl");
        let r = convert_file(
            &spec(SourceFormat::Sharegpt, None),
            Path::new(&format!("{FIX}/sharegpt.json")),
            &out,
        )
        .unwrap();
        assert_eq!(r.written, 3);
        assert!(crate::domain::dataset::load_file(&out).is_ok());
        let bad = dir.path().join("bad.jsonl");
        assert!(
            convert_file(
                &spec(SourceFormat::Sharegpt, None),
                Path::new(&format!("{FIX}/openai_chat.jsonl")),
                &bad
            )
            .is_err()
        );
        assert!(!bad.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

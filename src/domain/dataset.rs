//! Prompt collections ("datasets"): JSONL files in the plain schema `{"prompt", "completion"?}` or the sessioned
//! schema `{"session_id", "prompts": [...], "completions"?: [...]}`.
//!
//! Lines are parsed on their own (while another thread hashes the chunk, when reading a file) and applied in
//! file order; every error names the file, the 1-based line and the field. Nothing is returned
//! for a file with an error (no partial result).

use std::collections::HashMap;
use std::io::BufRead;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::domain::bom::strip_bom;
use crate::domain::json::py_kind;

/// Which of the two record schemas a collection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Schema {
    /// One prompt per line.
    Plain,
    /// Sessions of ordered turns.
    Sessioned,
}

/// A session id keeps the JSON type it had in the input: an integer or a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum SessionId {
    /// An integer id (any JSON integer).
    Int(serde_json::Number),
    /// A string id.
    Str(String),
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionId::Int(n) => write!(f, "{n}"),
            SessionId::Str(s) => f.write_str(s),
        }
    }
}

/// One session of a sessioned collection: its turns are `first_turn .. first_turn + turns` in
/// [`Dataset::prompts`].
#[derive(Debug, Clone)]
pub struct Session {
    /// The id as given in the file.
    pub id: SessionId,
    /// Index of the first turn in the flat prompt list.
    pub first_turn: u32,
    /// Number of turns.
    pub turns: u32,
}

/// A parsed prompt collection.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Name used in messages (file path or dataset id).
    pub name: String,
    /// The schema of every record.
    pub schema: Schema,
    /// Every prompt (plain) or every turn (sessioned, grouped by session in order of first appearance).
    pub prompts: Vec<String>,
    /// The completion of each prompt, when given (one buffer for all of them; see [`Completions`]).
    pub completions: Completions,
    /// Sessions (empty for plain collections).
    pub sessions: Vec<Session>,
    /// Records skipped as the reference skips them (`"prompt": null`, an empty `prompts` list).
    pub skipped_records: u64,
    /// Number of non-blank records read.
    pub records: u64,
    /// SHA-256 of the raw bytes, hex.
    pub sha256: String,
    /// Size of the raw bytes.
    pub bytes: u64,
}

/// The completions of a collection, by prompt index, in one text buffer: only their token counts are used,
/// and a run that owns its collection frees them all at once after counting ([`Completions::release`]),
/// which one buffer gives back to the system where thousands of small strings between the prompts would
/// only leave holes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completions {
    text: String,
    /// Per prompt: the end of its completion in `text` and whether it has one.
    spans: Vec<(usize, bool)>,
    released: bool,
}

impl Completions {
    /// Appends the completion of the next prompt.
    pub fn push(&mut self, c: Option<&str>) {
        if let Some(c) = c {
            self.text.push_str(c);
        }
        self.spans.push((self.text.len(), c.is_some()));
    }

    /// Number of prompts covered.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when no prompt is covered.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The completion of prompt `i` (`None` without one, or once released).
    pub fn get(&self, i: usize) -> Option<&str> {
        let (end, some) = *self.spans.get(i)?;
        if !some || self.released {
            return None;
        }
        let start = if i == 0 { 0 } else { self.spans[i - 1].0 };
        Some(&self.text[start..end])
    }

    /// Every prompt's completion, in order.
    pub fn iter(&self) -> impl Iterator<Item = Option<&str>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Frees the texts (every [`Completions::get`] is `None` from now on).
    pub fn release(&mut self) {
        self.text = String::new();
        self.released = true;
    }
}

impl<S: AsRef<str>> FromIterator<Option<S>> for Completions {
    fn from_iter<I: IntoIterator<Item = Option<S>>>(iter: I) -> Self {
        let mut c = Completions::default();
        for x in iter {
            c.push(x.as_ref().map(AsRef::as_ref));
        }
        c
    }
}

impl Dataset {
    /// Number of prompts (plain) or turns (sessioned).
    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    /// True when there is nothing to sample.
    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }
}

/// Why a prompt collection was rejected.
#[derive(Debug, Error)]
pub enum DatasetError {
    /// A record (line) is wrong.
    #[error("{file}:{line}: {}{reason}", field.as_ref().map(|f| format!("field '{f}': ")).unwrap_or_default())]
    Record {
        /// The file or dataset name.
        file: String,
        /// 1-based line number.
        line: u64,
        /// The offending field, when there is one.
        field: Option<String>,
        /// Why.
        reason: String,
    },
    /// The file could not be read.
    #[error("{file}: {reason}")]
    Io {
        /// The file.
        file: String,
        /// The I/O error.
        reason: String,
    },
    /// No usable prompt in the file.
    #[error("{file}: no prompts: the collection is empty")]
    Empty {
        /// The file.
        file: String,
    },
}

impl DatasetError {
    /// The 1-based line of a record error.
    pub fn line(&self) -> Option<u64> {
        match self {
            DatasetError::Record { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// Reads and validates a whole collection from `reader`.
pub fn parse_jsonl(reader: impl BufRead, name: &str) -> Result<Dataset, DatasetError> {
    let mut parser = DatasetParser::new(name);
    parser.read_all(reader)?;
    parser.finish()
}

/// Reads a collection from a file path.
pub fn load_file(path: &std::path::Path) -> Result<Dataset, DatasetError> {
    let name = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|e| DatasetError::Io {
        file: name.clone(),
        reason: e.to_string(),
    })?;
    parse_jsonl(std::io::BufReader::with_capacity(1 << 20, f), &name)
}

/// A prompt and its optional completion.
type Turn = (String, Option<String>);

/// Incremental parser: feed lines, then `finish`. Used for files and for uploads.
#[derive(Debug)]
pub struct DatasetParser {
    name: String,
    hasher: Sha256,
    bytes: u64,
    line_no: u64,
    schema: Option<(Schema, u64)>,
    plain_prompts: Vec<String>,
    plain_completions: Completions,
    session_index: HashMap<SessionId, usize>,
    session_turns: Vec<(SessionId, Vec<Turn>)>,
    skipped: u64,
    records: u64,
}

impl DatasetParser {
    /// A parser for a collection called `name` in messages.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            hasher: Sha256::new(),
            bytes: 0,
            line_no: 0,
            schema: None,
            plain_prompts: Vec::new(),
            plain_completions: Completions::default(),
            session_index: HashMap::new(),
            session_turns: Vec::new(),
            skipped: 0,
            records: 0,
        }
    }

    /// Reads every line of `reader`, in chunks of about [`CHUNK`] bytes (see `push_lines`), applied in file
    /// order: the same result and the same first error as feeding the lines one by one.
    pub fn read_all(&mut self, reader: impl BufRead) -> Result<(), DatasetError> {
        self.read_chunked(reader, CHUNK)
    }

    fn read_chunked(&mut self, reader: impl BufRead, chunk: usize) -> Result<(), DatasetError> {
        let file = self.name.clone();
        let io = |e: std::io::Error| DatasetError::Io {
            file: file.clone(),
            reason: e.to_string(),
        };
        crate::domain::layout::for_each_line_chunk(reader, chunk, io, |region| {
            self.push_lines(region)
        })
    }

    /// Feeds complete lines (each with its newline, the last one maybe without): hashed on another thread
    /// while they are parsed on this one (parsing on several threads would spread the collection's strings
    /// over several allocator arenas, for little gain: the hash is a third of the time).
    fn push_lines(&mut self, region: &[u8]) -> Result<(), DatasetError> {
        self.bytes += region.len() as u64;
        let first = self.line_no + 1;
        let hasher = &mut self.hasher;
        let parsed: Vec<Result<Parsed, LineError>> = std::thread::scope(|s| {
            s.spawn(|| hasher.update(region));
            region
                .split_inclusive(|&b| b == b'\n')
                .enumerate()
                .map(|(i, line)| parse_line(first + i as u64, line))
                .collect()
        });
        for p in parsed {
            self.line_no += 1;
            self.apply(p)?;
        }
        Ok(())
    }

    fn err(&self, field: Option<&str>, reason: impl Into<String>) -> DatasetError {
        DatasetError::Record {
            file: self.name.clone(),
            line: self.line_no,
            field: field.map(str::to_string),
            reason: reason.into(),
        }
    }

    /// Feeds one raw line (with or without its newline).
    pub fn push_line(&mut self, raw: &[u8]) -> Result<(), DatasetError> {
        self.hasher.update(raw);
        self.bytes += raw.len() as u64;
        self.line_no += 1;
        let parsed = parse_line(self.line_no, raw);
        self.apply(parsed)
    }

    /// Applies one parsed line in file order: the schema check across lines, then the record.
    fn apply(&mut self, parsed: Result<Parsed, LineError>) -> Result<(), DatasetError> {
        let parsed = parsed.map_err(|(field, reason)| self.err(field.as_deref(), reason))?;
        let schema = match &parsed {
            Parsed::Blank => return Ok(()),
            Parsed::Plain(_) => Schema::Plain,
            Parsed::Sessioned(..) => Schema::Sessioned,
            Parsed::Bad(schema, _) => *schema,
        };
        self.records += 1;
        match self.schema {
            None => self.schema = Some((schema, self.line_no)),
            Some((first, first_line)) if first != schema => {
                return Err(self.err(
                    None,
                    format!(
                        "mixed schemas: this record is {} but line {first_line} is {} (a file must be all plain or all sessioned)",
                        schema_name(schema),
                        schema_name(first)
                    ),
                ));
            }
            _ => {}
        }
        match parsed {
            Parsed::Blank => {}
            Parsed::Bad(_, (field, reason)) => return Err(self.err(field.as_deref(), reason)),
            Parsed::Plain(None) | Parsed::Sessioned(_, None) => self.skipped += 1,
            Parsed::Plain(Some((prompt, completion))) => {
                self.plain_prompts.push(prompt);
                self.plain_completions.push(completion.as_deref());
            }
            Parsed::Sessioned(id, Some(turns)) => match self.session_index.get(&id) {
                Some(&idx) => self.session_turns[idx].1.extend(turns),
                None => {
                    self.session_index
                        .insert(id.clone(), self.session_turns.len());
                    self.session_turns.push((id, turns));
                }
            },
        }
        Ok(())
    }

    /// Finishes parsing: the collection, or `Empty` when it has no prompt.
    pub fn finish(self) -> Result<Dataset, DatasetError> {
        let sha256 = hex::encode(self.hasher.finalize());
        let schema = self.schema.map(|s| s.0).unwrap_or(Schema::Plain);
        let (prompts, completions, sessions) = match schema {
            Schema::Plain => (self.plain_prompts, self.plain_completions, Vec::new()),
            Schema::Sessioned => {
                let mut prompts = Vec::new();
                let mut completions = Completions::default();
                let mut sessions = Vec::with_capacity(self.session_turns.len());
                for (id, turns) in self.session_turns {
                    sessions.push(Session {
                        id,
                        first_turn: prompts.len() as u32,
                        turns: turns.len() as u32,
                    });
                    for (p, c) in turns {
                        prompts.push(p);
                        completions.push(c.as_deref());
                    }
                }
                (prompts, completions, sessions)
            }
        };
        if prompts.is_empty() {
            return Err(DatasetError::Empty { file: self.name });
        }
        Ok(Dataset {
            name: self.name,
            schema,
            prompts,
            completions,
            sessions,
            skipped_records: self.skipped,
            records: self.records,
            sha256,
            bytes: self.bytes,
        })
    }
}

/// Bytes read per parallel parsing step of [`DatasetParser::read_all`].
const CHUNK: usize = 4 << 20;

/// (field, reason) of a bad line; the parser adds the file and the line.
type LineError = (Option<String>, String);

/// One line, parsed on its own (before the checks that depend on other lines).
enum Parsed {
    /// Blank or whitespace only.
    Blank,
    /// A plain record: its prompt and completion (`None`: `"prompt": null`, skipped).
    Plain(Option<Turn>),
    /// A sessioned record: its id and turns (`None`: no prompts, skipped).
    Sessioned(SessionId, Option<Vec<Turn>>),
    /// A record of this schema with a bad field (reported after the schema check, as a sequential parse would).
    Bad(Schema, LineError),
}

/// Parses line `line_no` (1-based; a BOM is stripped from line 1).
fn parse_line(line_no: u64, raw: &[u8]) -> Result<Parsed, LineError> {
    let line = if line_no == 1 { strip_bom(raw) } else { raw };
    let text = std::str::from_utf8(line).map_err(|e| {
        (
            None,
            format!("invalid UTF-8 at byte {} of the line", e.valid_up_to()),
        )
    })?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(Parsed::Blank);
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| (None, format!("invalid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err((None, "a record must be a JSON object".into()));
    };
    let (schema, parsed) = if obj.contains_key("session_id") {
        (Schema::Sessioned, parse_sessioned(obj))
    } else {
        (Schema::Plain, parse_plain(obj))
    };
    Ok(parsed.unwrap_or_else(|e| Parsed::Bad(schema, e)))
}

fn field_err(field: &str, reason: impl Into<String>) -> LineError {
    (Some(field.to_string()), reason.into())
}

fn parse_plain(mut obj: serde_json::Map<String, Value>) -> Result<Parsed, LineError> {
    let prompt = match obj.remove("prompt") {
        None => {
            return Err(field_err(
                "prompt",
                "missing (a plain record needs \"prompt\"; a sessioned one needs \"session_id\" and \"prompts\")",
            ));
        }
        Some(Value::Null) => return Ok(Parsed::Plain(None)),
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(field_err(
                "prompt",
                format!("must be a string, got {}", py_kind(&other)),
            ));
        }
    };
    let completion = match obj.remove("completion") {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Null) => {
            return Err(field_err(
                "completion",
                "is null: omit the key or give a string",
            ));
        }
        Some(other) => {
            return Err(field_err(
                "completion",
                format!("must be a string, got {}", py_kind(&other)),
            ));
        }
    };
    Ok(Parsed::Plain(Some((prompt, completion))))
}

fn parse_sessioned(mut obj: serde_json::Map<String, Value>) -> Result<Parsed, LineError> {
    let id = match obj.remove("session_id") {
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => SessionId::Int(n),
        Some(Value::String(s)) => SessionId::Str(s),
        Some(other) => {
            return Err(field_err(
                "session_id",
                format!("must be an integer or a string, got {}", py_kind(&other)),
            ));
        }
        None => unreachable!("sessioned records have session_id"),
    };
    let prompts = match obj.remove("prompts") {
        None => {
            return Err(field_err(
                "prompts",
                "missing (a sessioned record needs a \"prompts\" list)",
            ));
        }
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(field_err(
                "prompts",
                format!("must be a list of strings, got {}", py_kind(&other)),
            ));
        }
    };
    let completions = match obj.remove("completions") {
        None => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(field_err(
                "completions",
                format!("must be a list of strings, got {}", py_kind(&other)),
            ));
        }
    };
    if completions.len() > prompts.len() {
        return Err(field_err(
            "completions",
            format!(
                "has {} entries but \"prompts\" has only {}",
                completions.len(),
                prompts.len()
            ),
        ));
    }
    if prompts.is_empty() {
        return Ok(Parsed::Sessioned(id, None));
    }
    let mut turns = Vec::with_capacity(prompts.len());
    let mut completions = completions.into_iter();
    for (i, p) in prompts.into_iter().enumerate() {
        let Value::String(p) = p else {
            return Err(field_err(
                &format!("prompts[{i}]"),
                format!("must be a string, got {}", py_kind(&p)),
            ));
        };
        let c = match completions.next() {
            // `null`: a turn with no answer (a conversation that ends on a user turn); its output length
            // comes from the target or the collection's distribution, as for a missing completion.
            None | Some(Value::Null) => None,
            Some(Value::String(c)) => Some(c),
            Some(other) => {
                return Err(field_err(
                    &format!("completions[{i}]"),
                    format!("must be a string, got {}", py_kind(&other)),
                ));
            }
        };
        turns.push((p, c));
    }
    Ok(Parsed::Sessioned(id, Some(turns)))
}

fn schema_name(s: Schema) -> &'static str {
    match s {
        Schema::Plain => "plain (no \"session_id\")",
        Schema::Sessioned => "sessioned (has \"session_id\")",
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn chunked_parallel_reading_equals_line_by_line() {
        let mut text = String::from("\u{feff}");
        for i in 0..50 {
            text.push_str(&format!(
                "{{\"prompt\": \"p{i} {}\", \"completion\": \"c{i}\"}}\n",
                "x".repeat(i * 3)
            ));
            if i % 7 == 0 {
                text.push_str("  \n\n");
            }
        }
        text.push_str("{\"prompt\": null}\n{\"prompt\": \"last, no newline\"}");
        let by_line = |t: &str| {
            let mut p = DatasetParser::new("d.jsonl");
            for l in t.as_bytes().split_inclusive(|&b| b == b'\n') {
                p.push_line(l)?;
            }
            p.finish()
        };
        let chunked = |t: &str, chunk: usize| {
            let mut p = DatasetParser::new("d.jsonl");
            p.read_chunked(t.as_bytes(), chunk)?;
            p.finish()
        };
        let want = by_line(&text).unwrap();
        assert_eq!(want.prompts.len(), 51);
        for chunk in [1, 7, 64, 1000, CHUNK] {
            let got = chunked(&text, chunk).unwrap();
            assert_eq!(got.prompts, want.prompts, "chunk {chunk}");
            assert_eq!(got.completions, want.completions);
            assert_eq!(
                (
                    got.sha256.as_str(),
                    got.bytes,
                    got.records,
                    got.skipped_records
                ),
                (
                    want.sha256.as_str(),
                    want.bytes,
                    want.records,
                    want.skipped_records
                )
            );
        }
        // The first bad line in file order is the one reported, whatever the chunking; a schema mix is
        // reported before a bad field of the same line.
        let bad = text.replace(
            "{\"prompt\": \"p20",
            "{\"session_id\": 1, \"prompts\": 3, \"x\": \"p20",
        );
        let bad = bad.replace("{\"prompt\": \"p30", "{\"prompt\": 5, \"y\": \"p30");
        let want = by_line(&bad).unwrap_err().to_string();
        assert!(want.contains("mixed schemas"), "{want}");
        for chunk in [1, 7, 64, CHUNK] {
            assert_eq!(chunked(&bad, chunk).unwrap_err().to_string(), want);
        }
    }

    use super::*;

    fn parse(s: &str) -> Result<Dataset, DatasetError> {
        parse_jsonl(s.as_bytes(), "t.jsonl")
    }

    #[test]
    fn plain_with_bom_blank_lines_and_extra_keys() {
        let d = parse("\u{feff}{\"prompt\": \"a\", \"completion\": \"b\", \"x\": 1}\n\n  \n{\"prompt\": \"c\"}\r\n{\"prompt\": null}\n").unwrap();
        assert_eq!(d.schema, Schema::Plain);
        assert_eq!(d.prompts, vec!["a", "c"]);
        assert_eq!(
            d.completions.iter().collect::<Vec<_>>(),
            vec![Some("b"), None]
        );
        assert_eq!(d.skipped_records, 1);
        assert_eq!(d.records, 3);
    }

    #[test]
    fn sessioned_joins_same_id_in_file_order_and_keeps_type() {
        let d = parse(concat!(
            "{\"session_id\": 7, \"prompts\": [\"a1\", \"a2\"], \"completions\": [\"c1\"]}\n",
            "{\"session_id\": \"7\", \"prompts\": [\"b1\"]}\n",
            "{\"session_id\": 7, \"prompts\": [\"a3\"]}\n",
            "{\"session_id\": 8, \"prompts\": []}\n",
        ))
        .unwrap();
        assert_eq!(d.schema, Schema::Sessioned);
        assert_eq!(d.sessions.len(), 2);
        assert_eq!(serde_json::to_string(&d.sessions[0].id).unwrap(), "7");
        assert_eq!(serde_json::to_string(&d.sessions[1].id).unwrap(), "\"7\"");
        assert_eq!(d.sessions[0].turns, 3);
        assert_eq!(d.prompts, vec!["a1", "a2", "a3", "b1"]);
        assert_eq!(d.completions.get(0), Some("c1"));
        assert_eq!(d.completions.get(1), None);
        assert_eq!(d.skipped_records, 1);
    }

    #[test]
    fn sessioned_null_completion_is_a_turn_without_answer() {
        // What a ShareGPT conversion writes for a conversation that ends on a human turn.
        let d = parse(concat!(
            "{\"session_id\": 1, \"prompts\": [\"q1\", \"q2\", \"q3\"], ",
            "\"completions\": [\"a1\", null, \"a3\"]}\n",
        ))
        .unwrap();
        assert_eq!(d.prompts, vec!["q1", "q2", "q3"]);
        assert_eq!(
            d.completions.iter().collect::<Vec<_>>(),
            vec![Some("a1"), None, Some("a3")]
        );
        // Other kinds are still refused, with the index.
        assert_eq!(
            err_of("{\"session_id\": 1, \"prompts\": [\"q\"], \"completions\": [3]}\n"),
            "t.jsonl:1: field 'completions[0]': must be a string, got a number"
        );
    }

    #[test]
    fn completions_share_one_buffer_and_are_released_at_once() {
        let c: Completions = [Some("ab"), None, Some(""), Some("c")]
            .into_iter()
            .collect();
        assert_eq!(c.len(), 4);
        assert_eq!(
            c.iter().collect::<Vec<_>>(),
            vec![Some("ab"), None, Some(""), Some("c")]
        );
        assert_eq!(c.get(9), None);
        let mut r = c.clone();
        r.release();
        assert_eq!(r.len(), 4, "still one entry per prompt");
        assert!(r.iter().all(|x| x.is_none()));
    }

    fn err_of(s: &str) -> String {
        parse(s).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_file_line_and_field() {
        assert_eq!(
            err_of("{\"prompt\": \"a\"}\n{\"prompt\": 3}\n"),
            "t.jsonl:2: field 'prompt': must be a string, got a number"
        );
        assert!(err_of("{\"prompt\": \"a\"}\n\n{oops\n").starts_with("t.jsonl:3: invalid JSON"));
        assert!(err_of("{\"text\": \"a\"}\n").starts_with("t.jsonl:1: field 'prompt': missing"));
        assert_eq!(
            err_of("{\"prompt\": \"a\", \"completion\": null}\n"),
            "t.jsonl:1: field 'completion': is null: omit the key or give a string"
        );
        assert!(
            err_of("{\"prompt\": \"a\"}\n{\"session_id\": 1, \"prompts\": [\"x\"]}\n")
                .starts_with("t.jsonl:2: mixed schemas")
        );
        assert!(err_of("{\"session_id\": 1}\n").starts_with("t.jsonl:1: field 'prompts': missing"));
        assert_eq!(
            err_of("{\"session_id\": 1, \"prompts\": [\"a\", 2]}\n"),
            "t.jsonl:1: field 'prompts[1]': must be a string, got a number"
        );
        assert_eq!(
            err_of("{\"session_id\": 1.5, \"prompts\": [\"a\"]}\n"),
            "t.jsonl:1: field 'session_id': must be an integer or a string, got a number"
        );
        assert!(err_of("[1]\n").contains("must be a JSON object"));
        assert_eq!(err_of(""), "t.jsonl: no prompts: the collection is empty");
        let bad_utf8 = parse_jsonl(
            &b"{\"prompt\": \"a\"}\n{\"prompt\": \"\xff\"}\n"[..],
            "u.jsonl",
        )
        .unwrap_err();
        assert_eq!(bad_utf8.line(), Some(2));
        assert!(bad_utf8.to_string().contains("invalid UTF-8"));
    }

    #[test]
    fn hash_covers_raw_bytes() {
        let a = parse("{\"prompt\": \"a\"}\n").unwrap();
        let b = parse("{\"prompt\": \"a\"}\n\n").unwrap();
        assert_ne!(a.sha256, b.sha256);
        assert_eq!(a.bytes, 16);
    }
}

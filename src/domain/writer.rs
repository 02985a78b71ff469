//! Workload entries and their serialisation: `workload.jsonl` (one entry per line) or `workload.json` (a
//! pretty-printed array, indent 4). Output mimics Python's `json.dumps` defaults (separators `", "` and
//! `": "`, keys in the reference order); strings are UTF-8, or `\uXXXX`-escaped like Python with `ascii`.
//!
//! Files are streamed to a temporary name in the output directory and renamed into place only when
//! complete, so a failed or cancelled run never leaves a file that looks finished.

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::atomic::AtomicFile;
use super::dataset::SessionId;
use super::spec::common::OutputFormat;

/// One request of an entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Request<'a> {
    /// The prompt text.
    pub prompt: Cow<'a, str>,
    /// Token count of the prompt.
    pub prompt_length: u32,
    /// Output length in tokens, or null.
    pub output_length: Option<u32>,
    /// Session id (sessioned collections only).
    pub session_id: Option<&'a SessionId>,
    /// Agent node metadata (`trace_type: agent` only), written last as `"agent"`.
    pub agent: Option<serde_json::Value>,
}

/// One workload line: a dispatch time and its requests.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<'a> {
    /// Milliseconds from the start of replay.
    pub timestamp: u64,
    /// Requests sent at that time (may be empty).
    pub requests: Vec<Request<'a>>,
    /// Extra top-level keys (`trace_type: agent` only).
    pub extra: Option<EntryExtra>,
}

/// The extra top-level keys of an agent-session entry: `schema_version` (written before `timestamp`) and
/// `events` (written after `requests`).
#[derive(Debug, Clone, PartialEq)]
pub struct EntryExtra {
    /// E.g. `aibrix.agent-session.v1`.
    pub schema_version: String,
    /// Non-model DAG nodes (tool, retry, join, wait) starting at this timestamp.
    pub events: Vec<serde_json::Value>,
}

/// Writes a JSON string literal, UTF-8 or Python-style ASCII.
pub fn write_json_str(out: &mut Vec<u8>, s: &str, ascii: bool) {
    if !ascii {
        serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
        return;
    }
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, ch) in s.char_indices() {
        let c = ch as u32;
        let plain = (0x20..0x7f).contains(&c) && ch != '"' && ch != '\\';
        if plain {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        start = i + ch.len_utf8();
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            _ => {
                let mut units = [0u16; 2];
                for u in ch.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn write_u32_opt(out: &mut Vec<u8>, v: Option<u32>) {
    match v {
        Some(v) => out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_session(out: &mut Vec<u8>, id: &SessionId, ascii: bool) {
    match id {
        SessionId::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
        SessionId::Str(s) => write_json_str(out, s, ascii),
    }
}

fn indent(out: &mut Vec<u8>, depth: usize) {
    out.push(b'\n');
    out.resize(out.len() + 4 * depth, b' ');
}

/// Writes a float as Python's `repr` does (`1e-05`, `1e+16`, `0.1`, `3.0`).
pub fn write_py_float(out: &mut Vec<u8>, x: f64) {
    if !x.is_finite() {
        out.extend_from_slice(if x.is_nan() {
            b"NaN"
        } else if x > 0.0 {
            b"Infinity"
        } else {
            b"-Infinity"
        });
        return;
    }
    // Shortest round-trip digits and the decimal exponent, e.g. "1.2345e-5".
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let decpt = exp + 1; // value = 0.DIGITS × 10^decpt
    if x.is_sign_negative() {
        out.push(b'-');
    }
    if !(-4 < decpt && decpt <= 16) {
        out.extend_from_slice(&digits.as_bytes()[..1]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits.as_bytes()[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else if decpt <= 0 {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + (-decpt) as usize, b'0');
        out.extend_from_slice(digits.as_bytes());
    } else if decpt as usize >= digits.len() {
        out.extend_from_slice(digits.as_bytes());
        out.resize(out.len() + decpt as usize - digits.len(), b'0');
        out.extend_from_slice(b".0");
    } else {
        let (int, frac) = digits.split_at(decpt as usize);
        out.extend_from_slice(int.as_bytes());
        out.push(b'.');
        out.extend_from_slice(frac.as_bytes());
    }
}

/// Writes a JSON value as Python's `json.dumps` does: compact with `", "` and `": "` separators when
/// `pretty` is None, or `indent=4` layout when it is `Some(depth)` (the nesting depth of the value itself).
pub fn write_py_value(
    out: &mut Vec<u8>,
    v: &serde_json::Value,
    ascii: bool,
    pretty: Option<usize>,
) {
    use serde_json::Value;
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
            } else if let Some(u) = n.as_u64() {
                out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes());
            } else {
                write_py_float(out, n.as_f64().unwrap_or(f64::NAN));
            }
        }
        Value::String(s) => write_json_str(out, s, ascii),
        Value::Array(items) => write_py_array(out, items, ascii, pretty),
        Value::Object(map) => write_py_object(out, map, ascii, pretty),
    }
}

/// Writes a JSON object like [`write_py_value`], keys in their order.
pub fn write_py_object(
    out: &mut Vec<u8>,
    map: &serde_json::Map<String, serde_json::Value>,
    ascii: bool,
    pretty: Option<usize>,
) {
    if map.is_empty() {
        out.extend_from_slice(b"{}");
        return;
    }
    out.push(b'{');
    for (i, (k, item)) in map.iter().enumerate() {
        match pretty {
            Some(d) => {
                if i > 0 {
                    out.push(b',');
                }
                indent(out, d + 1);
            }
            None if i > 0 => out.extend_from_slice(b", "),
            None => {}
        }
        write_json_str(out, k, ascii);
        out.extend_from_slice(b": ");
        write_py_value(out, item, ascii, pretty.map(|d| d + 1));
    }
    if let Some(d) = pretty {
        indent(out, d);
    }
    out.push(b'}');
}

/// Writes a JSON array of values like [`write_py_value`].
pub fn write_py_array(
    out: &mut Vec<u8>,
    items: &[serde_json::Value],
    ascii: bool,
    pretty: Option<usize>,
) {
    if items.is_empty() {
        out.extend_from_slice(b"[]");
        return;
    }
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        match pretty {
            Some(d) => {
                if i > 0 {
                    out.push(b',');
                }
                indent(out, d + 1);
            }
            None if i > 0 => out.extend_from_slice(b", "),
            None => {}
        }
        write_py_value(out, item, ascii, pretty.map(|d| d + 1));
    }
    if let Some(d) = pretty {
        indent(out, d);
    }
    out.push(b']');
}

/// Appends one JSONL line (with its newline) for `e`.
pub fn format_jsonl(out: &mut Vec<u8>, e: &Entry<'_>, ascii: bool) {
    out.push(b'{');
    if let Some(x) = &e.extra {
        out.extend_from_slice(b"\"schema_version\": ");
        write_json_str(out, &x.schema_version, ascii);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(b"\"timestamp\": ");
    out.extend_from_slice(itoa::Buffer::new().format(e.timestamp).as_bytes());
    out.extend_from_slice(b", \"requests\": [");
    for (i, r) in e.requests.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(b"{\"prompt\": ");
        write_json_str(out, &r.prompt, ascii);
        out.extend_from_slice(b", \"prompt_length\": ");
        write_u32_opt(out, Some(r.prompt_length));
        out.extend_from_slice(b", \"output_length\": ");
        write_u32_opt(out, r.output_length);
        if let Some(id) = r.session_id {
            out.extend_from_slice(b", \"session_id\": ");
            write_session(out, id, ascii);
        }
        if let Some(agent) = &r.agent {
            out.extend_from_slice(b", \"agent\": ");
            write_py_value(out, agent, ascii, None);
        }
        out.push(b'}');
    }
    out.push(b']');
    if let Some(x) = &e.extra {
        out.extend_from_slice(b", \"events\": ");
        write_py_array(out, &x.events, ascii, None);
    }
    out.extend_from_slice(b"}\n");
}

/// Appends one element of the pretty JSON array (Python `indent=4`), preceded by `,\n` unless first.
pub fn format_pretty(out: &mut Vec<u8>, e: &Entry<'_>, ascii: bool, first: bool) {
    if !first {
        out.extend_from_slice(b",\n");
    }
    out.extend_from_slice(b"    {\n        ");
    if let Some(x) = &e.extra {
        out.extend_from_slice(b"\"schema_version\": ");
        write_json_str(out, &x.schema_version, ascii);
        out.extend_from_slice(b",\n        ");
    }
    out.extend_from_slice(b"\"timestamp\": ");
    out.extend_from_slice(itoa::Buffer::new().format(e.timestamp).as_bytes());
    out.extend_from_slice(b",\n        \"requests\": ");
    if e.requests.is_empty() {
        out.extend_from_slice(b"[]");
    } else {
        out.extend_from_slice(b"[\n");
        for (i, r) in e.requests.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b",\n");
            }
            out.extend_from_slice(b"            {\n                \"prompt\": ");
            write_json_str(out, &r.prompt, ascii);
            out.extend_from_slice(b",\n                \"prompt_length\": ");
            write_u32_opt(out, Some(r.prompt_length));
            out.extend_from_slice(b",\n                \"output_length\": ");
            write_u32_opt(out, r.output_length);
            if let Some(id) = r.session_id {
                out.extend_from_slice(b",\n                \"session_id\": ");
                write_session(out, id, ascii);
            }
            if let Some(agent) = &r.agent {
                out.extend_from_slice(b",\n                \"agent\": ");
                write_py_value(out, agent, ascii, Some(4));
            }
            out.extend_from_slice(b"\n            }");
        }
        out.extend_from_slice(b"\n        ]");
    }
    if let Some(x) = &e.extra {
        out.extend_from_slice(b",\n        \"events\": ");
        write_py_array(out, &x.events, ascii, Some(2));
    }
    out.extend_from_slice(b"\n    }");
}

/// Why a sink stopped accepting entries.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Writing failed.
    #[error("writing the workload failed: {0}")]
    Io(#[from] std::io::Error),
    /// The consumer went away (a streaming client disconnected).
    #[error("the consumer of the workload stream went away")]
    Closed,
    /// The workload crossed its request or byte budget.
    #[error(transparent)]
    Limit(#[from] super::limits::LimitError),
}

/// Receives entries in timestamp order.
pub trait EntrySink {
    /// Takes one entry.
    fn entry(&mut self, e: &Entry<'_>) -> Result<(), SinkError>;
}

/// A callback that receives every JSONL line as it is written; returns false when its consumer is gone.
pub type LineTap = Box<dyn FnMut(&[u8]) -> bool + Send>;

/// The file name for a format: `workload.jsonl` or `workload.json`.
pub fn workload_file_name(format: OutputFormat) -> &'static str {
    match format {
        OutputFormat::Jsonl => "workload.jsonl",
        OutputFormat::Json => "workload.json",
    }
}

/// Streams entries to `<dir>/workload.{jsonl,json}` through a temporary file; see [`WorkloadFile::commit`].
pub struct WorkloadFile {
    format: OutputFormat,
    ascii: bool,
    out: AtomicFile,
    buf: Vec<u8>,
    line: Vec<u8>,
    first: bool,
    bytes: u64,
    tap: Option<LineTap>,
}

impl WorkloadFile {
    /// Opens a temporary file in `dir` (created if needed).
    pub fn create(
        dir: &Path,
        format: OutputFormat,
        ascii: bool,
        tap: Option<LineTap>,
    ) -> std::io::Result<Self> {
        let mut out = AtomicFile::create(&dir.join(workload_file_name(format)))?;
        let mut bytes = 0;
        if format == OutputFormat::Json {
            out.write_all(b"[\n")?;
            bytes = 2;
        }
        Ok(Self {
            format,
            ascii,
            out,
            buf: Vec::with_capacity(1 << 16),
            line: Vec::new(),
            first: true,
            bytes,
            tap,
        })
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Flushes, syncs and renames the file into place; returns its final path.
    pub fn commit(mut self) -> std::io::Result<PathBuf> {
        if self.format == OutputFormat::Json {
            let tail: &[u8] = if self.first { b"]" } else { b"\n]" };
            self.out.write_all(tail)?;
            self.bytes += tail.len() as u64;
        }
        self.out.commit()
    }
}

impl EntrySink for WorkloadFile {
    fn entry(&mut self, e: &Entry<'_>) -> Result<(), SinkError> {
        self.buf.clear();
        match self.format {
            OutputFormat::Jsonl => format_jsonl(&mut self.buf, e, self.ascii),
            OutputFormat::Json => format_pretty(&mut self.buf, e, self.ascii, self.first),
        }
        self.first = false;
        let out = &mut self.out;
        out.write_all(&self.buf)?;
        self.bytes += self.buf.len() as u64;
        if let Some(tap) = &mut self.tap {
            let line: &[u8] = if self.format == OutputFormat::Jsonl {
                &self.buf
            } else {
                self.line.clear();
                format_jsonl(&mut self.line, e, self.ascii);
                &self.line
            };
            if !tap(line) {
                return Err(SinkError::Closed);
            }
        }
        Ok(())
    }
}

/// Collects entries in memory as owned JSONL text (tests and small previews).
#[derive(Debug, Default)]
pub struct VecSink {
    /// The JSONL text.
    pub jsonl: Vec<u8>,
}

impl EntrySink for VecSink {
    fn entry(&mut self, e: &Entry<'_>) -> Result<(), SinkError> {
        format_jsonl(&mut self.jsonl, e, false);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(session: Option<&SessionId>) -> Entry<'_> {
        Entry {
            timestamp: 19,
            requests: vec![Request {
                prompt: Cow::Borrowed("héllo \"q\"\n\u{7f}😀"),
                prompt_length: 101,
                output_length: None,
                session_id: session,
                agent: None,
            }],
            extra: None,
        }
    }

    #[test]
    fn jsonl_matches_python_json_dumps() {
        let id = SessionId::Int(0.into());
        let mut out = Vec::new();
        format_jsonl(&mut out, &entry(Some(&id)), true);
        // json.dumps({"timestamp": 19, "requests": [{"prompt": "héllo \"q\"\n\x7f😀", "prompt_length": 101,
        //             "output_length": None, "session_id": 0}]})
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"timestamp\": 19, \"requests\": [{\"prompt\": \"h\\u00e9llo \\\"q\\\"\\n\\u007f\\ud83d\\ude00\", \"prompt_length\": 101, \"output_length\": null, \"session_id\": 0}]}\n"
        );
        let mut out = Vec::new();
        format_jsonl(&mut out, &entry(None), false);
        let line = String::from_utf8(out).unwrap();
        assert!(line.contains("héllo \\\"q\\\"\\n\u{7f}😀"));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["requests"][0]["prompt"], "héllo \"q\"\n\u{7f}😀");
        let empty = Entry {
            timestamp: 5,
            requests: vec![],
            extra: None,
        };
        let mut out = Vec::new();
        format_jsonl(&mut out, &empty, false);
        assert_eq!(out, b"{\"timestamp\": 5, \"requests\": []}\n");
    }

    #[test]
    fn pretty_array_matches_python_indent_4() {
        let dir = tempfile::tempdir().unwrap();
        let id = SessionId::Str("s".into());
        let mut w = WorkloadFile::create(dir.path(), OutputFormat::Json, false, None).unwrap();
        let mut e = entry(Some(&id));
        e.requests[0].prompt = Cow::Borrowed("p");
        w.entry(&e).unwrap();
        w.entry(&Entry {
            timestamp: 20,
            requests: vec![],
            extra: None,
        })
        .unwrap();
        let path = w.commit().unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        let want = "[\n    {\n        \"timestamp\": 19,\n        \"requests\": [\n            {\n                \"prompt\": \"p\",\n                \"prompt_length\": 101,\n                \"output_length\": null,\n                \"session_id\": \"s\"\n            }\n        ]\n    },\n    {\n        \"timestamp\": 20,\n        \"requests\": []\n    }\n]";
        assert_eq!(text, want);
    }

    #[test]
    fn values_are_written_like_python_json_dumps() {
        // json.dumps([1e-05, 1e16, 1e15, 0.1, 3.0, -0.0, 123.456, 1.5e-7, 2.5e+20, 0.0001,
        //             1234567890123456.7, 5e-324])
        let floats = serde_json::json!([
            1e-05,
            1e16,
            1e15,
            0.1,
            3.0,
            -0.0,
            123.456,
            1.5e-7,
            2.5e+20,
            0.0001,
            1234567890123456.7,
            5e-324
        ]);
        let mut out = Vec::new();
        write_py_value(&mut out, &floats, true, None);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[1e-05, 1e+16, 1000000000000000.0, 0.1, 3.0, -0.0, 123.456, 1.5e-07, 2.5e+20, 0.0001, 1234567890123456.8, 5e-324]"
        );
        // v = {'a': [], 'b': {}, 'c': [1, {'d': 'é', 'e': [True, None]}], 'f': 0.5}
        // json.dumps(v); json.dumps(v, indent=4)
        let v = serde_json::json!({"a": [], "b": {}, "c": [1, {"d": "é", "e": [true, null]}], "f": 0.5});
        let mut out = Vec::new();
        write_py_value(&mut out, &v, true, None);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a": [], "b": {}, "c": [1, {"d": "\u00e9", "e": [true, null]}], "f": 0.5}"#
        );
        let mut out = Vec::new();
        write_py_value(&mut out, &v, true, Some(0));
        let want = "{\n    \"a\": [],\n    \"b\": {},\n    \"c\": [\n        1,\n        {\n            \"d\": \"\\u00e9\",\n            \"e\": [\n                true,\n                null\n            ]\n        }\n    ],\n    \"f\": 0.5\n}";
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn extra_keys_frame_the_entry_in_reference_order() {
        let id = SessionId::Str("session_a".into());
        let mut e = entry(Some(&id));
        e.requests[0].prompt = Cow::Borrowed("p");
        e.requests[0].agent = Some(serde_json::json!({"node_id": "n", "parent_ids": []}));
        e.extra = Some(EntryExtra {
            schema_version: "v1".into(),
            events: vec![serde_json::json!({"node_type": "join", "parent_ids": ["x"]})],
        });
        let mut out = Vec::new();
        format_jsonl(&mut out, &e, false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"schema_version\": \"v1\", \"timestamp\": 19, \"requests\": [{\"prompt\": \"p\", \"prompt_length\": 101, \"output_length\": null, \"session_id\": \"session_a\", \"agent\": {\"node_id\": \"n\", \"parent_ids\": []}}], \"events\": [{\"node_type\": \"join\", \"parent_ids\": [\"x\"]}]}\n"
        );
    }

    #[test]
    fn uncommitted_file_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut w = WorkloadFile::create(dir.path(), OutputFormat::Jsonl, false, None).unwrap();
            w.entry(&entry(None)).unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

//! Streaming reader of existing workload files: JSONL (one entry per line) or one JSON array, detected from
//! the first non-blank byte. Files written by the reference generator are accepted, including the bare
//! `NaN`/`Infinity` it writes for mixed completion lengths (read as `null`, and counted) and the legacy
//! `Prompt Length`/`Output Length` request keys (passed through untouched).
//!
//! Each entry must be an object with a non-negative integer `timestamp` (ms; `1000.0` counts as 1000) and a
//! `requests` array. Everything else is kept as it is, in its original key order.

use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::{Map, Value};

use super::super::files::InputError;
use super::super::json::{kind, replace_non_finite};

/// Largest timestamp accepted (2^53 ms, about 285,000 years): every such value survives a float round trip.
pub const MAX_TIMESTAMP_MS: u64 = 1 << 53;

/// One workload entry as read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEntry {
    /// The timestamp, ms.
    pub timestamp: u64,
    /// All keys of the entry in file order, `timestamp` and `requests` included.
    pub fields: Map<String, Value>,
    /// 1-based line where the entry starts.
    pub line: u64,
}

impl RawEntry {
    /// The `requests` array (validated on read).
    pub fn requests(&self) -> &[Value] {
        match self.fields.get("requests") {
            Some(Value::Array(a)) => a,
            _ => &[],
        }
    }

    /// The `requests` array, mutable.
    pub fn requests_mut(&mut self) -> &mut Vec<Value> {
        match self.fields.get_mut("requests") {
            Some(Value::Array(a)) => a,
            _ => unreachable!("`requests` is validated to be an array on read"),
        }
    }

    /// Sets the timestamp (the `timestamp` key keeps its position and is written as an integer).
    pub fn set_timestamp(&mut self, ts: u64) {
        self.timestamp = ts;
        if let Some(v) = self.fields.get_mut("timestamp") {
            *v = Value::from(ts);
        }
    }
}

pub use crate::domain::layout::Layout;

/// Reads the entries of one workload file in file order.
pub struct EntryReader<R> {
    name: String,
    src: R,
    layout: Option<Layout>,
    line: u64,
    buf: Vec<u8>,
    done: bool,
    array_closed: bool,
    nan_replaced: u64,
}

impl EntryReader<BufReader<std::fs::File>> {
    /// Opens `path`; errors name the file as `name`.
    pub fn open(name: &str, path: &Path) -> Result<Self, InputError> {
        let f = std::fs::File::open(path)
            .map_err(|e| InputError::file(name, format!("cannot open: {e}")))?;
        Ok(Self::new(name, BufReader::with_capacity(1 << 20, f)))
    }
}

impl<R: BufRead> EntryReader<R> {
    /// Reads from `src`; errors name the file as `name`.
    pub fn new(name: &str, src: R) -> Self {
        Self {
            name: name.to_string(),
            src,
            layout: None,
            line: 1,
            buf: Vec::new(),
            done: false,
            array_closed: false,
            nan_replaced: 0,
        }
    }

    /// The name used in errors.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The layout, once the first entry (or the end) has been read.
    pub fn layout(&self) -> Option<Layout> {
        self.layout
    }

    /// Bare `NaN`/`Infinity` values read as `null` so far.
    pub fn nan_replaced(&self) -> u64 {
        self.nan_replaced
    }

    fn io_err(&self, e: std::io::Error) -> InputError {
        InputError::at(&self.name, self.line, None, format!("read error: {e}"))
    }

    /// Skips whitespace (counting lines) and a leading UTF-8 BOM; returns the next byte without consuming it.
    fn skip_ws(&mut self) -> Result<Option<u8>, InputError> {
        loop {
            let (n, next, newlines) = {
                let b = match self.src.fill_buf() {
                    Ok(b) => b,
                    Err(e) => return Err(self.io_err(e)),
                };
                if b.is_empty() {
                    return Ok(None);
                }
                let mut n = 0;
                let mut newlines = 0;
                while n < b.len() && matches!(b[n], b' ' | b'\t' | b'\r' | b'\n') {
                    newlines += u64::from(b[n] == b'\n');
                    n += 1;
                }
                (n, b.get(n).copied(), newlines)
            };
            self.src.consume(n);
            self.line += newlines;
            if next.is_some() {
                return Ok(next);
            }
        }
    }

    /// Reads one JSONL line into `buf` (without the newline); returns false at the end.
    fn read_line(&mut self) -> Result<bool, InputError> {
        self.buf.clear();
        let n = self
            .src
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| self.io_err(e))?;
        if n == 0 {
            return Ok(false);
        }
        while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
            self.buf.pop();
        }
        Ok(true)
    }

    /// Collects one JSON value of an array into `buf`, tracking nesting, strings and newlines.
    fn read_array_value(&mut self) -> Result<(), InputError> {
        self.buf.clear();
        let mut depth = 0usize;
        let mut in_str = false;
        let mut escape = false;
        loop {
            let (consumed, finished) = {
                let b = match self.src.fill_buf() {
                    Ok(b) => b,
                    Err(e) => return Err(self.io_err(e)),
                };
                if b.is_empty() {
                    return Err(InputError::at(
                        &self.name,
                        self.line,
                        None,
                        "unexpected end of file inside the JSON array",
                    ));
                }
                let mut i = 0;
                let mut finished = false;
                while i < b.len() {
                    let c = b[i];
                    if in_str {
                        if escape {
                            escape = false;
                        } else if c == b'\\' {
                            escape = true;
                        } else if c == b'"' {
                            in_str = false;
                        }
                    } else {
                        match c {
                            b'"' => in_str = true,
                            b'{' | b'[' => depth += 1,
                            b'}' | b']' if depth > 0 => {
                                depth -= 1;
                                if depth == 0 {
                                    i += 1;
                                    finished = true;
                                    break;
                                }
                            }
                            b',' | b']' if depth == 0 => {
                                finished = true;
                                break;
                            }
                            _ => {}
                        }
                    }
                    if c == b'\n' {
                        self.line += 1;
                    }
                    i += 1;
                }
                self.buf.extend_from_slice(&b[..i]);
                (i, finished)
            };
            self.src.consume(consumed);
            if finished {
                return Ok(());
            }
        }
    }

    fn next_entry(&mut self) -> Result<Option<RawEntry>, InputError> {
        if self.done {
            return Ok(None);
        }
        if self.layout.is_none() {
            let (layout, newlines) =
                crate::domain::layout::detect(&mut self.src).map_err(|e| self.io_err(e))?;
            self.line += newlines;
            match layout {
                None => {
                    self.layout = Some(Layout::Jsonl);
                    self.done = true;
                    return Ok(None);
                }
                Some(Layout::JsonArray) => {
                    self.src.consume(1);
                    self.layout = Some(Layout::JsonArray);
                }
                Some(Layout::Jsonl) => self.layout = Some(Layout::Jsonl),
            }
        }
        match self.layout {
            Some(Layout::Jsonl) => loop {
                let line = self.line;
                if !self.read_line()? {
                    self.done = true;
                    return Ok(None);
                }
                self.line += 1;
                if self.buf.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return self.parse(line).map(Some);
            },
            _ => {
                if self.array_closed {
                    return self.expect_end();
                }
                match self.skip_ws()? {
                    Some(b']') => {
                        self.src.consume(1);
                        self.array_closed = true;
                        return self.expect_end();
                    }
                    None => {
                        return Err(InputError::at(
                            &self.name,
                            self.line,
                            None,
                            "unexpected end of file: the JSON array is not closed",
                        ));
                    }
                    _ => {}
                }
                let line = self.line;
                self.read_array_value()?;
                let entry = self.parse(line)?;
                match self.skip_ws()? {
                    Some(b',') => self.src.consume(1),
                    Some(b']') => {
                        self.src.consume(1);
                        self.array_closed = true;
                    }
                    None => {
                        return Err(InputError::at(
                            &self.name,
                            self.line,
                            None,
                            "unexpected end of file: the JSON array is not closed",
                        ));
                    }
                    Some(_) => {
                        return Err(InputError::at(
                            &self.name,
                            self.line,
                            None,
                            "expected ',' or ']' after an array element",
                        ));
                    }
                }
                Ok(Some(entry))
            }
        }
    }

    fn expect_end(&mut self) -> Result<Option<RawEntry>, InputError> {
        self.done = true;
        match self.skip_ws()? {
            None => Ok(None),
            Some(_) => Err(InputError::at(
                &self.name,
                self.line,
                None,
                "unexpected content after the closing ']' of the JSON array",
            )),
        }
    }

    fn parse(&mut self, line: u64) -> Result<RawEntry, InputError> {
        let value: Value = match serde_json::from_slice(&self.buf) {
            Ok(v) => v,
            Err(e) => match replace_non_finite(&self.buf) {
                Some((fixed, n)) => match serde_json::from_slice(&fixed) {
                    Ok(v) => {
                        self.nan_replaced += n;
                        v
                    }
                    Err(_) => return Err(self.json_err(line, &e)),
                },
                None => return Err(self.json_err(line, &e)),
            },
        };
        entry_from_value(&self.name, line, value)
    }

    fn json_err(&self, line: u64, e: &serde_json::Error) -> InputError {
        InputError::at(
            &self.name,
            line + e.line() as u64 - 1,
            None,
            format!("not valid JSON: {e}"),
        )
    }
}

impl<R: BufRead> Iterator for EntryReader<R> {
    type Item = Result<RawEntry, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_entry() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Checks that `value` is a workload entry and extracts its timestamp.
pub fn entry_from_value(file: &str, line: u64, value: Value) -> Result<RawEntry, InputError> {
    let Value::Object(mut fields) = value else {
        return Err(InputError::at(
            file,
            line,
            None,
            format!(
                "not a workload entry: expected a JSON object, got {}",
                kind(&value)
            ),
        ));
    };
    let timestamp = match fields.get("timestamp") {
        None => {
            return Err(InputError::at(
                file,
                line,
                Some("timestamp"),
                "missing (every entry needs a timestamp in ms)",
            ));
        }
        Some(v) => {
            timestamp_of(v).map_err(|why| InputError::at(file, line, Some("timestamp"), why))?
        }
    };
    match fields.get("requests") {
        Some(Value::Array(_)) => {}
        None => {
            return Err(InputError::at(
                file,
                line,
                Some("requests"),
                "missing (every entry needs a list of requests, possibly empty)",
            ));
        }
        Some(v) => {
            return Err(InputError::at(
                file,
                line,
                Some("requests"),
                format!("must be a list, got {}", kind(v)),
            ));
        }
    }
    // `1000.0` and `1e3` are written back as the integer 1000.
    if let Some(v) = fields.get_mut("timestamp").filter(|v| !v.is_u64()) {
        *v = Value::from(timestamp);
    }
    Ok(RawEntry {
        timestamp,
        fields,
        line,
    })
}

fn timestamp_of(v: &Value) -> Result<u64, String> {
    let Value::Number(n) = v else {
        return Err(format!("must be an integer number of ms, got {}", kind(v)));
    };
    if let Some(u) = n.as_u64() {
        return if u <= MAX_TIMESTAMP_MS {
            Ok(u)
        } else {
            Err(format!("{u} is too large (at most 2^53 ms)"))
        };
    }
    if let Some(i) = n.as_i64() {
        return Err(format!("must not be negative, got {i}"));
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    if f < 0.0 {
        Err(format!("must not be negative, got {n}"))
    } else if f.fract() != 0.0 {
        Err(format!("must be an integer number of ms, got {n}"))
    } else if f > MAX_TIMESTAMP_MS as f64 {
        Err(format!("{n} is too large (at most 2^53 ms)"))
    } else {
        Ok(f as u64)
    }
}

/// Reads every entry of a small in-memory text (tests and previews).
pub fn read_all(name: &str, text: &[u8]) -> Result<Vec<RawEntry>, InputError> {
    EntryReader::new(name, text).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(entries: &[RawEntry]) -> Vec<(u64, u64)> {
        entries.iter().map(|e| (e.timestamp, e.line)).collect()
    }

    #[test]
    fn jsonl_with_blank_lines_bom_and_crlf() {
        let text = b"\xEF\xBB\xBF{\"timestamp\": 5, \"requests\": []}\r\n\r\n  \n{\"timestamp\": 7.0, \"requests\": [{\"prompt\": \"a\"}], \"x\": 1}\n";
        let all = read_all("w.jsonl", text).unwrap();
        assert_eq!(ts(&all), vec![(5, 1), (7, 4)]);
        assert_eq!(
            all[1].fields.keys().collect::<Vec<_>>(),
            ["timestamp", "requests", "x"]
        );
        assert_eq!(
            all[1].fields["timestamp"],
            Value::from(7u64),
            "written back as an integer"
        );
    }

    #[test]
    fn json_array_pretty_and_compact() {
        let text = b"[\n    {\n        \"timestamp\": 1,\n        \"requests\": [\"]\\\"[{\"]\n    },\n    {\"timestamp\": 2, \"requests\": []}\n]\n";
        let all = read_all("w.json", text).unwrap();
        assert_eq!(ts(&all), vec![(1, 2), (2, 6)]);
        assert_eq!(all[0].requests()[0], "]\"[{");
        assert!(read_all("e.json", b" [ ] ").unwrap().is_empty());
        assert!(read_all("e.jsonl", b"\n\n").unwrap().is_empty());
    }

    #[test]
    fn bad_entries_name_file_line_and_field() {
        let err = |text: &[u8]| read_all("w.jsonl", text).unwrap_err().to_string();
        let ok = "{\"timestamp\": 1, \"requests\": []}\n";
        assert_eq!(
            err(format!("{ok}[1, 2]\n").as_bytes()),
            "w.jsonl:2: not a workload entry: expected a JSON object, got an array"
        );
        assert_eq!(
            err(format!("{ok}\n{{\"requests\": []}}\n").as_bytes()),
            "w.jsonl:3: column 'timestamp': missing (every entry needs a timestamp in ms)"
        );
        assert_eq!(
            err(b"{\"timestamp\": -3, \"requests\": []}"),
            "w.jsonl:1: column 'timestamp': must not be negative, got -3"
        );
        assert_eq!(
            err(b"{\"timestamp\": 1.5, \"requests\": []}"),
            "w.jsonl:1: column 'timestamp': must be an integer number of ms, got 1.5"
        );
        assert_eq!(
            err(b"{\"timestamp\": \"1\", \"requests\": []}"),
            "w.jsonl:1: column 'timestamp': must be an integer number of ms, got a string"
        );
        assert_eq!(
            err(b"{\"timestamp\": 1}"),
            "w.jsonl:1: column 'requests': missing (every entry needs a list of requests, possibly empty)"
        );
        assert!(
            err(format!("{ok}{{\"timestamp\": 1,\n").as_bytes())
                .starts_with("w.jsonl:2: not valid JSON")
        );
        let arr = read_all("w.json", b"[{\"timestamp\": 1, \"requests\": []},\n 3]").unwrap_err();
        assert_eq!(arr.line, Some(2));
        let open = read_all("w.json", b"[{\"timestamp\": 1, \"requests\": []}").unwrap_err();
        assert!(open.to_string().contains("not closed"), "{open}");
        let tail = read_all("w.json", b"[] x").unwrap_err();
        assert!(tail.to_string().contains("after the closing"), "{tail}");
    }

    #[test]
    fn python_nan_and_infinity_read_as_null() {
        let text = b"{\"timestamp\": 1, \"requests\": [{\"prompt\": \"NaN stays\", \"output_length\": NaN, \"x\": -Infinity}]}\n";
        let mut r = EntryReader::new("w.jsonl", &text[..]);
        let e = r.next().unwrap().unwrap();
        assert_eq!(e.requests()[0]["output_length"], Value::Null);
        assert_eq!(e.requests()[0]["x"], Value::Null);
        assert_eq!(e.requests()[0]["prompt"], "NaN stays");
        assert_eq!(r.nan_replaced(), 2);
    }
}

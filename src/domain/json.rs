//! JSON helpers shared by the readers: the kind of a value in error messages (`must be a string, got a
//! number`), and the repair of Python's bare `NaN`/`Infinity` tokens.

use serde_json::Value;

/// The kind of `v` with an article, in JSON's words: `null`, `a boolean`, `a number`, `a string`,
/// `an array`, `an object`.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// [`kind`] in Python's words, for the inputs the Python reference reads (collections, conversations,
/// agent configs): an array is `a list`.
pub fn py_kind(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "a list",
        other => kind(other),
    }
}

/// The non-finite tokens Python's `json` writes, longest first.
const NON_FINITE: [&[u8]; 3] = [b"-Infinity", b"Infinity", b"NaN"];

/// A reader that replaces, as it streams, the bare `NaN`, `Infinity` and `-Infinity` tokens outside
/// strings with `null` (what [`replace_non_finite`] does to a whole text), for a streaming parse of the
/// JSON array files Python writes. Lines are unchanged; a column after a replaced `NaN` moves by one.
pub struct NonFiniteReader<R> {
    inner: R,
    chunk: usize,
    buf: Vec<u8>,
    pos: usize,
    carry: Vec<u8>,
    in_str: bool,
    escape: bool,
    eof: bool,
    /// Tokens replaced so far.
    replaced: u64,
}

impl<R: std::io::Read> NonFiniteReader<R> {
    /// Wraps `inner`, reading it 64 KiB at a time.
    pub fn new(inner: R) -> Self {
        Self::with_chunk(inner, 64 << 10)
    }

    fn with_chunk(inner: R, chunk: usize) -> Self {
        Self {
            inner,
            chunk: chunk.max(1),
            buf: Vec::new(),
            pos: 0,
            carry: Vec::new(),
            in_str: false,
            escape: false,
            eof: false,
            replaced: 0,
        }
    }

    /// Refills `buf` from the next raw chunk (and the bytes carried over from the last one).
    fn fill(&mut self) -> std::io::Result<()> {
        self.buf.clear();
        self.pos = 0;
        while self.buf.is_empty() && !(self.eof && self.carry.is_empty()) {
            let mut raw = std::mem::take(&mut self.carry);
            if !self.eof {
                let start = raw.len();
                raw.resize(start + self.chunk, 0);
                let n = loop {
                    match self.inner.read(&mut raw[start..]) {
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        other => break other?,
                    }
                };
                raw.truncate(start + n);
                self.eof = n == 0;
            }
            let mut i = 0;
            while i < raw.len() {
                let c = raw[i];
                if self.in_str {
                    if self.escape {
                        self.escape = false;
                    } else if c == b'\\' {
                        self.escape = true;
                    } else if c == b'"' {
                        self.in_str = false;
                    }
                } else if c == b'"' {
                    self.in_str = true;
                } else if matches!(c, b'N' | b'I' | b'-') {
                    let rest = &raw[i..];
                    if let Some(t) = NON_FINITE.into_iter().find(|t| rest.starts_with(t)) {
                        self.buf.extend_from_slice(b"null");
                        self.replaced += 1;
                        i += t.len();
                        continue;
                    }
                    // A token cut by the end of the chunk: decide when the next one is read.
                    if !self.eof && NON_FINITE.into_iter().any(|t| t.starts_with(rest)) {
                        self.carry = rest.to_vec();
                        break;
                    }
                }
                self.buf.push(c);
                i += 1;
            }
        }
        Ok(())
    }
}

impl<R: std::io::Read> std::io::Read for NonFiniteReader<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            self.fill()?;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Replaces the bare `NaN`, `Infinity` and `-Infinity` tokens Python writes (outside strings) with `null`;
/// None when there are none. Returns the repaired text and the number of tokens replaced.
pub fn replace_non_finite(text: &[u8]) -> Option<(Vec<u8>, u64)> {
    use std::io::Read;
    let mut r = NonFiniteReader::with_chunk(text, text.len());
    let mut out = Vec::with_capacity(text.len());
    r.read_to_end(&mut out)
        .expect("reading a slice cannot fail");
    (r.replaced > 0).then_some((out, r.replaced))
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_streaming_reader_repairs_like_the_whole_text_repair() {
        use std::io::Read;
        let text = br#"[{"a": NaN, "b": "NaN \" Infinity", "c": -Infinity, "d": -5, "e": Infinity},
 {"f": [NaN,NaN], "g": "x\\"}, -1.5e3, "-Infinity"]"#;
        let whole = replace_non_finite(text).unwrap().0;
        for chunk in [1, 2, 3, 5, 8, 64, 1 << 16] {
            let mut got = Vec::new();
            NonFiniteReader::with_chunk(&text[..], chunk)
                .read_to_end(&mut got)
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&whole),
                "chunk {chunk}"
            );
        }
        let v: serde_json::Value =
            serde_json::from_reader(NonFiniteReader::with_chunk(&text[..], 3)).unwrap();
        assert!(v[0]["a"].is_null() && v[0]["b"] == "NaN \" Infinity" && v[0]["d"] == -5);
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn kinds() {
        let all = [
            json!(null),
            json!(true),
            json!(1),
            json!("s"),
            json!([1]),
            json!({}),
        ];
        let k: Vec<_> = all.iter().map(kind).collect();
        assert_eq!(
            k,
            [
                "null",
                "a boolean",
                "a number",
                "a string",
                "an array",
                "an object"
            ]
        );
        let p: Vec<_> = all.iter().map(py_kind).collect();
        assert_eq!(
            p,
            [
                "null",
                "a boolean",
                "a number",
                "a string",
                "a list",
                "an object"
            ]
        );
    }
}

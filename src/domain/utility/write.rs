//! Writes arbitrary workload entries the way Python's `json.dumps` does (separators `", "`/`": "`, or
//! `indent=4` for the JSON-array layout; floats as Python's `repr`), keeping every key in its original order.
//! Output goes to a temporary file next to the destination and is renamed into place by
//! [`EntryWriter::commit`]; dropping the writer without committing removes the temporary file.

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use super::super::atomic::AtomicFile;
use super::super::spec::OutputFormat;
use super::super::writer::write_py_object;

/// Streams entries to `dest` through a temporary file in the same directory.
pub struct EntryWriter {
    format: OutputFormat,
    ascii: bool,
    out: AtomicFile,
    buf: Vec<u8>,
    entries: u64,
    bytes: u64,
}

impl EntryWriter {
    /// Creates the temporary file for `dest` (its directory is created if needed).
    pub fn create(dest: &Path, format: OutputFormat, ascii: bool) -> std::io::Result<Self> {
        Ok(Self {
            format,
            ascii,
            out: AtomicFile::create(dest)?,
            buf: Vec::with_capacity(1 << 16),
            entries: 0,
            bytes: 0,
        })
    }

    /// Writes one entry (an object) as a JSONL line or an element of the indented array.
    pub fn write(&mut self, entry: &serde_json::Map<String, Value>) -> std::io::Result<()> {
        self.buf.clear();
        match self.format {
            OutputFormat::Jsonl => {
                write_py_object(&mut self.buf, entry, self.ascii, None);
                self.buf.push(b'\n');
            }
            OutputFormat::Json => {
                self.buf.extend_from_slice(if self.entries == 0 {
                    b"[\n    "
                } else {
                    b",\n    "
                });
                write_py_object(&mut self.buf, entry, self.ascii, Some(1));
            }
        }
        self.entries += 1;
        self.bytes += self.buf.len() as u64;
        self.out.write_all(&self.buf)
    }

    /// Entries written so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Flushes, syncs and renames the file into place; returns the number of bytes written.
    pub fn commit(mut self) -> std::io::Result<u64> {
        if self.format == OutputFormat::Json {
            let tail: &[u8] = if self.entries == 0 { b"[]" } else { b"\n]" };
            self.out.write_all(tail)?;
            self.bytes += tail.len() as u64;
        }
        self.out.commit()?;
        Ok(self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::writer::write_py_value;
    use super::*;

    fn py(f: f64) -> String {
        let mut out = Vec::new();
        super::super::super::writer::write_py_float(&mut out, f);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_like_python_repr() {
        // python3 -c 'import json; print([json.dumps(x) for x in [...]])'
        let cases = [
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123.0, "123.0"),
            (1e22, "1e+22"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (12345.678, "12345.678"),
        ];
        for (f, want) in cases {
            assert_eq!(py(f), want, "{f}");
        }
    }

    #[test]
    fn values_like_json_dumps() {
        let v: Value = serde_json::from_str(
            r#"{"timestamp": 3, "requests": [{"prompt": "é", "Prompt Length": 2, "x": 1.0}], "e": {}, "l": []}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        write_py_value(&mut out, &v, false, None);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"timestamp": 3, "requests": [{"prompt": "é", "Prompt Length": 2, "x": 1.0}], "e": {}, "l": []}"#
        );
        let mut out = Vec::new();
        write_py_value(&mut out, &v, true, Some(0));
        // json.dumps(v, indent=4)
        let want = "{\n    \"timestamp\": 3,\n    \"requests\": [\n        {\n            \"prompt\": \"\\u00e9\",\n            \"Prompt Length\": 2,\n            \"x\": 1.0\n        }\n    ],\n    \"e\": {},\n    \"l\": []\n}";
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn rewriting_generated_lines_is_byte_identical() {
        use super::super::super::dataset::SessionId;
        use super::super::super::writer::{Entry, Request, format_jsonl};
        use super::super::read::read_all;
        let id = SessionId::Str("s-1".into());
        let e = Entry {
            timestamp: 19,
            requests: vec![
                Request {
                    prompt: "héllo \"q\"\n\u{7f}😀\t".into(),
                    prompt_length: 101,
                    output_length: None,
                    session_id: Some(&id),
                    agent: None,
                },
                Request {
                    prompt: "x".into(),
                    prompt_length: 1,
                    output_length: Some(7),
                    session_id: None,
                    agent: None,
                },
            ],
            extra: None,
        };
        for ascii in [false, true] {
            let mut generated = Vec::new();
            format_jsonl(&mut generated, &e, ascii);
            let entry = read_all("g.jsonl", &generated).unwrap().remove(0);
            let mut rewritten = Vec::new();
            write_py_object(&mut rewritten, &entry.fields, ascii, None);
            rewritten.push(b'\n');
            assert_eq!(
                String::from_utf8(rewritten).unwrap(),
                String::from_utf8(generated).unwrap()
            );
        }
    }

    #[test]
    fn writer_is_atomic_and_formats_arrays() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.json");
        let m: serde_json::Map<String, Value> =
            serde_json::from_str(r#"{"timestamp": 1, "requests": []}"#).unwrap();
        {
            let mut w = EntryWriter::create(&dest, OutputFormat::Json, false).unwrap();
            w.write(&m).unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let mut w = EntryWriter::create(&dest, OutputFormat::Json, false).unwrap();
        w.write(&m).unwrap();
        w.write(&m).unwrap();
        w.commit().unwrap();
        let text = std::fs::read_to_string(&dest).unwrap();
        assert_eq!(
            text,
            "[\n    {\n        \"timestamp\": 1,\n        \"requests\": []\n    },\n    {\n        \"timestamp\": 1,\n        \"requests\": []\n    }\n]"
        );
        let w = EntryWriter::create(&dest, OutputFormat::Json, false).unwrap();
        w.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "[]");
    }
}

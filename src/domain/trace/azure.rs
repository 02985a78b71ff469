//! Azure LLM inference traces (Splitwise): CSV `TIMESTAMP,ContextTokens,GeneratedTokens`, timestamps like
//! `2023-11-16 18:15:46.6805900`. Other columns are ignored. Read as a stream of byte records (no per-row
//! allocation).

use std::io::Read;

use super::rows::{RowReader, TraceRow, parse_datetime_us, parse_len};
use crate::domain::bom::strip_bom;
use crate::domain::files::InputError;

/// The timestamp column.
pub const TIMESTAMP: &str = "TIMESTAMP";
/// The prompt-length column.
pub const CONTEXT_TOKENS: &str = "ContextTokens";
/// The output-length column.
pub const GENERATED_TOKENS: &str = "GeneratedTokens";

/// Finds each wanted column in a CSV header; the error names the missing column.
pub(crate) fn header_index(
    headers: &csv::ByteRecord,
    name: &str,
    file: &str,
) -> Result<usize, InputError> {
    headers
        .iter()
        .position(|h| {
            let h = strip_bom(h); // a UTF-8 BOM before the first name
            h.trim_ascii() == name.as_bytes()
        })
        .ok_or_else(|| {
            let have: Vec<String> = headers
                .iter()
                .map(|h| String::from_utf8_lossy(h).into_owned())
                .collect();
            InputError::at(
                file,
                1,
                Some(name),
                format!(
                    "column missing from the header (columns: {})",
                    have.join(", ")
                ),
            )
        })
}

/// Converts a CSV reader error into an input error with its line.
pub(crate) fn csv_error(file: &str, e: csv::Error) -> InputError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    let reason = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("has {len} fields, the header has {expected_len}"),
        _ => e.to_string(),
    };
    if line > 0 {
        InputError::at(file, line, None, reason)
    } else {
        InputError::file(file, reason)
    }
}

/// Streaming reader of an Azure trace.
pub struct AzureReader<R: Read> {
    rdr: csv::Reader<R>,
    rec: csv::ByteRecord,
    file: String,
    cols: [usize; 3],
    done: bool,
}

impl<R: Read> AzureReader<R> {
    /// Reads the header; errors name a missing column.
    pub fn new(r: R, file: &str) -> Result<Self, InputError> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            // Records end at '\n' only: a '\r' of CRLF files stays in the last field (fields are trimmed),
            // and line numbers in errors stay right (with CRLF terminators they lag by one).
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(1 << 16)
            .from_reader(r);
        let headers = rdr.byte_headers().map_err(|e| csv_error(file, e))?.clone();
        if headers.is_empty() {
            return Err(InputError::file(
                file,
                "is empty; expected the header TIMESTAMP,ContextTokens,GeneratedTokens",
            ));
        }
        let cols = [
            header_index(&headers, TIMESTAMP, file)?,
            header_index(&headers, CONTEXT_TOKENS, file)?,
            header_index(&headers, GENERATED_TOKENS, file)?,
        ];
        Ok(Self {
            rdr,
            rec: csv::ByteRecord::new(),
            file: file.to_string(),
            cols,
            done: false,
        })
    }

    fn row(&self) -> Result<TraceRow, InputError> {
        let line = self.rec.position().map(|p| p.line()).unwrap_or(0);
        let field = |i: usize| self.rec.get(self.cols[i]).unwrap_or(b"");
        let at = |col: &str, why: String| InputError::at(&self.file, line, Some(col), why);
        let ts = field(0);
        let time_us = parse_datetime_us(ts).ok_or_else(|| {
            at(
                TIMESTAMP,
                format!(
                    "'{}' is not a date-time like 2023-11-16 18:15:46.6805900",
                    String::from_utf8_lossy(ts)
                ),
            )
        })?;
        let input_len = parse_len(field(1)).map_err(|w| at(CONTEXT_TOKENS, w))?;
        let output_len = parse_len(field(2)).map_err(|w| at(GENERATED_TOKENS, w))?;
        Ok(TraceRow {
            line,
            time_us,
            input_len,
            output_len: Some(output_len),
            session: None,
            hash_ids: Vec::new(),
        })
    }
}

impl<R: Read> Iterator for AzureReader<R> {
    type Item = Result<TraceRow, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.rdr.read_byte_record(&mut self.rec) {
            Ok(true) => {
                let r = self.row();
                self.done = r.is_err();
                Some(r)
            }
            Ok(false) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(csv_error(&self.file, e)))
            }
        }
    }
}

impl<R: Read> RowReader for AzureReader<R> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Result<Vec<TraceRow>, InputError> {
        AzureReader::new(text.as_bytes(), "a.csv")?.collect()
    }

    #[test]
    fn parses_rows_and_times() {
        let r = rows("\u{feff}TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 18:15:46.6805900,374,44\r\n2023-11-16 18:15:50.9951690,396,109").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].time_us - r[0].time_us, 4_314_579);
        assert_eq!((r[0].input_len, r[0].output_len), (374, Some(44)));
        assert_eq!(r[1].line, 3);
        let r = rows("TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 18:15:46.6805900,374,44\r\n2023-11-16 18:15:50.9951690,396,109").unwrap();
        assert_eq!(r[1].line, 3, "crlf");
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let e = rows("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,374,44\n2023-11-16 18:15:47.1,-5,44\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.csv:3: column 'ContextTokens': '-5' is negative; expected a non-negative integer"
        );
        let e = rows("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,374,many\n")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.csv:2: column 'GeneratedTokens': 'many' is not a non-negative integer"
        );
        let e = rows("TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,374,44\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("a.csv:2: column 'TIMESTAMP': 'yesterday'"),
            "{e}"
        );
        let e = rows("TIME,ContextTokens,GeneratedTokens\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("a.csv:1: column 'TIMESTAMP': column missing"),
            "{e}"
        );
        let e = rows("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,374\n")
            .unwrap_err();
        assert_eq!(e.to_string(), "a.csv:2: has 2 fields, the header has 3");
    }
}

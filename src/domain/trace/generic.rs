//! Generic traces: a CSV (with a header) or JSONL file plus a column mapping (`trace.columns`): a time column
//! in s, ms, us or as a date-time, a prompt-length column, an optional output-length column and an optional
//! session column. Replays your own logs and processed traces (e.g. `arrived_at,num_prefill_tokens,
//! num_decode_tokens`) without code. The CSV reader here also serves BurstGPT.

use std::io::{BufRead, Read};

use serde_json::Value;

use super::azure::{csv_error, header_index};
use super::rows::{RowReader, TraceRow, json_len, parse_datetime_us, parse_f64, parse_len};
use super::spec::{TimestampUnit, TraceColumns, TraceFormat, TraceSpec};
use crate::domain::bom::strip_bom;
use crate::domain::dataset::SessionId;
use crate::domain::files::InputError;

/// Converts a time value in `unit` to microseconds.
fn time_us_of(raw: &[u8], unit: TimestampUnit) -> Result<i64, String> {
    let factor = match unit {
        TimestampUnit::Datetime => {
            return parse_datetime_us(raw).ok_or_else(|| {
                format!(
                    "'{}' is not a date-time like 2024-05-01 12:00:00.123 or 2024-05-01T12:00:00Z",
                    String::from_utf8_lossy(raw.trim_ascii())
                )
            });
        }
        TimestampUnit::S => 1e6,
        TimestampUnit::Ms => 1e3,
        TimestampUnit::Us => 1.0,
    };
    let x = parse_f64(raw)?;
    let us = x * factor;
    if us.abs() > 9.0e18 {
        return Err(format!("{x} is out of range"));
    }
    Ok(us.round() as i64)
}

fn session_of(raw: &[u8]) -> Option<SessionId> {
    let b = raw.trim_ascii();
    if b.is_empty() {
        return None;
    }
    let s = String::from_utf8_lossy(b).into_owned();
    match s.parse::<i64>() {
        Ok(n) => Some(SessionId::Int(n.into())),
        Err(_) => Some(SessionId::Str(s)),
    }
}

/// A column of a CSV mapping: its index and name.
#[derive(Debug, Clone)]
pub(crate) struct Col {
    idx: usize,
    name: String,
}

impl Col {
    /// The column `name` of header `h`; the error names the missing column.
    pub(crate) fn find(h: &csv::ByteRecord, name: &str, file: &str) -> Result<Self, InputError> {
        Ok(Self {
            idx: header_index(h, name, file)?,
            name: name.to_string(),
        })
    }

    /// The column `name` of header `h`, when present.
    pub(crate) fn find_opt(h: &csv::ByteRecord, name: &str) -> Option<Self> {
        h.iter()
            .position(|x| strip_bom(x).trim_ascii() == name.as_bytes())
            .map(|idx| Self {
                idx,
                name: name.to_string(),
            })
    }
}

/// A row filter: keep rows whose column equals `want`; counts the dropped rows.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    pub(crate) col: Col,
    pub(crate) want: String,
    pub(crate) dropped: u64,
}

/// Streaming reader of a column-mapped CSV trace.
pub struct CsvRows<R: Read> {
    rdr: csv::Reader<R>,
    rec: csv::ByteRecord,
    file: String,
    time: Col,
    unit: TimestampUnit,
    input: Col,
    output: Option<Col>,
    session: Option<Col>,
    pub(crate) filters: Vec<Filter>,
    pub(crate) drop_failed: bool,
    pub(crate) failed: u64,
    done: bool,
}

impl<R: Read> CsvRows<R> {
    /// Opens `r` and reads its header.
    pub fn new(r: R, file: &str) -> Result<(Self, csv::ByteRecord), InputError> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            // Records end at '\n' only: a '\r' of CRLF files stays in the last field (fields are trimmed),
            // and line numbers in errors stay right (with CRLF terminators they lag by one).
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(1 << 16)
            .from_reader(r);
        let headers = rdr.byte_headers().map_err(|e| csv_error(file, e))?.clone();
        if headers.is_empty() {
            return Err(InputError::file(file, "is empty; expected a header row"));
        }
        let placeholder = Col {
            idx: 0,
            name: String::new(),
        };
        Ok((
            Self {
                rdr,
                rec: csv::ByteRecord::new(),
                file: file.to_string(),
                time: placeholder.clone(),
                unit: TimestampUnit::S,
                input: placeholder,
                output: None,
                session: None,
                filters: Vec::new(),
                drop_failed: false,
                failed: 0,
                done: false,
            },
            headers,
        ))
    }

    /// Sets the column mapping.
    pub(crate) fn map(
        mut self,
        time: Col,
        unit: TimestampUnit,
        input: Col,
        output: Option<Col>,
        session: Option<Col>,
    ) -> Self {
        self.time = time;
        self.unit = unit;
        self.input = input;
        self.output = output;
        self.session = session;
        self
    }

    /// The row in `self.rec`; `Ok(None)` when a filter drops it.
    fn row(&mut self) -> Result<Option<TraceRow>, InputError> {
        let line = self.rec.position().map(|p| p.line()).unwrap_or(0);
        let rec = &self.rec;
        let field = |c: &Col| rec.get(c.idx).unwrap_or(b"");
        for f in &mut self.filters {
            if field(&f.col).trim_ascii() != f.want.as_bytes() {
                f.dropped += 1;
                return Ok(None);
            }
        }
        let at = |c: &Col, why: String| InputError::at(&self.file, line, Some(&c.name), why);
        let time_us = time_us_of(field(&self.time), self.unit).map_err(|w| at(&self.time, w))?;
        let input_len = parse_len(field(&self.input)).map_err(|w| at(&self.input, w))?;
        let output_len = match &self.output {
            Some(c) => Some(parse_len(field(c)).map_err(|w| at(c, w))?),
            None => None,
        };
        if self.drop_failed && output_len == Some(0) {
            self.failed += 1;
            return Ok(None);
        }
        Ok(Some(TraceRow {
            line,
            time_us,
            input_len,
            output_len,
            session: self.session.as_ref().and_then(|c| session_of(field(c))),
            hash_ids: Vec::new(),
        }))
    }
}

impl<R: Read> Iterator for CsvRows<R> {
    type Item = Result<TraceRow, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.rdr.read_byte_record(&mut self.rec) {
                Ok(true) => match self.row() {
                    Ok(Some(r)) => return Some(Ok(r)),
                    Ok(None) => continue,
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                },
                Ok(false) => self.done = true,
                Err(e) => {
                    self.done = true;
                    return Some(Err(csv_error(&self.file, e)));
                }
            }
        }
        None
    }
}

impl<R: Read> RowReader for CsvRows<R> {
    fn notes(&self) -> Vec<String> {
        let mut notes: Vec<String> = self
            .filters
            .iter()
            .filter(|f| f.dropped > 0)
            .map(|f| {
                format!(
                    "{} rows whose '{}' is not '{}' were skipped",
                    f.dropped, f.col.name, f.want
                )
            })
            .collect();
        if self.failed > 0 {
            notes.push(format!(
                "{} failed requests (0 response tokens) were skipped",
                self.failed
            ));
        }
        notes
    }
}

/// Streaming reader of a column-mapped JSONL trace.
pub struct JsonlRows<R: BufRead> {
    r: R,
    buf: Vec<u8>,
    line: u64,
    file: String,
    cols: TraceColumns,
    done: bool,
}

impl<R: BufRead> JsonlRows<R> {
    fn parse(&self) -> Result<TraceRow, InputError> {
        let at = |f: Option<&str>, why: String| InputError::at(&self.file, self.line, f, why);
        let v: Value = serde_json::from_slice(&self.buf)
            .map_err(|e| at(None, format!("not valid JSON: {e}")))?;
        let Value::Object(o) = v else {
            return Err(at(None, "expected a JSON object".into()));
        };
        let c = &self.cols;
        let tcol = c.timestamp.as_str();
        let time_us = match o.get(tcol) {
            None | Some(Value::Null) => return Err(at(Some(tcol), "is missing".into())),
            Some(Value::Number(n)) => time_us_of(n.to_string().as_bytes(), c.timestamp_unit),
            Some(Value::String(s)) => time_us_of(s.as_bytes(), c.timestamp_unit),
            Some(other) => Err(format!("must be a number or a string, got {other}")),
        }
        .map_err(|w| at(Some(tcol), w))?;
        let input_len = json_len(o.get(&c.input)).map_err(|w| at(Some(&c.input), w))?;
        let output_len = match &c.output {
            Some(col) => Some(json_len(o.get(col)).map_err(|w| at(Some(col), w))?),
            None => None,
        };
        let session = match c.session.as_ref().and_then(|col| o.get(col)) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(SessionId::Int(n.clone())),
            Some(Value::String(s)) => Some(SessionId::Str(s.clone())),
            Some(other) => Some(SessionId::Str(other.to_string())),
        };
        Ok(TraceRow {
            line: self.line,
            time_us,
            input_len,
            output_len,
            session,
            hash_ids: Vec::new(),
        })
    }
}

impl<R: BufRead> Iterator for JsonlRows<R> {
    type Item = Result<TraceRow, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            match self.r.read_until(b'\n', &mut self.buf) {
                Ok(0) => self.done = true,
                Ok(_) => {
                    self.line += 1;
                    if self.buf.trim_ascii().is_empty() {
                        continue;
                    }
                    let r = self.parse();
                    self.done = r.is_err();
                    return Some(r);
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(InputError::at(
                        &self.file,
                        self.line + 1,
                        None,
                        format!("cannot read: {e}"),
                    )));
                }
            }
        }
        None
    }
}

impl<R: BufRead> RowReader for JsonlRows<R> {}

/// The format of a generic trace: as given, else from the file name.
pub fn format_of(t: &TraceSpec) -> TraceFormat {
    t.format.unwrap_or_else(|| {
        let f = t.file.to_ascii_lowercase();
        if f.ends_with(".jsonl") || f.ends_with(".json") || f.ends_with(".ndjson") {
            TraceFormat::Jsonl
        } else {
            TraceFormat::Csv
        }
    })
}

/// Opens a generic trace with its column mapping.
pub fn open<R: BufRead + 'static>(
    r: R,
    file: &str,
    t: &TraceSpec,
) -> Result<Box<dyn RowReader>, InputError> {
    let cols = t
        .columns
        .clone()
        .ok_or_else(|| InputError::file(file, "trace.columns is required for generic traces"))?;
    Ok(match format_of(t) {
        TraceFormat::Jsonl => Box::new(JsonlRows {
            r,
            buf: Vec::with_capacity(1024),
            line: 0,
            file: file.to_string(),
            cols,
            done: false,
        }),
        TraceFormat::Csv => {
            let (rows, h) = CsvRows::new(r, file)?;
            let output = match &cols.output {
                Some(c) => Some(Col::find(&h, c, file)?),
                None => None,
            };
            let session = match &cols.session {
                Some(c) => Some(Col::find(&h, c, file)?),
                None => None,
            };
            Box::new(rows.map(
                Col::find(&h, &cols.timestamp, file)?,
                cols.timestamp_unit,
                Col::find(&h, &cols.input, file)?,
                output,
                session,
            ))
        }
    })
}

//! The rows every trace reader yields, and the field parsers the readers share.

use serde_json::Value;

use crate::domain::dataset::SessionId;
use crate::domain::date::days_since_epoch;
use crate::domain::files::InputError;

/// One request of a trace, as read.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRow {
    /// 1-based line (CSV: record line) in the file.
    pub line: u64,
    /// Absolute time in microseconds (epoch for date-times, else from the trace's own zero).
    pub time_us: i64,
    /// Prompt length, tokens.
    pub input_len: u32,
    /// Output length, tokens (None when the trace has no output column).
    pub output_len: Option<u32>,
    /// Session id, when the trace has one.
    pub session: Option<SessionId>,
    /// Mooncake KV-block hash ids (empty for other formats).
    pub hash_ids: Vec<u64>,
}

/// A streaming reader of trace rows.
pub trait RowReader: Iterator<Item = Result<TraceRow, InputError>> {
    /// Notes about rows the reader dropped (filters), for the summary.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}
// ---------------------------------------------------------------------------------------------------------
// Field parsing shared by the readers.

/// Parses a token length: a non-negative integer (an integral float like `512.0` is accepted).
pub fn parse_len(raw: &[u8]) -> Result<u32, String> {
    let b = raw.trim_ascii();
    if b.is_empty() {
        return Err("is empty; expected a non-negative integer".into());
    }
    let mut v: u64 = 0;
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        v = v * 10 + (b[i] - b'0') as u64;
        if v > u32::MAX as u64 {
            return Err(format!("'{}' is too large", String::from_utf8_lossy(b)));
        }
        i += 1;
    }
    if i == b.len() {
        return Ok(v as u32);
    }
    // Not a plain integer: accept integral floats, name negatives and garbage.
    let s = String::from_utf8_lossy(b);
    match s.parse::<f64>() {
        Ok(x) if x < 0.0 => Err(format!(
            "'{s}' is negative; expected a non-negative integer"
        )),
        Ok(x) if x.fract() == 0.0 && x <= u32::MAX as f64 => Ok(x as u32),
        _ => Err(format!("'{s}' is not a non-negative integer")),
    }
}

/// A token length from a JSON value (number or numeric string).
pub fn json_len(v: Option<&Value>) -> Result<u32, String> {
    match v {
        None | Some(Value::Null) => Err("is missing".into()),
        Some(Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                u32::try_from(u).map_err(|_| format!("{u} is too large"))
            } else {
                parse_len(n.to_string().as_bytes())
            }
        }
        Some(Value::String(s)) => parse_len(s.as_bytes()),
        Some(other) => Err(format!("must be a number, got {other}")),
    }
}

/// Parses a number (seconds, ms, ...) as f64.
pub fn parse_f64(raw: &[u8]) -> Result<f64, String> {
    let s = std::str::from_utf8(raw.trim_ascii()).map_err(|_| "is not UTF-8".to_string())?;
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(format!("'{s}' is not a number")),
    }
}

/// Parses `YYYY-MM-DD[ T]HH:MM:SS[.fraction][Z|±HH:MM]` into microseconds since the Unix epoch (UTC).
pub fn parse_datetime_us(raw: &[u8]) -> Option<i64> {
    let b = raw.trim_ascii();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (c - b'0') as i64;
        }
        Some(v)
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b' ' || b[10] == b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        let mut scale = 100_000i64;
        while i < b.len() && b[i].is_ascii_digit() {
            micros += (b[i] - b'0') as i64 * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let mut offset_s = 0i64;
    if i < b.len() {
        match b[i] {
            b'Z' | b'z' if i + 1 == b.len() => {}
            b'+' | b'-' if b.len() == i + 6 && b[i + 3] == b':' => {
                let sign = if b[i] == b'-' { -1 } else { 1 };
                offset_s = sign * (num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60);
            }
            _ => return None,
        }
    }
    // Any day 1..=31 is accepted, one past the month's end rolling over (2023-02-31 is 2023-03-03).
    let days = days_since_epoch(y, mo, 1)? + d - 1;
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset_s;
    Some(secs * 1_000_000 + micros)
}

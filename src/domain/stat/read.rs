//! Reading the Grafana CSV exports: traffic, length percentiles and byte counters, joined on their time.

use std::collections::HashMap;
use std::io::Read;

use super::fit::LogNormal;
use super::spec::StatTraceType;
use super::time::parse_time;
use crate::domain::bom::strip_bom_str;
use crate::domain::files::InputError;

/// A named CSV input, read as a stream.
pub struct CsvInput<'a> {
    /// The name used in errors (as given in the spec).
    pub name: &'a str,
    /// The content.
    pub reader: Box<dyn Read + 'a>,
}

impl<'a> CsvInput<'a> {
    /// A CSV held in memory.
    pub fn text(name: &'a str, text: &'a str) -> Self {
        Self {
            name,
            reader: Box::new(text.as_bytes()),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// CSV reading

/// A CSV file read row by row (nothing but the header is kept).
pub(super) struct Csv<'a> {
    pub(super) name: String,
    pub(super) headers: Vec<String>,
    pub(super) rd: csv::Reader<Box<dyn Read + 'a>>,
    pub(super) rows: usize,
}

pub(super) fn csv_error(name: &str, e: &csv::Error) -> InputError {
    let line = e.position().map_or(1, |p| p.line());
    let why = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("has {len} cells, the header has {expected_len}"),
        _ => e.to_string(),
    };
    InputError::at(name, line, None, why)
}

impl<'a> Csv<'a> {
    pub(super) fn open(input: CsvInput<'a>) -> Result<Self, InputError> {
        let name = input.name;
        let mut rd = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .from_reader(input.reader);
        let mut headers: Vec<String> = rd
            .headers()
            .map_err(|e| csv_error(name, &e))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        if let Some(h) = headers.first_mut() {
            *h = strip_bom_str(h).trim().to_string();
        }
        if headers.iter().all(String::is_empty) {
            return Err(InputError::file(name, "is empty (no header row)"));
        }
        Ok(Self {
            name: name.to_string(),
            headers,
            rd,
            rows: 0,
        })
    }

    /// Reads the next non-blank row into `rec` and returns its line; None at the end of the file (an error
    /// when the file had no data row at all).
    pub(super) fn next_row(
        &mut self,
        rec: &mut csv::StringRecord,
    ) -> Result<Option<u64>, InputError> {
        loop {
            let more = self
                .rd
                .read_record(rec)
                .map_err(|e| csv_error(&self.name, &e))?;
            if !more {
                if self.rows == 0 {
                    return Err(InputError::file(&self.name, "has no data rows"));
                }
                return Ok(None);
            }
            if rec.iter().all(str::is_empty) {
                continue;
            }
            self.rows += 1;
            return Ok(Some(rec.position().map_or(0, |p| p.line())));
        }
    }

    pub(super) fn column(&self, want: &str) -> Option<usize> {
        self.headers
            .iter()
            .position(|h| h.eq_ignore_ascii_case(want))
    }

    /// A non-negative number.
    pub(super) fn number(&self, line: u64, col: usize, cell: &str) -> Result<f64, InputError> {
        let header = self.headers[col].as_str();
        let v: f64 = cell.parse().map_err(|_| {
            InputError::at(
                &self.name,
                line,
                Some(header),
                format!("'{cell}' is not a number"),
            )
        })?;
        if !v.is_finite() {
            return Err(InputError::at(
                &self.name,
                line,
                Some(header),
                format!("'{cell}' is not a finite number"),
            ));
        }
        if v < 0.0 {
            return Err(InputError::at(
                &self.name,
                line,
                Some(header),
                format!("{cell} is negative"),
            ));
        }
        Ok(v)
    }

    pub(super) fn time(&self, line: u64, col: usize, cell: &str) -> Result<i64, InputError> {
        parse_time(cell).ok_or_else(|| {
            InputError::at(
                &self.name,
                line,
                Some(self.headers[col].as_str()),
                format!("'{cell}' is not a time (epoch ms or YYYY-MM-DD HH:MM:SS)"),
            )
        })
    }
}

/// A percentile column name `P<q>` → q/100, for 0 < q < 100.
pub(super) fn percentile_of(header: &str) -> Option<f64> {
    let rest = header.strip_prefix(['P', 'p'])?;
    let q: f64 = rest.parse().ok()?;
    (q > 0.0 && q < 100.0).then_some(q / 100.0)
}

/// One length row: its time (when the file has a `Time` column) and the fitted distribution.
pub(super) struct LengthRow {
    pub(super) line: u64,
    pub(super) time: Option<i64>,
    pub(super) dist: LogNormal,
}

pub(super) fn read_percentiles(mut csv: Csv<'_>, scale: f64) -> Result<Vec<LengthRow>, InputError> {
    let time_col = csv.column("Time");
    let mut cols: Vec<(usize, f64)> = csv
        .headers
        .iter()
        .enumerate()
        .filter_map(|(i, h)| percentile_of(h).map(|p| (i, p)))
        .collect();
    if cols.is_empty() {
        return Err(InputError::at(
            &csv.name,
            1,
            None,
            "no percentile columns (expected names like P50, P70, P90, P99)",
        ));
    }
    cols.sort_by(|a, b| a.1.total_cmp(&b.1));
    if let Some(w) = cols.windows(2).find(|w| w[0].1 == w[1].1) {
        return Err(InputError::at(
            &csv.name,
            1,
            Some(csv.headers[w[1].0].as_str()),
            "the same percentile appears twice",
        ));
    }
    let mut out = Vec::new();
    let mut points = Vec::with_capacity(cols.len());
    let mut rec = csv::StringRecord::new();
    while let Some(line) = csv.next_row(&mut rec)? {
        points.clear();
        let mut prev: Option<(usize, f64)> = None;
        for &(c, p) in &cols {
            let v = csv.number(line, c, rec.get(c).unwrap_or(""))?;
            if let Some((pc, pv)) = prev
                && v < pv
            {
                return Err(InputError::at(
                    &csv.name,
                    line,
                    Some(csv.headers[c].as_str()),
                    format!(
                        "percentiles must not decrease: {} = {v} is below {} = {pv}",
                        csv.headers[c], csv.headers[pc]
                    ),
                ));
            }
            prev = Some((c, v));
            points.push((p, v / scale));
        }
        let time = match time_col {
            Some(tc) => Some(csv.time(line, tc, rec.get(tc).unwrap_or(""))?),
            None => None,
        };
        out.push(LengthRow {
            line,
            time,
            dist: LogNormal::fit(&points),
        });
    }
    Ok(out)
}

/// A traffic row: time (if the file has a `Time` column) and rate.
pub(super) struct TrafficRow {
    pub(super) line: u64,
    pub(super) time: Option<i64>,
    pub(super) rate: f64,
}

pub(super) fn read_traffic(
    mut csv: Csv<'_>,
    kind: StatTraceType,
) -> Result<Vec<TrafficRow>, InputError> {
    let time_col = csv.column("Time");
    let rate_col = match kind {
        StatTraceType::Maas => csv.column("Success").ok_or_else(|| {
            InputError::at(
                &csv.name,
                1,
                Some("Success"),
                "missing (maas traffic files have Time, Total, Success, 4xx Error columns)",
            )
        })?,
        StatTraceType::Cloudide => (0..csv.headers.len())
            .find(|&i| Some(i) != time_col)
            .ok_or_else(|| {
                InputError::at(&csv.name, 1, None, "no rate column (expected Time,<rate>)")
            })?,
    };
    let mut out = Vec::new();
    let mut rec = csv::StringRecord::new();
    while let Some(line) = csv.next_row(&mut rec)? {
        let cell = rec.get(rate_col).unwrap_or("");
        let rate = if kind == StatTraceType::Cloudide && is_undefined(cell) {
            0.0
        } else {
            csv.number(line, rate_col, cell)?
        };
        let time = match time_col {
            Some(tc) => Some(csv.time(line, tc, rec.get(tc).unwrap_or(""))?),
            None => None,
        };
        out.push(TrafficRow { line, time, rate });
    }
    Ok(out)
}

pub(super) fn is_undefined(cell: &str) -> bool {
    cell.is_empty() || cell.eq_ignore_ascii_case("undefined")
}

/// cloudide: per row, the summed byte rates of the columns starting with `prefix` (`undefined`/empty = 0).
pub(super) fn read_bytes(
    mut csv: Csv<'_>,
    prefix: &str,
) -> Result<Vec<(u64, Option<i64>, f64)>, InputError> {
    let time_col = csv.column("Time");
    let cols: Vec<usize> = csv
        .headers
        .iter()
        .enumerate()
        .filter(|(_, h)| h.to_ascii_lowercase().starts_with(prefix))
        .map(|(i, _)| i)
        .collect();
    if cols.is_empty() {
        return Err(InputError::at(
            &csv.name,
            1,
            None,
            format!(
                "no '{prefix}' columns (expected Time,recv_bytes,sent_bytes or recv_bytes.rate@… columns)"
            ),
        ));
    }
    let mut out = Vec::new();
    let mut rec = csv::StringRecord::new();
    while let Some(line) = csv.next_row(&mut rec)? {
        let mut sum = 0.0;
        for &c in &cols {
            let cell = rec.get(c).unwrap_or("");
            if !is_undefined(cell) {
                sum += csv.number(line, c, cell)?;
            }
        }
        let time = match time_col {
            Some(tc) => Some(csv.time(line, tc, rec.get(tc).unwrap_or(""))?),
            None => None,
        };
        out.push((line, time, sum));
    }
    Ok(out)
}

/// For each traffic row, the index of the matching row of another file: by `Time` when both files have one,
/// else by position (same row count required). Every row of both files must be matched.
pub(super) fn join(
    traffic_name: &str,
    traffic: &[TrafficRow],
    other_name: &str,
    other: &[(u64, Option<i64>)],
) -> Result<Vec<usize>, InputError> {
    let by_time = traffic.first().is_some_and(|r| r.time.is_some())
        && other.first().is_some_and(|r| r.1.is_some());
    if !by_time {
        if other.len() != traffic.len() {
            return Err(InputError::file(
                other_name,
                format!(
                    "has {} rows but {traffic_name} has {}; without Time columns rows are matched by position",
                    other.len(),
                    traffic.len()
                ),
            ));
        }
        return Ok((0..traffic.len()).collect());
    }
    let mut index: HashMap<i64, usize> = HashMap::with_capacity(other.len());
    for (i, (line, t)) in other.iter().enumerate() {
        let t = t.expect("every row has a time");
        if let Some(&j) = index.get(&t) {
            return Err(InputError::at(
                other_name,
                *line,
                Some("Time"),
                format!("the same time as line {}", other[j].0),
            ));
        }
        index.insert(t, i);
    }
    let mut used = vec![false; other.len()];
    let mut out = Vec::with_capacity(traffic.len());
    for r in traffic {
        let t = r.time.expect("every row has a time");
        let Some(&j) = index.get(&t) else {
            return Err(InputError::at(
                traffic_name,
                r.line,
                Some("Time"),
                format!("{other_name} has no row with this time"),
            ));
        };
        used[j] = true;
        out.push(j);
    }
    if let Some(j) = used.iter().position(|u| !u) {
        return Err(InputError::at(
            other_name,
            other[j].0,
            Some("Time"),
            format!("{traffic_name} has no row with this time"),
        ));
    }
    Ok(out)
}

//! BurstGPT traces: CSV `Timestamp,Session ID,Elapsed time,Model,Request tokens,Response tokens,Total tokens,
//! Log Type` (the release format; `Timestamp` in seconds since the trace start). `Session ID` and
//! `Elapsed time` are optional (older releases lack them). Rows can be filtered by `Model` and `Log Type`;
//! failed requests (0 response tokens) are dropped unless `keep_failed`. A `Session ID` becomes the
//! request's `session_id`.

use std::io::Read;

use super::generic::{Col, CsvRows, Filter};
use super::spec::{TimestampUnit, TraceSpec};
use crate::domain::files::InputError;

/// Opens a BurstGPT CSV with the filters of `t`.
pub struct BurstReader;

impl BurstReader {
    /// Reads the header and sets up the mapping and filters.
    #[allow(clippy::new_ret_no_self)]
    pub fn new<R: Read>(r: R, file: &str, t: &TraceSpec) -> Result<CsvRows<R>, InputError> {
        let (rows, h) = CsvRows::new(r, file)?;
        let time = Col::find(&h, "Timestamp", file)?;
        let input = Col::find(&h, "Request tokens", file)?;
        let output = Col::find(&h, "Response tokens", file)?;
        let session = Col::find_opt(&h, "Session ID");
        let mut rows = rows.map(time, TimestampUnit::S, input, Some(output), session);
        if let Some(m) = &t.model {
            rows.filters.push(Filter {
                col: Col::find(&h, "Model", file)?,
                want: m.clone(),
                dropped: 0,
            });
        }
        if let Some(l) = &t.log_type {
            rows.filters.push(Filter {
                col: Col::find(&h, "Log Type", file)?,
                want: l.clone(),
                dropped: 0,
            });
        }
        rows.drop_failed = !t.keep_failed;
        Ok(rows)
    }
}

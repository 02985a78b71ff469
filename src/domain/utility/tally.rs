//! Bookkeeping of a run: per-input counts ([`Tally`]) and the output side ([`Out`]: writer, counters, the
//! cancel poll).

use std::path::Path;

use super::options::{InputReport, OutputReport, UtilityError, io_err};
use super::read::{EntryReader, Layout, MAX_TIMESTAMP_MS, RawEntry};
use super::write::EntryWriter;
use crate::domain::files::InputError;

/// How often (in entries) the cancel flag is polled.
pub(super) const CANCEL_EVERY: u64 = 1024;

/// Per-input bookkeeping.
pub(super) struct Tally {
    pub(super) name: String,
    pub(super) layout: Option<Layout>,
    pub(super) entries: u64,
    pub(super) requests: u64,
    pub(super) prev: Option<u64>,
    pub(super) max: Option<u64>,
    pub(super) sorted: bool,
    pub(super) nan: u64,
}

impl Tally {
    pub(super) fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            layout: None,
            entries: 0,
            requests: 0,
            prev: None,
            max: None,
            sorted: true,
            nan: 0,
        }
    }

    pub(super) fn add(&mut self, e: &RawEntry) {
        self.entries += 1;
        self.requests += e.requests().len() as u64;
        if self.prev.is_some_and(|p| e.timestamp < p) {
            self.sorted = false;
        }
        self.prev = Some(e.timestamp);
        self.max = Some(self.max.map_or(e.timestamp, |m| m.max(e.timestamp)));
    }

    pub(super) fn finish<R: std::io::BufRead>(&mut self, r: &EntryReader<R>) {
        self.layout = r.layout();
        self.nan = r.nan_replaced();
    }

    pub(super) fn report(&self) -> InputReport {
        InputReport {
            name: self.name.clone(),
            layout: match self.layout {
                Some(Layout::JsonArray) => "json",
                _ => "jsonl",
            },
            entries: self.entries,
            requests: self.requests,
            sorted: self.sorted,
            non_finite_as_null: self.nan,
        }
    }
}

/// The output side: writer plus counters and the cancel poll.
pub(super) struct Out<'a> {
    pub(super) w: EntryWriter,
    pub(super) requests: u64,
    pub(super) first: Option<u64>,
    pub(super) last: Option<u64>,
    pub(super) cancel: &'a (dyn Fn() -> bool + Sync),
    pub(super) dest: &'a Path,
}

impl Out<'_> {
    pub(super) fn write(&mut self, e: &RawEntry) -> Result<(), UtilityError> {
        if self.w.entries().is_multiple_of(CANCEL_EVERY) && (self.cancel)() {
            return Err(UtilityError::Cancelled);
        }
        self.w.write(&e.fields).map_err(io_err(self.dest))?;
        self.requests += e.requests().len() as u64;
        self.first.get_or_insert(e.timestamp);
        self.last = Some(self.last.map_or(e.timestamp, |l| l.max(e.timestamp)));
        Ok(())
    }

    pub(super) fn commit(self) -> Result<OutputReport, UtilityError> {
        let entries = self.w.entries();
        let bytes = self.w.commit().map_err(io_err(self.dest))?;
        Ok(OutputReport {
            entries,
            requests: self.requests,
            first_timestamp_ms: self.first,
            last_timestamp_ms: self.last,
            bytes,
        })
    }
}

pub(super) fn checked_ts(
    e: &RawEntry,
    file: &str,
    v: Option<u64>,
    why: &str,
) -> Result<u64, InputError> {
    v.filter(|t| *t <= MAX_TIMESTAMP_MS).ok_or_else(|| {
        InputError::at(
            file,
            e.line,
            Some("timestamp"),
            format!(
                "{why} takes timestamp {} out of range [0, 2^53]",
                e.timestamp
            ),
        )
    })
}

//! `merge`: a k-way merge of the inputs on their timestamps; entries with equal timestamps are combined.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::BufReader;
use std::path::Path;

use serde_json::Value;

use super::options::{Input, OutputOptions, OutputReport, UtilityError, io_err};
use super::read::{EntryReader, RawEntry};
use super::tally::{Out, Tally};
use super::write::EntryWriter;

pub(super) enum MergeError {
    Unsorted {
        input: usize,
        line: u64,
        prev: u64,
        ts: u64,
    },
    Other(UtilityError),
}

impl<E: Into<UtilityError>> From<E> for MergeError {
    fn from(e: E) -> Self {
        MergeError::Other(e.into())
    }
}

pub(super) enum Source {
    Stream(EntryReader<BufReader<std::fs::File>>),
    Memory(std::vec::IntoIter<RawEntry>),
}

/// A heap item ordered by (timestamp, input index), smallest first.
pub(super) struct Head {
    pub(super) ts: u64,
    pub(super) input: usize,
    pub(super) entry: RawEntry,
}

impl PartialEq for Head {
    fn eq(&self, o: &Self) -> bool {
        (self.ts, self.input) == (o.ts, o.input)
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Head {
    fn cmp(&self, o: &Self) -> Ordering {
        (o.ts, o.input).cmp(&(self.ts, self.input))
    }
}

/// Appends `later` into `first` (same timestamp): requests appended, new keys added, lists concatenated,
/// other differing values counted in `conflicts` (the first value is kept).
pub(super) fn combine(
    first: &mut RawEntry,
    later: RawEntry,
    conflicts: &mut BTreeMap<String, u64>,
) {
    for (k, v) in later.fields {
        if k == "timestamp" {
            continue;
        }
        match first.fields.get_mut(&k) {
            None => {
                first.fields.insert(k, v);
            }
            Some(Value::Array(a)) => match v {
                Value::Array(b) => a.extend(b),
                _ => *conflicts.entry(k).or_default() += 1,
            },
            Some(existing) => {
                if *existing != v {
                    *conflicts.entry(k).or_default() += 1;
                }
            }
        }
    }
}

/// The next entry of merge input `i`, or an `Unsorted` error when a streamed input goes back in time.
pub(super) fn pull(
    i: usize,
    sources: &mut [Source],
    tallies: &mut [Tally],
) -> Result<Option<Head>, MergeError> {
    let entry = match &mut sources[i] {
        Source::Memory(it) => it.next(),
        Source::Stream(r) => match r.next() {
            None => {
                tallies[i].finish(r);
                None
            }
            Some(e) => {
                let e = e?;
                if let Some(prev) = tallies[i].prev.filter(|p| e.timestamp < *p) {
                    return Err(MergeError::Unsorted {
                        input: i,
                        line: e.line,
                        prev,
                        ts: e.timestamp,
                    });
                }
                tallies[i].add(&e);
                Some(e)
            }
        },
    };
    Ok(entry.map(|entry| Head {
        ts: entry.timestamp,
        input: i,
        entry,
    }))
}

pub(super) fn merge(
    inputs: &[Input],
    in_memory: &[bool],
    dest: &Path,
    output: OutputOptions,
    cancel: &(dyn Fn() -> bool + Sync),
    notes: &mut Vec<String>,
) -> Result<(Vec<Tally>, OutputReport), MergeError> {
    let mut sources = Vec::with_capacity(inputs.len());
    let mut tallies: Vec<Tally> = inputs.iter().map(|i| Tally::new(&i.name)).collect();
    for (i, input) in inputs.iter().enumerate() {
        let reader = EntryReader::open(&input.name, &input.path)?;
        if in_memory[i] {
            let mut reader = reader;
            let mut all: Vec<RawEntry> = reader.by_ref().collect::<Result<_, _>>()?;
            for e in &all {
                tallies[i].add(e);
            }
            tallies[i].finish(&reader);
            all.sort_by_key(|e| e.timestamp);
            sources.push(Source::Memory(all.into_iter()));
        } else {
            sources.push(Source::Stream(reader));
        }
    }
    let w = EntryWriter::create(dest, output.format, output.ascii).map_err(io_err(dest))?;
    let mut out = Out {
        w,
        requests: 0,
        first: None,
        last: None,
        cancel,
        dest,
    };
    let mut heap = BinaryHeap::with_capacity(inputs.len());
    for i in 0..inputs.len() {
        if let Some(h) = pull(i, &mut sources, &mut tallies)? {
            heap.push(h);
        }
    }
    let mut group: Option<RawEntry> = None;
    let mut conflicts = BTreeMap::new();
    let mut combined = 0u64;
    while let Some(Head { ts, input, entry }) = heap.pop() {
        if let Some(next) = pull(input, &mut sources, &mut tallies)? {
            heap.push(next);
        }
        match &mut group {
            Some(g) if g.timestamp == ts => {
                combine(g, entry, &mut conflicts);
                combined += 1;
            }
            _ => {
                if let Some(g) = group.replace(entry) {
                    out.write(&g)?;
                }
            }
        }
    }
    if let Some(g) = group {
        out.write(&g)?;
    }
    let out = out.commit()?;
    if combined > 0 {
        notes.push(format!(
            "{combined} entries were combined into an earlier entry with the same timestamp"
        ));
    }
    for (k, n) in conflicts {
        notes.push(format!(
            "key '{k}': {n} combined entries had a different value; the first entry's value was kept"
        ));
    }
    Ok((tallies, out))
}

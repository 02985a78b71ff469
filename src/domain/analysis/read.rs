//! Framing: JSONL read in large batches whose lines are parsed in parallel (rayon) and folded in file order,
//! or one streaming pass over a JSON array; errors name the file and line.

use std::fmt;
use std::io::BufRead;

use rayon::prelude::*;
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};

use super::acc::Acc;
use super::model::{AnalyzeError, AnalyzeOptions};
use super::parse::{DigestError, Digester, Digests, RawEntry};
use crate::domain::files::InputError;
use crate::domain::json::replace_non_finite;

pub(super) const BATCH_BYTES: usize = 16 << 20;

pub(super) fn analyze_lines(
    reader: impl BufRead,
    opts: &AnalyzeOptions<'_>,
    skipped_lines: u64,
    digester: &Digester<'_>,
    acc: &mut Acc,
) -> Result<(), AnalyzeError> {
    let mut lines_before = skipped_lines;
    let mut pending: Vec<Digests> = Vec::new();
    let pieces = rayon::current_num_threads() * 4;
    let io = |source| AnalyzeError::Io {
        file: opts.name.clone(),
        source,
    };
    crate::domain::layout::for_each_line_chunk(reader, BATCH_BYTES, io, |region| {
        if opts.cancel.is_some_and(|c| c()) {
            return Err(AnalyzeError::Cancelled);
        }
        // Split at newlines into pieces parsed in parallel, folded in order.
        let mut bounds = vec![0usize];
        for i in 1..pieces {
            let target = (region.len() * i / pieces).max(*bounds.last().expect("non-empty"));
            if let Some(p) = region[target..].iter().position(|&b| b == b'\n') {
                let b = target + p + 1;
                if b > *bounds.last().expect("non-empty") && b < region.len() {
                    bounds.push(b);
                }
            }
        }
        bounds.push(region.len());
        // Fold the previous batch while this one is parsed.
        let (folded, parsed) = rayon::join(
            || fold_batch(acc, &mut pending, &mut lines_before, &opts.name),
            || -> Vec<Digests> {
                bounds
                    .windows(2)
                    .collect::<Vec<_>>()
                    .into_par_iter()
                    .map(|w| digest_chunk(&region[w[0]..w[1]], digester))
                    .collect()
            },
        );
        folded?;
        pending = parsed;
        Ok(())
    })?;
    fold_batch(acc, &mut pending, &mut lines_before, &opts.name)
}

/// Folds parsed chunks in order; the first bad line stops with its file, line and field.
pub(super) fn fold_batch(
    acc: &mut Acc,
    batch: &mut Vec<Digests>,
    lines_before: &mut u64,
    name: &str,
) -> Result<(), AnalyzeError> {
    for d in batch.iter_mut() {
        acc.digests(d);
        if let Some((line, field, why)) = d.error.take() {
            return Err(InputError::at(name, *lines_before + line, field, why).into());
        }
        *lines_before += d.newlines;
    }
    batch.clear();
    Ok(())
}

/// Counts `\n` bytes with byte-wide lane counters (vectorizes well; a lane takes at most 255 per block).
pub(super) fn count_newlines(bytes: &[u8]) -> u64 {
    const LANES: usize = 32;
    let mut total = 0u64;
    for block in bytes.chunks(255 * LANES) {
        let mut acc = [0u8; LANES];
        let mut words = block.chunks_exact(LANES);
        for w in &mut words {
            for (a, &b) in acc.iter_mut().zip(w) {
                *a += (b == b'\n') as u8;
            }
        }
        total += acc.iter().map(|&a| a as u64).sum::<u64>();
        total += words.remainder().iter().filter(|&&b| b == b'\n').count() as u64;
    }
    total
}

/// Digests a run of complete lines: a fast streaming parse, and line by line (with Python's `NaN` repaired)
/// when that fails, to find the offending line.
pub(super) fn digest_chunk(chunk: &[u8], digester: &Digester<'_>) -> Digests {
    let mut out = Digests {
        newlines: count_newlines(chunk),
        ..Default::default()
    };
    let mut stream = serde_json::Deserializer::from_slice(chunk).into_iter::<RawEntry<'_>>();
    let fast = loop {
        match stream.next() {
            None => break true,
            Some(Ok(e)) => {
                if digester.digest(e, &mut out).is_err() {
                    break false;
                }
            }
            Some(Err(_)) => break false,
        }
    };
    if fast {
        return out;
    }
    out.clear();
    for (i, line) in chunk.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Err((field, why)) = parse_line(line, digester, &mut out) {
            out.error = Some((i as u64 + 1, field, why));
            break;
        }
    }
    out
}

pub(super) fn parse_line(
    line: &[u8],
    digester: &Digester<'_>,
    out: &mut Digests,
) -> Result<(), DigestError> {
    match serde_json::from_slice::<RawEntry<'_>>(line) {
        Ok(e) => digester.digest(e, out),
        Err(err) => {
            if let Some((clean, _)) = replace_non_finite(line)
                && let Ok(e) = serde_json::from_slice::<RawEntry<'_>>(&clean)
            {
                return digester.digest(e, out);
            }
            Err((
                None,
                format!("column {}: {}", err.column(), json_reason(&err)),
            ))
        }
    }
}

pub(super) fn analyze_array(
    reader: impl BufRead,
    opts: &AnalyzeOptions<'_>,
    digester: &Digester<'_>,
    acc: &mut Acc,
) -> Result<(), AnalyzeError> {
    struct Seed<'x, 'y> {
        digester: &'x Digester<'y>,
        acc: &'x mut Acc,
        cancel: Option<&'x (dyn Fn() -> bool + Sync)>,
        cancelled: &'x std::cell::Cell<bool>,
    }
    impl<'de> DeserializeSeed<'de> for Seed<'_, '_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }
    impl<'de> Visitor<'de> for Seed<'_, '_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of workload entries")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut d = Digests::default();
            let mut n = 0u64;
            while let Some(e) = seq.next_element::<RawEntry<'de>>()? {
                n += 1;
                if n.is_multiple_of(1024) && self.cancel.is_some_and(|c| c()) {
                    self.cancelled.set(true);
                    return Err(de::Error::custom("cancelled"));
                }
                d.clear();
                self.digester
                    .digest(e, &mut d)
                    .map_err(|(field, why)| match field {
                        Some(f) => de::Error::custom(format!("field '{f}': {why}")),
                        None => de::Error::custom(why),
                    })?;
                self.acc.digests(&mut d);
            }
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_reader(reader);
    let cancelled = std::cell::Cell::new(false);
    let res = Seed {
        digester,
        acc,
        cancel: opts.cancel,
        cancelled: &cancelled,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    if cancelled.get() {
        return Err(AnalyzeError::Cancelled);
    }
    res.map_err(|e| {
        InputError::at(
            opts.name.clone(),
            e.line() as u64,
            None,
            format!("column {}: {}", e.column(), json_reason(&e)),
        )
        .into()
    })
}

/// Splits serde_json's " at line L column C" suffix off its message.
pub(super) fn json_reason(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

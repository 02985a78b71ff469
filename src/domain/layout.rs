//! The one layout detection of workload files, used by both workload readers (the utilities' owned
//! [`EntryReader`](super::utility::read::EntryReader) and the analysis' borrowing parser): JSONL (one entry
//! per line) or one JSON array, told by the first byte after an optional UTF-8 byte order mark and blank
//! space. Also the one chunker of line-oriented input ([`for_each_line_chunk`]), used by the analysis and
//! the collection parser.

use std::io::BufRead;

use super::bom::BOM;

/// Reads `reader` in regions of about `chunk` bytes that end at a newline (a line longer than `chunk`
/// grows its region), and calls `f` with each, in order; the last region (maybe empty, maybe without a final
/// newline) comes at end of input. Read errors go through `io`.
pub fn for_each_line_chunk<E>(
    mut reader: impl std::io::Read,
    chunk: usize,
    io: impl Fn(std::io::Error) -> E,
    mut f: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let chunk = chunk.max(1);
    let mut buf: Vec<u8> = Vec::new();
    let mut filled = 0usize;
    let mut want = chunk;
    let mut eof = false;
    loop {
        if buf.len() < want {
            buf.resize(want, 0);
        }
        while !eof && filled < want {
            match reader.read(&mut buf[filled..want]) {
                Ok(0) => eof = true,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io(e)),
            }
        }
        let end = if eof {
            filled
        } else {
            match buf[..filled].iter().rposition(|&b| b == b'\n') {
                Some(p) => p + 1,
                None => {
                    // A line longer than the chunk: read more of it.
                    want = filled + chunk;
                    continue;
                }
            }
        };
        f(&buf[..end])?;
        buf.copy_within(end..filled, 0);
        filled -= end;
        want = chunk.max(filled + 1);
        if eof && filled == 0 {
            return Ok(());
        }
    }
}

/// How a workload file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One JSON object per line.
    Jsonl,
    /// One JSON array of objects.
    JsonArray,
}

/// Consumes a leading byte order mark and blank space (spaces, tabs, CR, LF) and tells the layout from the
/// next byte, which is left unread (an opening `[` included). Returns `None` for an empty (or blank) file,
/// and the number of newlines skipped so that line numbers stay true. A mark is recognised when the reader's
/// buffer holds it whole (every reader here buffers at least 64 KiB).
pub fn detect(r: &mut impl BufRead) -> std::io::Result<(Option<Layout>, u64)> {
    let mut newlines = 0u64;
    let mut bom_allowed = true;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok((None, newlines));
        }
        if bom_allowed && buf.starts_with(BOM) {
            r.consume(BOM.len());
            bom_allowed = false;
            continue;
        }
        let n = buf
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .unwrap_or(buf.len());
        newlines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        let next = buf.get(n).copied();
        r.consume(n);
        match next {
            Some(b'[') => return Ok((Some(Layout::JsonArray), newlines)),
            Some(0xEF) if bom_allowed => {
                // A mark after blank space; anything else starting with 0xEF is content.
                bom_allowed = false;
                if r.fill_buf()?.starts_with(BOM) {
                    r.consume(BOM.len());
                    continue;
                }
                return Ok((Some(Layout::Jsonl), newlines));
            }
            Some(_) => return Ok((Some(Layout::Jsonl), newlines)),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(b: &[u8]) -> (Option<Layout>, u64, Vec<u8>) {
        let mut r = std::io::BufReader::with_capacity(64, b);
        let (l, n) = detect(&mut r).unwrap();
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut r, &mut rest).unwrap();
        (l, n, rest)
    }

    #[test]
    fn layouts_with_boms_blank_space_and_line_counts() {
        assert_eq!(of(b""), (None, 0, vec![]));
        assert_eq!(of(b" \n\r\n\t"), (None, 2, vec![]));
        assert_eq!(
            of(b"{\"a\":1}\n"),
            (Some(Layout::Jsonl), 0, b"{\"a\":1}\n".to_vec())
        );
        assert_eq!(
            of(b"\xEF\xBB\xBF\n\n[1]"),
            (Some(Layout::JsonArray), 2, b"[1]".to_vec())
        );
        assert_eq!(
            of(b"\n \xEF\xBB\xBF{}"),
            (Some(Layout::Jsonl), 1, b"{}".to_vec())
        );
        // A second mark is not blank space: it starts the content (and the parser reports it).
        assert_eq!(
            of(b"\xEF\xBB\xBF\xEF\xBB\xBF{}"),
            (Some(Layout::Jsonl), 0, b"\xEF\xBB\xBF{}".to_vec())
        );
        // Tiny buffers end (a mark split across refills is then read as content, never looped on).
        for cap in 1..4 {
            let text = b"\n \xEF\xBB\xBF[1]";
            let mut r = std::io::BufReader::with_capacity(cap, &text[..]);
            assert!(detect(&mut r).unwrap().0.is_some());
        }
    }
}

//! The streaming record splitter: a JSON array into its elements, or JSON Lines into lines, each with the
//! line and column where it starts.

use std::io::BufRead;

use crate::domain::bom::{BOM, has_bom};
use crate::domain::files::InputError;

/// Where a record starts.
#[derive(Debug, Clone, Copy)]
pub(super) struct RecordPos {
    pub(super) line: u64,
    pub(super) col: u64,
    /// A JSON Lines record on the last line, with no newline after it (maybe cut off).
    pub(super) last_unterminated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Start,
    Lines,
    Between,
    InElement,
    End,
}

/// What one scanning step found.
pub(super) enum Step {
    /// The buffer was used up without a complete element.
    More,
    /// An element is complete (in `elem`), starting at this position.
    Element(u64, u64),
    /// The array's closing bracket.
    End,
    /// A byte that cannot start an element, at (line, column).
    Unexpected(u8, u64, u64),
}

/// Array scanning state: position, nesting depth, string and escape flags.
pub(super) struct Scanner {
    pub(super) state: State,
    pub(super) line: u64,
    pub(super) col: u64,
    pub(super) depth: u32,
    pub(super) in_string: bool,
    pub(super) escape: bool,
    pub(super) elem_start: (u64, u64),
}

impl Scanner {
    pub(super) fn bump(&mut self, b: u8) {
        if b == b'\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
    }

    /// Scans `buf` from the start; returns the bytes used and what was found.
    pub(super) fn step(&mut self, buf: &[u8], elem: &mut Vec<u8>) -> (usize, Step) {
        let mut i = 0;
        while i < buf.len() {
            if self.state == State::Between {
                let b = buf[i];
                if is_ws(b) || b == b',' {
                    self.bump(b);
                    i += 1;
                } else if b == b']' {
                    self.bump(b);
                    self.state = State::End;
                    return (i + 1, Step::End);
                } else if b == b'{' {
                    self.elem_start = (self.line, self.col);
                    elem.clear();
                    self.state = State::InElement;
                    self.depth = 0;
                    self.in_string = false;
                    self.escape = false;
                } else {
                    return (i, Step::Unexpected(b, self.line, self.col));
                }
                continue;
            }
            let from = i;
            let mut found = false;
            while i < buf.len() {
                let b = buf[i];
                i += 1;
                self.bump(b);
                if self.in_string {
                    if self.escape {
                        self.escape = false;
                    } else if b == b'\\' {
                        self.escape = true;
                    } else if b == b'"' {
                        self.in_string = false;
                    }
                    continue;
                }
                match b {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => {
                        self.depth = self.depth.saturating_sub(1);
                        if self.depth == 0 {
                            found = true;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            elem.extend_from_slice(&buf[from..i]);
            if found {
                self.state = State::Between;
                return (i, Step::Element(self.elem_start.0, self.elem_start.1));
            }
        }
        (i, Step::More)
    }
}

/// Splits a JSON array into its elements, or JSON Lines into lines, streaming.
pub(super) struct Records<R> {
    pub(super) r: R,
    pub(super) name: String,
    pub(super) sc: Scanner,
    pub(super) elem: Vec<u8>,
    pub(super) truncated: bool,
    pub(super) skipped_bytes: u64,
}

pub(super) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl<R: BufRead> Records<R> {
    pub(super) fn new(r: R, name: &str) -> Self {
        Self {
            r,
            name: name.to_string(),
            sc: Scanner {
                state: State::Start,
                line: 1,
                col: 1,
                depth: 0,
                in_string: false,
                escape: false,
                elem_start: (1, 1),
            },
            elem: Vec::with_capacity(1 << 16),
            truncated: false,
            skipped_bytes: 0,
        }
    }

    pub(super) fn io(name: &str, e: std::io::Error) -> InputError {
        InputError::file(name, format!("read error: {e}"))
    }

    /// The next record (its bytes in `self.elem`), or `None` at the end.
    pub(super) fn next_record(&mut self) -> Result<Option<RecordPos>, InputError> {
        loop {
            match self.sc.state {
                State::End => return Ok(None),
                State::Start => {
                    let buf = self.r.fill_buf().map_err(|e| Self::io(&self.name, e))?;
                    if buf.is_empty() {
                        return Err(InputError::file(&self.name, "the file is empty"));
                    }
                    if self.sc.line == 1 && self.sc.col == 1 && has_bom(buf) {
                        self.r.consume(BOM.len());
                        continue;
                    }
                    let skip = buf.iter().take_while(|&&b| is_ws(b)).count();
                    if skip > 0 {
                        for &b in &buf[..skip] {
                            self.sc.bump(b);
                        }
                        self.r.consume(skip);
                        continue;
                    }
                    match buf[0] {
                        b'[' => {
                            self.r.consume(1);
                            self.sc.bump(b'[');
                            self.sc.state = State::Between;
                        }
                        b'{' => self.sc.state = State::Lines,
                        other => {
                            return Err(InputError::at(
                                &self.name,
                                self.sc.line,
                                None,
                                format!(
                                    "expected a JSON array of objects or JSON Lines, found {:?} at column {}",
                                    other as char, self.sc.col
                                ),
                            ));
                        }
                    }
                }
                State::Lines => {
                    self.elem.clear();
                    let n = self
                        .r
                        .read_until(b'\n', &mut self.elem)
                        .map_err(|e| Self::io(&self.name, e))?;
                    if n == 0 {
                        self.sc.state = State::End;
                        return Ok(None);
                    }
                    let line = self.sc.line;
                    let unterminated = !self.elem.ends_with(b"\n");
                    self.sc.line += 1;
                    if self.elem.iter().all(|&b| is_ws(b)) {
                        continue;
                    }
                    return Ok(Some(RecordPos {
                        line,
                        col: 1,
                        last_unterminated: unterminated,
                    }));
                }
                State::Between | State::InElement => {
                    let buf = self.r.fill_buf().map_err(|e| Self::io(&self.name, e))?;
                    if buf.is_empty() {
                        // The file ends inside the array: it was cut off.
                        self.truncated = true;
                        self.skipped_bytes = if self.sc.state == State::InElement {
                            self.elem.len() as u64
                        } else {
                            0
                        };
                        self.sc.state = State::End;
                        return Ok(None);
                    }
                    let (used, step) = self.sc.step(buf, &mut self.elem);
                    self.r.consume(used);
                    match step {
                        Step::More => {}
                        Step::End => return Ok(None),
                        Step::Element(line, col) => {
                            return Ok(Some(RecordPos {
                                line,
                                col,
                                last_unterminated: false,
                            }));
                        }
                        Step::Unexpected(b, line, col) => {
                            return Err(InputError::at(
                                &self.name,
                                line,
                                None,
                                format!(
                                    "expected an object in the array, found {:?} at column {col}",
                                    b as char
                                ),
                            ));
                        }
                    }
                }
            }
        }
    }
}

//! The UTF-8 byte order mark: every reader of text input (collections, workloads, traces, Grafana exports,
//! conversations) skips one at the start of its file, through these helpers.

use std::io::BufRead;

/// The UTF-8 byte order mark.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Whether `b` starts with a byte order mark.
pub fn has_bom(b: &[u8]) -> bool {
    b.starts_with(BOM)
}

/// `b` without a leading byte order mark.
pub fn strip_bom(b: &[u8]) -> &[u8] {
    b.strip_prefix(BOM).unwrap_or(b)
}

/// `s` without a leading byte order mark (`U+FEFF`).
pub fn strip_bom_str(s: &str) -> &str {
    s.strip_prefix('\u{feff}').unwrap_or(s)
}

/// Consumes a byte order mark at the reader's position; returns whether there was one.
pub fn skip_bom(r: &mut impl BufRead) -> std::io::Result<bool> {
    let found = has_bom(r.fill_buf()?);
    if found {
        r.consume(BOM.len());
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_one_mark() {
        assert_eq!(strip_bom(b"\xEF\xBB\xBFab"), b"ab");
        assert_eq!(strip_bom(b"ab"), b"ab");
        assert_eq!(strip_bom(b"\xEF\xBB"), b"\xEF\xBB");
        assert_eq!(strip_bom_str("\u{feff}\u{feff}x"), "\u{feff}x");
        assert!(has_bom("\u{feff}".as_bytes()));
        let mut r = &b"\xEF\xBB\xBF{}"[..];
        assert!(skip_bom(&mut r).unwrap());
        assert_eq!(r, b"{}");
        assert!(!skip_bom(&mut r).unwrap());
        assert_eq!(r, b"{}");
    }
}

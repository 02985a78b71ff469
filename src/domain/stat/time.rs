//! The `Time` column of the Grafana exports.

use crate::domain::date::days_since_epoch;

// ---------------------------------------------------------------------------------------------------------
// Times

/// Parses a Grafana time cell to epoch ms: a number (epoch ms) or `YYYY-M-D[ T]H:M[:S[.fff]]` with an optional
/// `Z` or `±HH[:MM]` offset (no offset = UTC). Returns None when it is neither.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(v) = s.parse::<f64>() {
        return v.is_finite().then_some(v.round() as i64);
    }
    let (date, rest) = s.split_once([' ', 'T'])?;
    let mut dp = date.split(['-', '/']);
    let y: i64 = dp.next()?.parse().ok()?;
    let m: i64 = dp.next()?.parse().ok()?;
    let d: i64 = dp.next()?.parse().ok()?;
    if dp.next().is_some() {
        return None;
    }
    let days = days_since_epoch(y, m, d)?;
    let rest = rest.trim();
    let (clock, offset_min) = if let Some(c) = rest.strip_suffix('Z') {
        (c, 0)
    } else if let Some(i) = rest.rfind(['+', '-']).filter(|&i| i > 0) {
        let (c, off) = rest.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let off = off[1..].replace(':', "");
        if off.len() != 2 && off.len() != 4 {
            return None;
        }
        let h: i64 = off[..2].parse().ok()?;
        let mm: i64 = if off.len() == 4 {
            off[2..].parse().ok()?
        } else {
            0
        };
        (c.trim(), sign * (h * 60 + mm))
    } else {
        (rest, 0)
    };
    let mut cp = clock.split(':');
    let h: i64 = cp.next()?.parse().ok()?;
    let mi: i64 = cp.next()?.parse().ok()?;
    let sec: f64 = match cp.next() {
        Some(v) => v.parse().ok()?,
        None => 0.0,
    };
    if cp.next().is_some()
        || !(0..24).contains(&h)
        || !(0..60).contains(&mi)
        || !(0.0..61.0).contains(&sec)
    {
        return None;
    }
    Some(((days * 24 + h) * 60 + mi - offset_min) * 60_000 + (sec * 1000.0).round() as i64)
}

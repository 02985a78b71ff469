//! The `Time` column of the Grafana exports.

// ---------------------------------------------------------------------------------------------------------
// Times

pub(super) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(super) fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

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
    if dp.next().is_some() || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
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
    let days = days_from_civil(y, m, d);
    Some(((days * 24 + h) * 60 + mi - offset_min) * 60_000 + (sec * 1000.0).round() as i64)
}

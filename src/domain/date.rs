//! Calendar dates (through the `time` crate): the day number of a proleptic Gregorian date, shared by the
//! trace readers and the Grafana export reader.

use time::{Date, Month};

/// The Julian day of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// Days from 1970-01-01 to the date `y-m-d`; None when the date does not exist (month outside 1..=12, day
/// outside the month, year outside -9999..=9999).
pub fn days_since_epoch(y: i64, m: i64, d: i64) -> Option<i64> {
    let month = Month::try_from(u8::try_from(m).ok()?).ok()?;
    let date =
        Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(d).ok()?).ok()?;
    Some(i64::from(date.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The arithmetic this module replaced (H. Hinnant's `days_from_civil`), kept to compare against.
    fn old_days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    fn old_days_in_month(y: i64, m: i64) -> i64 {
        match m {
            2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    #[test]
    fn epoch_is_julian_day_2440588() {
        let epoch = Date::from_calendar_date(1970, Month::January, 1).unwrap();
        assert_eq!(i64::from(epoch.to_julian_day()), UNIX_EPOCH_JULIAN_DAY);
        assert_eq!(days_since_epoch(1970, 1, 1), Some(0));
        assert_eq!(days_since_epoch(2000, 3, 1), Some(11_017));
    }

    #[test]
    fn matches_the_old_arithmetic_on_every_date_of_years_0_to_9999() {
        for y in 0..=9999 {
            for m in 1..=12 {
                for d in 1..=31 {
                    let new = days_since_epoch(y, m, d);
                    if d <= old_days_in_month(y, m) {
                        assert_eq!(new, Some(old_days_from_civil(y, m, d)), "{y}-{m}-{d}");
                    } else {
                        assert_eq!(new, None, "{y}-{m}-{d}");
                    }
                    // The trace readers' lenient form (a day past the month's end rolls over).
                    let lenient = days_since_epoch(y, m, 1).unwrap() + d - 1;
                    assert_eq!(lenient, old_days_from_civil(y, m, d), "{y}-{m}-{d}");
                }
            }
        }
    }

    #[test]
    fn invalid_dates_are_none() {
        for (y, m, d) in [
            (2023, 2, 29),
            (2024, 2, 30),
            (2023, 4, 31),
            (2023, 0, 1),
            (2023, 13, 1),
        ] {
            assert_eq!(days_since_epoch(y, m, d), None, "{y}-{m}-{d}");
        }
        assert_eq!(days_since_epoch(2024, 2, 29), Some(19_782));
        assert_eq!(days_since_epoch(2023, 1, 0), None);
        assert_eq!(days_since_epoch(10_000, 1, 1), None);
    }
}

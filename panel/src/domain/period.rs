//! Billing periods: calendar months in UTC.

use std::str::FromStr;

use serde::Serialize;

use crate::error::{AppError, AppResult};

/// A calendar month in UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Period {
    pub label: String,
    pub start: i64,
    pub end: i64,
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// "2026-11-26 09:41" (UTC) for Unix time `t`.
pub fn human(t: i64) -> String {
    let (y, m, d) = civil(t.div_euclid(86_400));
    let secs = t.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60
    )
}

/// The start (00:00 UTC) of the day `s` names as `YYYY-MM-DD`; `what` names the field.
pub fn day_start(what: &str, s: &str) -> AppResult<i64> {
    let bad = || AppError::Unprocessable(format!("{what}: {s:?} is not a date such as 2026-11-26"));
    let mut parts = s.trim().splitn(3, '-');
    let mut next = |len: usize| -> AppResult<i64> {
        let p = parts.next().filter(|p| p.len() == len).ok_or_else(bad)?;
        p.parse().map_err(|_| bad())
    };
    let (y, m, d) = (next(4)?, next(2)?, next(2)?);
    let days = days_from_civil(y, m, d);
    if !(1..=12).contains(&m) || civil(days) != (y, m, d) {
        return Err(bad());
    }
    Ok(days * 86_400)
}

/// (year, month, day) of a day count since 1970-01-01.
pub fn civil(days: i64) -> (i64, i64, i64) {
    let (y, m) = civil_from_days(days);
    (y, m, days - days_from_civil(y, m, 1) + 1)
}

/// (year, month) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month)
}

impl Period {
    pub fn month(year: i64, month: i64) -> Period {
        let (ny, nm) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        Period {
            label: format!("{year:04}-{month:02}"),
            start: days_from_civil(year, month, 1) * 86_400,
            end: days_from_civil(ny, nm, 1) * 86_400,
        }
    }

    /// The month that contains Unix time `t`.
    pub fn containing(t: i64) -> Period {
        let (y, m) = civil_from_days(t.div_euclid(86_400));
        Period::month(y, m)
    }

    /// The month before this one.
    pub fn previous(&self) -> Period {
        Period::containing(self.start - 1)
    }

    pub fn has_ended(&self, now: i64) -> bool {
        now >= self.end
    }
}

impl FromStr for Period {
    type Err = AppError;
    fn from_str(s: &str) -> AppResult<Period> {
        let bad = || {
            AppError::Unprocessable(format!(
                "{s:?} is not a period: use YYYY-MM, such as 2026-11"
            ))
        };
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let year: i64 = y.parse().map_err(|_| bad())?;
        let month: i64 = m.parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) || !(1970..=9999).contains(&year) {
            return Err(bad());
        }
        Ok(Period::month(year, month))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_calendar_months_in_utc() {
        let p: Period = "2026-11".parse().unwrap();
        assert_eq!(p.start, 1_793_491_200); // 2026-11-01T00:00:00Z
        assert_eq!(p.end - p.start, 30 * 86_400);
        let feb: Period = "2028-02".parse().unwrap();
        assert_eq!(feb.end - feb.start, 29 * 86_400);
        let dec: Period = "2026-12".parse().unwrap();
        assert_eq!(dec.end, "2027-01".parse::<Period>().unwrap().start);
        assert_eq!(Period::containing(p.start), p);
        assert_eq!(Period::containing(p.end - 1), p);
        assert_eq!(Period::containing(p.end).label, "2026-12");
        assert_eq!(dec.previous(), p);
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(
            human(1_795_651_200 + 9 * 3600 + 41 * 60),
            "2026-11-26 09:41"
        );
        assert_eq!(civil(1_795_651_200 / 86_400), (2026, 11, 26));
        for bad in [
            "2026-13", "2026-00", "26-11", "2026/11", "", "2026-1", "abcd-ef",
        ] {
            assert!(bad.parse::<Period>().is_err(), "{bad}");
        }
    }
}
